"""Rules on the model's mask in a window: which of its parts belong to the object, how sure the
model is of it, and the region of similar values under a click (the answer of last resort).

All functions work on one window at native resolution (plane pixels ``(y, x)`` relative to the
window's top-left corner); nothing here knows about sessions, torch or napari.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: A component of the mask that holds no seed is still kept when it is the nearest one to a seed
#: and at most this many pixels away from it (a click just outside the mask's edge).
NEAR_SEED = 3.0
#: The model's answer on the first window counts as sure when the mean logit over the object's
#: pixels is at least this (the mean over a confident mask is about 2.5-3.5; over an object the
#: window shows at the wrong scale, about 1-2).
SURE_LOGIT = 2.0
#: A mask narrower than 1/this of its window's side is a speck in it (a well-framed object spans
#: about a quarter of the window).
SPECK_SHARE = 8.0
#: Tolerance of :func:`similar_region`, in robust standard deviations of the window's noise.
SIMILAR_NOISE_SIGMAS = 3.0
#: A mask whose outline holds less contrast than this (:func:`outline_contrast`) may follow no
#: edge of the image: drawn on a window that lies inside a larger object, it is a blob of that
#: object's texture (0-1.4 on the organs suite; a nucleus 4-6, a faint lesion 0.1-2).
FLAT_OUTLINE = 1.0


def outline_contrast(crop: np.ndarray, mask: np.ndarray) -> float:
    """How much the image changes across the outline of ``mask``: the median of ``crop`` inside
    the mask against its median in a ring around it (a sixth of the mask's diameter wide, at
    least 2 px), in the two parts' pooled standard deviation. 0 for a mask too small to tell,
    or with no ring (it fills the window)."""
    mask = np.asarray(mask, bool)
    area = int(mask.sum())
    if area < 4:
        return 0.0
    width = max(2, int(round(np.sqrt(area / np.pi) / 3)))
    ring = ndimage.binary_dilation(mask, iterations=width) & ~mask
    if ring.sum() < 4:
        return 0.0
    inside, around = np.asarray(crop, np.float64)[mask], np.asarray(crop, np.float64)[ring]
    pooled = np.sqrt((inside.var() + around.var()) / 2) + 1e-9
    return float(abs(np.median(inside) - np.median(around)) / pooled)


def inside_seeds(seeds: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The rows of ``seeds`` (N x 2, window pixels, may be fractional) that lie in ``shape``, as ints."""
    pts = np.rint(np.asarray(seeds, dtype=np.float64).reshape(-1, 2)).astype(int)
    ok = np.all((pts >= 0) & (pts < np.asarray(shape)), axis=1)
    return pts[ok]


def keep_prompted(mask: np.ndarray, seeds: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
    """The connected components (8-connected) of ``mask`` that hold a seed (a positive click,
    scribble pixel or box centre; N x 2 window pixels) or overlap ``prior`` (a given mask).

    When none does, the component nearest to a seed is kept if it lies within :data:`NEAR_SEED`
    px of it; with no seeds and no prior the mask is returned as it is.

    Examples
    --------
    >>> m = np.zeros((5, 7), bool); m[1:3, 0:2] = True; m[1:3, 4:6] = True
    >>> keep_prompted(m, np.array([[1, 4]])).sum()
    4
    """
    mask = np.asarray(mask, bool)
    pts = inside_seeds(seeds, mask.shape)
    if not mask.any() or (len(pts) == 0 and (prior is None or not np.any(prior))):
        return mask
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    keep = {int(v) for v in labels[pts[:, 0], pts[:, 1]] if v} if len(pts) else set()
    if prior is not None:
        keep |= {int(v) for v in np.unique(labels[np.asarray(prior, bool) & mask]) if v}
    if not keep and len(pts):
        seed_map = np.ones(mask.shape, bool)
        seed_map[pts[:, 0], pts[:, 1]] = False
        dist = ndimage.distance_transform_edt(seed_map)
        near = ndimage.minimum(dist, labels, index=np.arange(1, n + 1))
        best = int(np.argmin(near))
        if near[best] <= NEAR_SEED:
            keep = {best + 1}
    return np.isin(labels, list(keep)) if keep else np.zeros_like(mask)


def sureness(logits: np.ndarray, mask: np.ndarray) -> float:
    """Mean logit over ``mask`` (the model's sureness of that object; -inf for an empty mask)."""
    mask = np.asarray(mask, bool)
    return float(np.mean(logits[mask])) if mask.any() else float("-inf")


def touches_edge(mask: np.ndarray, open_sides: tuple[bool, bool, bool, bool]) -> bool:
    """Whether ``mask`` reaches a side of its window that is not the plane's border
    (``open_sides``: top, bottom, left, right may continue beyond the window)."""
    top, bottom, left, right = open_sides
    return bool(
        (top and mask[0].any())
        or (bottom and mask[-1].any())
        or (left and mask[:, 0].any())
        or (right and mask[:, -1].any())
    )


def similar_region(crop: np.ndarray, seed: tuple[int, int]) -> np.ndarray:
    """The connected region of ``crop`` (a normalised window) around ``seed`` whose lightly
    smoothed values lie within :data:`SIMILAR_NOISE_SIGMAS` noise deviations of the seed's.

    The noise deviation is the median absolute deviation of the difference between the crop and
    its smoothed self (robust to edges). Never empty: it holds at least the seed.
    """
    from skimage.segmentation import flood

    crop = np.asarray(crop, np.float64)
    smooth = ndimage.gaussian_filter(crop, 1.0)
    resid = crop - smooth
    noise = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    tolerance = max(SIMILAR_NOISE_SIGMAS * noise, 1e-6)
    return flood(smooth, tuple(int(v) for v in seed), tolerance=tolerance, connectivity=1)
