"""Sample data shipped with the package: a real 2D nuclei image and its labels."""

from __future__ import annotations

from importlib import resources

import numpy as np


def sample_nuclei() -> tuple[np.ndarray, np.ndarray]:
    """The shipped 512 x 512 nuclei image and its instance labels (DSB 2018, via StarDist).

    Returns
    -------
    image : ndarray
        uint16, (512, 512).
    labels : ndarray
        uint16 instance labels, 0 for background.

    Examples
    --------
    >>> from napari_oaims import sample_nuclei
    >>> image, labels = sample_nuclei()
    >>> image.shape
    (512, 512)
    """
    import tifffile

    folder = resources.files("napari_oaims") / "data"
    with resources.as_file(folder / "nuclei2d_image.tif") as p:
        image = tifffile.imread(p)
    with resources.as_file(folder / "nuclei2d_labels.tif") as p:
        labels = tifffile.imread(p)
    return image, labels
