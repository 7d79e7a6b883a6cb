"""The registration proxy (seed 003 algorithm 2): an anchor's mask warped onto another slice.

Both slices are read on the same local window (around the anchor's mask); the dense 2D optical
flow from the anchor's crop to the slice's crop (``skimage.registration``, ILK or TV-L1) moves
the anchor's mask, which comes back as a probability (bilinear warp of the 0/1 mask).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def flow(reference: np.ndarray, moving: np.ndarray, method: str = "ilk", radius: int = 7) -> np.ndarray:
    """Flow (2, H, W) such that ``moving`` sampled at ``grid + flow`` matches ``reference``."""
    from skimage.registration import optical_flow_ilk, optical_flow_tvl1

    if method == "tvl1":
        return optical_flow_tvl1(reference, moving)
    return optical_flow_ilk(reference, moving, radius=radius)


def warp(values: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``values`` (H, W) sampled at the grid moved by flow ``v`` (bilinear, zero outside)."""
    h, w = values.shape
    rr, cc = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    return ndimage.map_coordinates(values.astype(np.float32), [rr + v[0], cc + v[1]], order=1, mode="constant")


def warp_mask(
    anchor_image: np.ndarray, anchor_mask: np.ndarray, image: np.ndarray, method: str = "ilk", radius: int = 7
) -> np.ndarray:
    """The anchor's mask (window crop) carried onto ``image`` (same window): a probability map."""
    return np.clip(warp(anchor_mask, flow(image, anchor_image, method, radius)), 0.0, 1.0)
