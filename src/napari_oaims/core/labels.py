"""Painting accepted objects into an instance-labels array (one rule for widget, store and replay)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from napari_oaims.core import geometry


def paint(
    labels: Any, index: tuple, mask: np.ndarray, object_id: int, overwrite: bool = False
) -> tuple[int, dict[int, int], np.ndarray]:
    """Set ``object_id`` where ``mask`` is true in ``labels[index]``.

    With ``overwrite=False`` (the default) the pixels of other objects are kept: the new object
    takes only background (and its own pixels); with ``overwrite=True`` the new object wins.
    ``labels`` is anything indexable that takes assignment (NumPy, Zarr). Returns the pixels
    painted, the pixels taken from each other object (``{id: count}``, empty without
    ``overwrite``) and the region's values before painting (for undo).
    """
    before = np.array(labels[index])  # a copy: painting must not change it
    mask = np.asarray(mask, bool)
    if mask.shape != before.shape:
        raise ValueError(f"object mask of shape {mask.shape} does not fit the label region of shape {before.shape}")
    if not overwrite:
        mask = mask & ((before == 0) | (before == object_id))
    hit = before[mask]
    ids, counts = np.unique(hit[(hit != 0) & (hit != object_id)], return_counts=True)
    labels[index] = np.where(mask, np.asarray(object_id, dtype=before.dtype), before)
    return int(np.count_nonzero(mask)), dict(zip(ids.tolist(), counts.tolist())), before


def paint_planes(
    labels: Any,
    plane_axes,
    planes: Mapping[tuple[int, ...], tuple[geometry.Box, np.ndarray]],
    object_id: int,
    overwrite: bool = False,
) -> tuple[int, dict[int, int], list[tuple[tuple, np.ndarray, np.ndarray]]]:
    """Paint an object given per plane as ``(box, crop)`` (plane coordinates, ``crop`` the mask in
    ``box``) with :func:`paint`'s ``overwrite`` rule. Returns the pixels painted, the pixels taken
    from other objects, and per plane ``(index, before, after)`` so that the caller can undo it."""
    ndim = len(labels.shape)
    flip = geometry.transposed(plane_axes, ndim)
    area, taken, records = 0, {}, []
    for key, (box, crop) in planes.items():
        index = geometry.plane_index(plane_axes, ndim, key, geometry.box_slices(box))
        n, over, before = paint(labels, index, crop.T if flip else crop, object_id, overwrite)
        area += n
        for k, v in over.items():
            taken[k] = taken.get(k, 0) + v
        records.append((index, before, np.asarray(labels[index]).copy()))
    return area, taken, records


def object_planes(mask: np.ndarray, plane_axes) -> list[tuple[int, ...]]:
    """The plane keys on which an nD object mask has pixels (``[()]`` for a 2D mask)."""
    mask = np.asarray(mask, bool)
    if mask.ndim == 2:
        return [()]
    pa = geometry.plane_axes_of(plane_axes, mask.ndim)
    hit = mask.any(axis=tuple(pa))
    return [tuple(int(c) for c in key) for key in zip(*np.nonzero(hit))]


def planes_of_labels(labels: np.ndarray, plane_axes) -> dict[int, list[list[int]]]:
    """For each non-zero id of an nD labels array, the plane keys it lies on."""
    labels = np.asarray(labels)
    ids = [int(i) for i in np.unique(labels) if i]
    if labels.ndim == 2:
        return {i: [[]] for i in ids}
    pa = geometry.plane_axes_of(plane_axes, labels.ndim)
    moved = np.moveaxis(labels, pa, [-2, -1])
    out: dict[int, list[list[int]]] = {i: [] for i in ids}
    for key in np.ndindex(moved.shape[:-2]):
        for i in np.unique(moved[key]):
            if i:
                out[int(i)].append(list(key))
    return out


def unpaint(labels: Any, records: Iterable[tuple[tuple, np.ndarray, np.ndarray]]) -> None:
    """Undo :func:`paint_planes`: put back each region's values from before."""
    for index, before, _ in records:
        labels[index] = before
