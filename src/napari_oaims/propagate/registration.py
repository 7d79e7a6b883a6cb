"""The registration proxy: an anchor's mask warped onto another slice (Tian, Chen and Gao, *A Dynamic
Interactive Learning Framework for Automated 3D Medical Image Segmentation*, algorithm 2).

Both slices are read on the same local window (around the anchor's mask); the dense 2D optical
flow from the anchor's crop to the slice's crop (``skimage.registration``, ILK or TV-L1) moves
the anchor's mask, which comes back as a probability (bilinear warp of the 0/1 mask).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def flow(
    reference: np.ndarray,
    moving: np.ndarray,
    method: str = "ilk",
    radius: int = 7,
    size: int | None = 48,
    warps: int = 3,
) -> np.ndarray:
    """Flow (2, H, W) such that ``moving`` sampled at ``grid + flow`` matches ``reference``.

    Crops larger than ``size`` pixels are registered at that size (bilinear), and the flow is
    scaled back: the prior only needs the object's motion, and this keeps registration cheaper
    than one network forward. ``warps``: ILK's warping iterations (``radius`` scales with the size).
    """
    from skimage.registration import optical_flow_ilk, optical_flow_tvl1

    shape = reference.shape
    scale = 1.0 if size is None or max(shape) <= size else size / max(shape)
    if scale < 1.0:
        reference = ndimage.zoom(reference, scale, order=1)
        moving = ndimage.zoom(moving, scale, order=1)
        radius = max(2, int(round(radius * scale)))
    if method == "tvl1":
        v = optical_flow_tvl1(reference, moving)
    else:
        v = optical_flow_ilk(reference, moving, radius=radius, num_warp=warps)
    if scale < 1.0:
        v = np.stack([ndimage.zoom(c, (shape[0] / c.shape[0], shape[1] / c.shape[1]), order=1) for c in v]) / scale
    return v.astype(np.float32)


def warp(values: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``values`` (H, W) sampled at the grid moved by flow ``v`` (bilinear, zero outside)."""
    h, w = values.shape
    rr, cc = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    return ndimage.map_coordinates(values.astype(np.float32), [rr + v[0], cc + v[1]], order=1, mode="constant")


def warp_mask(
    anchor_image: np.ndarray,
    anchor_mask: np.ndarray,
    image: np.ndarray,
    method: str = "ilk",
    radius: int = 7,
    size: int | None = 48,
    warps: int = 3,
) -> np.ndarray:
    """The anchor's mask (window crop) carried onto ``image`` (same window): a probability map."""
    return np.clip(warp(anchor_mask, flow(image, anchor_image, method, radius, size, warps)), 0.0, 1.0)


def flow_args(settings, prior: bool = False) -> dict:
    """The registration keywords of :class:`~napari_oaims.propagate.PropagateSettings`: for the
    registration method and proxy, or (``prior``) for moving the previous mask (cheaper: the
    network refines the boundary anyway)."""
    if prior:
        return {
            "method": settings.flow,
            "radius": settings.flow_radius,
            "size": settings.prior_flow_size,
            "warps": settings.prior_flow_warps,
        }
    return {"method": settings.flow, "radius": settings.flow_radius, "size": None, "warps": settings.flow_warps}
