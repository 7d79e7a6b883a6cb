"""Boxes and coordinates: bounding boxes, their unions, and plane <-> full coordinates.

A *plane* of an nD image is named by its *key*, the coordinates on the non-plane axes in axis
order (``()`` for a 2D image). Plane pixels are ``(y, x)`` along the two plane axes. Boxes are
``(y0, x0, y1, x1)`` with exclusive ends.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Box = tuple[int, int, int, int]


def bbox(mask: np.ndarray, offset: tuple[int, int] = (0, 0)) -> Box | None:
    """Bounding box of a 2D boolean mask, shifted by ``offset``; None when the mask is empty."""
    rows = np.flatnonzero(mask.any(1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask.any(0))
    return (
        int(rows[0]) + offset[0],
        int(cols[0]) + offset[1],
        int(rows[-1]) + 1 + offset[0],
        int(cols[-1]) + 1 + offset[1],
    )


def diameter(area: float) -> float:
    """The diameter of a disc of ``area`` pixels: how big an object is, whatever its shape."""
    return 2.0 * float(np.sqrt(area / np.pi))


def bbox_nd(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Bounding slices of an nD boolean mask (None when it is empty)."""
    mask = np.asarray(mask, bool)
    index = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        if len(hit) == 0:
            return None
        index.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(index)


def union(a: Box | None, b: Box | None) -> Box | None:
    """The smallest box holding both (either may be None)."""
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def box_slices(box: Box) -> tuple[slice, slice]:
    """``(y0, x0, y1, x1)`` as a pair of slices."""
    return slice(box[0], box[2]), slice(box[1], box[3])


def plane_axes_of(plane_axes: Sequence[int], ndim: int) -> tuple[int, int]:
    """Non-negative plane axes (``(-2, -1)`` -> ``(ndim - 2, ndim - 1)``)."""
    return tuple(int(a) % ndim for a in plane_axes)  # type: ignore[return-value]


def full_coords(plane_axes: Sequence[int], ndim: int, key: Sequence[float], yx: Sequence[float]) -> tuple[float, ...]:
    """Full spatial coordinates of plane pixel ``yx`` on plane ``key`` (inverse of :func:`split_coords`)."""
    pa = plane_axes_of(plane_axes, ndim)
    it = iter(key)
    return tuple(yx[0] if a == pa[0] else yx[1] if a == pa[1] else next(it) for a in range(ndim))


def split_coords(plane_axes: Sequence[int], coords: Sequence[float]) -> tuple[tuple, tuple]:
    """``(key, (y, x))`` of full spatial coordinates ``coords``."""
    pa = plane_axes_of(plane_axes, len(coords))
    key = tuple(c for a, c in enumerate(coords) if a not in pa)
    return key, (coords[pa[0]], coords[pa[1]])


def plane_index(
    plane_axes: Sequence[int], ndim: int, key: Sequence[int], region: tuple[slice, slice] | None = None
) -> tuple:
    """Index into an array of the image's spatial shape for plane ``key`` (``region``: plane
    slices, default the whole plane). Indexing with it gives a 2D array whose axes are in
    increasing axis order, i.e. transposed with respect to ``(y, x)`` when the plane axes are."""
    pa = plane_axes_of(plane_axes, ndim)
    ys, xs = region if region is not None else (slice(None), slice(None))
    it = iter(key)
    return tuple(ys if a == pa[0] else xs if a == pa[1] else int(next(it)) for a in range(ndim))


def transposed(plane_axes: Sequence[int], ndim: int) -> bool:
    """Whether a plane indexed with :func:`plane_index` reads as ``(x, y)`` instead of ``(y, x)``."""
    pa = plane_axes_of(plane_axes, ndim)
    return pa[0] > pa[1]


def values_at(mask: np.ndarray | None, points) -> np.ndarray:
    """``mask`` at plane pixels ``points`` (N x 2, rounded); points outside it (or no mask) read False."""
    pts = np.rint(np.asarray(points, dtype=np.float64).reshape(-1, 2)).astype(int)
    out = np.zeros(len(pts), bool)
    if mask is None:
        return out
    h, w = mask.shape
    ok = (pts[:, 0] >= 0) & (pts[:, 0] < h) & (pts[:, 1] >= 0) & (pts[:, 1] < w)
    out[ok] = mask[pts[ok, 0], pts[ok, 1]]
    return out
