"""napari sample data: the real 2D nuclei image shipped with the package and a synthetic 3D volume."""

from __future__ import annotations

import numpy as np

from napari_oaims.data import sample_nuclei


def nuclei_2d() -> list[tuple]:
    """Real fluorescence nuclei (DSB 2018 via StarDist), 512 x 512 uint16."""
    image, _ = sample_nuclei()
    return [(image, {"name": "nuclei"}, "image")]


def volume_3d() -> list[tuple]:
    """A synthetic 3D stack of nuclei-like objects (32 x 96 x 96) and its ground truth."""
    from napari_oaims.training.synth import volume

    image, labels = volume(np.random.default_rng(0))
    return [
        (image, {"name": "volume"}, "image"),
        (labels, {"name": "ground truth", "opacity": 0.3, "visible": False}, "labels"),
    ]
