"""A documented, deterministic distribution-shift suite built from one real image.

Every shift maps ``(image, labels)`` to a shifted pair; all are deterministic (fixed seed).

========== ===========================================================================
name       what it does
========== ===========================================================================
none       the image as it is (no-shift control)
invert     contrast inversion: ``max - image`` (dark nuclei on a bright background)
low_snr    low signal-to-noise: normalised to [0, 1], Poisson noise at 3 photons per unit
           intensity, then Gaussian blur (sigma 1.5)
down3      3x downscale (area averaging; labels by nearest neighbour): objects a third the size
illum      strong uneven illumination: a left-to-right gain ramp from 0.1 to 1 and an
           additive background ramp from 0.6 to 0, so the left side is dim and washed out
edges      boundary-only contrast: the gradient magnitude (Sobel) of the lightly smoothed
           image. Nuclei become hollow rings whose inside looks like the background, as with
           membrane or boundary stains. Chosen as the shift where the frozen model fails
           badly: a click inside the object lands on a featureless interior, which the
           pretraining data (filled objects) never showed.
========== ===========================================================================
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage
from skimage.filters import sobel
from skimage.transform import rescale


def _unit(image: np.ndarray) -> np.ndarray:
    img = image.astype(np.float32)
    lo, hi = np.percentile(img, (0.5, 99.5))
    return np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1)


def _invert(image, labels):
    return (image.max() - image).astype(image.dtype), labels


def _low_snr(image, labels):
    rng = np.random.default_rng(0)
    noisy = rng.poisson(_unit(image) * 3.0) / 3.0
    return ndimage.gaussian_filter(noisy.astype(np.float32), 1.5), labels


def _down3(image, labels):
    small = rescale(image.astype(np.float32), 1 / 3, anti_aliasing=True, preserve_range=True)
    lab = labels[1::3, 1::3][: small.shape[0], : small.shape[1]]
    return small.astype(np.float32), lab


def _illum(image, labels):
    h, w = image.shape[:2]
    ramp = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :].repeat(h, 0)
    return _unit(image) * (0.1 + 0.9 * ramp) + 0.6 * (1 - ramp), labels


def _edges(image, labels):
    return sobel(ndimage.gaussian_filter(_unit(image), 1.0)).astype(np.float32), labels


SHIFTS: dict[str, Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]] = {
    "none": lambda image, labels: (image, labels),
    "invert": _invert,
    "low_snr": _low_snr,
    "down3": _down3,
    "illum": _illum,
    "edges": _edges,
}


def apply_shift(name: str, image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The shifted ``(image, labels)`` for shift ``name`` (see the module table)."""
    try:
        fn = SHIFTS[name]
    except KeyError:
        raise ValueError(f"unknown shift {name!r}; choose from {sorted(SHIFTS)}") from None
    return fn(image, labels)
