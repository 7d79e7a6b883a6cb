"""Sample data shipped with the package: a real 2D nuclei image and its labels."""

from __future__ import annotations

from importlib import resources

import numpy as np


def sample_nuclei() -> tuple[np.ndarray, np.ndarray]:
    """The shipped 512 x 512 nuclei image (uint16) and its instance labels (DSB 2018, via StarDist)."""
    import tifffile

    folder = resources.files("napari_oaims") / "data"
    with resources.as_file(folder / "nuclei2d_image.tif") as p:
        image = tifffile.imread(p)
    with resources.as_file(folder / "nuclei2d_labels.tif") as p:
        labels = tifffile.imread(p)
    return image, labels
