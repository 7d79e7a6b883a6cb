"""Box and scribble prompts drawn from a ground-truth mask, as a simulated user would draw them."""

from __future__ import annotations

import numpy as np
from skimage.morphology import skeletonize

from napari_oaims.core.clicks import click_in_region, distance_to_border
from napari_oaims.core.geometry import bbox

BOX_KINDS = ("perfect", "careful", "sloppy")
CAREFUL_MARGIN = (0.05, 0.10)  # careful box: each side pushed out by U(5%, 10%) of the extent
SLOPPY_JITTER = 0.30  # sloppy box: each side moved by U(-30%, +30%) of the extent


def _clip_box(y0: int, x0: int, y1: int, x1: int, h: int, w: int) -> tuple[int, int, int, int]:
    return max(0, int(y0)), max(0, int(x0)), min(h, int(y1)), min(w, int(x1))


def box_from_mask(
    target: np.ndarray, kind: str = "perfect", rng: np.random.Generator | None = None
) -> tuple[int, int, int, int]:
    """A box prompt ``(y0, x0, y1, x1)`` (y1, x1 exclusive) drawn around a 2D object.

    ``perfect``: the tight bounding box. ``careful``: each side pushed out by U(5%, 10%) of the
    object's extent along that axis (at least 1 px). ``sloppy``: each side moved in or out by
    U(-30%, +30%) of the extent; redrawn (up to 100 times, then the perfect box) until the box is
    non-empty and contains at least one object pixel. Boxes are clipped to the image. ``rng`` None
    means ``default_rng(0)``.
    """
    target = np.asarray(target, bool)
    if target.ndim != 2:
        raise ValueError(f"target must be a 2D mask, got shape {target.shape}")
    if not target.any():
        raise ValueError("empty target: cannot draw a box")
    if kind not in BOX_KINDS:
        raise ValueError(f"unknown box kind {kind!r}; use one of {BOX_KINDS}")
    rng = rng if rng is not None else np.random.default_rng(0)
    box = bbox(target)
    if kind == "perfect":
        return box
    y0, x0, y1, x1 = box
    h, w = target.shape
    ext = np.array([y1 - y0, x1 - x0, y1 - y0, x1 - x0], float)
    if kind == "careful":
        out = np.maximum(1, np.rint(rng.uniform(*CAREFUL_MARGIN, size=4) * ext)).astype(int)
        return _clip_box(y0 - out[0], x0 - out[1], y1 + out[2], x1 + out[3], h, w)
    for _ in range(100):
        out = np.rint(rng.uniform(-SLOPPY_JITTER, SLOPPY_JITTER, size=4) * ext).astype(int)
        b = _clip_box(y0 - out[0], x0 - out[1], y1 + out[2], x1 + out[3], h, w)
        if b[0] < b[2] and b[1] < b[3] and target[b[0] : b[2], b[1] : b[3]].any():
            return b
    return box


_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def scribble_from_region(region: np.ndarray, rng: np.random.Generator | None = None, max_len: int = 50) -> np.ndarray:
    """A scribble inside ``region``: an 8-connected polyline along its skeleton, as (N, 2) ``(y, x)`` ints.

    Starts at a skeleton pixel (random with ``rng``, else the one deepest inside the region) and walks
    along the skeleton to a pixel at most ``max_len - 1`` steps away (the farthest reachable; random
    among ties with ``rng``). A region whose skeleton has fewer than 2 pixels gives its centre point.
    """
    region = np.asarray(region, bool)
    if region.ndim != 2:
        raise ValueError(f"region must be a 2D mask, got shape {region.shape}")
    if not region.any():
        raise ValueError("cannot scribble in an empty region")
    if max_len < 1:
        raise ValueError("max_len must be >= 1")
    skel = skeletonize(region) & region
    pts = np.argwhere(skel)
    if len(pts) < 2 or max_len == 1:
        return np.array([click_in_region(region, mode="center")], dtype=int)
    if rng is not None:
        start = tuple(int(v) for v in pts[rng.integers(len(pts))])
    else:
        dist = distance_to_border(region)
        start = tuple(int(v) for v in pts[np.argmax(dist[skel])])
    h, w = skel.shape
    parent: dict[tuple[int, int], tuple[int, int] | None] = {start: None}
    frontier = last = [start]
    for _ in range(max_len - 1):
        nxt = []
        for y, x in frontier:
            for dy, dx in _NEIGHBOURS:
                q = (y + dy, x + dx)
                if 0 <= q[0] < h and 0 <= q[1] < w and skel[q] and q not in parent:
                    parent[q] = (y, x)
                    nxt.append(q)
        if not nxt:
            break
        frontier = last = nxt
    node: tuple[int, int] | None = last[int(rng.integers(len(last)))] if rng is not None else last[0]
    path = []
    while node is not None:
        path.append(node)
        node = parent[node]
    return np.array(path[::-1], dtype=int)
