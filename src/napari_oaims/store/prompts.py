"""Prompt layers of a session: written by the viewer, or derived from the log.

``prompts/`` holds ``points/coords`` (N, ndim) f8, ``points/positive`` (N,) bool,
``shapes/vertices`` (M, ndim) f8, ``shapes/offsets`` (S+1,) i8 (shape i is
``vertices[offsets[i]:offsets[i+1]]``) and ``shapes/type`` (S,) str ("rectangle", "path", or any
napari shape type). A session without that group gets the prompts its log implies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.storage import LocalStore

from napari_oaims.core import geometry
from napari_oaims.core.events import PROMPT_KINDS
from napari_oaims.store.layout import rebuild_group


@dataclass
class Prompts:
    """Prompt layers: points (N, ndim) with a positive flag each, shapes (vertices per shape) with types."""

    points: np.ndarray
    positive: np.ndarray
    shapes: list[np.ndarray]
    shape_types: list[str]


class PromptLayers:
    """The prompt layers of a session folder (``prompts/``), or those its log implies.

    Parameters
    ----------
    root : zarr.Group
        The session folder's root group; only its ``prompts`` group is written.
    folder : Path
        The session folder (``prompts/`` is read from it; messages name it).
    ndim : int
        Spatial dimensions of the image (coordinates per point or vertex).
    plane_axes : tuple of int
        The session's plane axes (to place a logged prompt in the image).
    events : callable
        ``events()``: the session's log, for the prompts it implies.
    lock : threading.RLock
        The store's lock, held while the layers are replaced.
    """

    def __init__(self, root: zarr.Group, folder: Path, ndim: int, plane_axes, events: Callable[[], list[dict]], lock):
        self._root = root
        self._folder = folder
        self._ndim = ndim
        self._plane_axes = plane_axes
        self._events = events
        self._lock = lock

    def write(self, points, point_positive, shapes, shape_types) -> None:
        """Store the prompt layers: ``points`` (N, ndim) with ``point_positive`` (N,), ``shapes`` a list
        of (K_i, ndim) vertex arrays with ``shape_types`` ("rectangle", "path", ...). Replaces the
        previous prompt layers atomically."""
        ndim = self._ndim
        pts = np.asarray(points, np.float64).reshape(-1, ndim) if len(points) else np.zeros((0, ndim))
        pos = np.asarray(point_positive, bool).reshape(-1)
        if len(pos) != len(pts):
            raise ValueError(f"{len(pts)} points but {len(pos)} positive flags")
        verts = [np.asarray(s, np.float64).reshape(-1, ndim) for s in shapes]
        types = [str(shape_types)] * len(verts) if isinstance(shape_types, str) else [str(t) for t in shape_types]
        if len(types) != len(verts):
            raise ValueError(f"{len(verts)} shapes but {len(types)} shape types")
        offsets = np.concatenate([[0], np.cumsum([len(v) for v in verts])]).astype(np.int64)

        def build(g: zarr.Group) -> None:
            p, s = g.create_group("points"), g.create_group("shapes")
            p.create_array("coords", data=pts, chunks=(max(1, len(pts)), ndim))
            p.create_array("positive", data=pos, chunks=(max(1, len(pos)),))
            allv = np.concatenate(verts) if verts else np.zeros((0, ndim))
            s.create_array("vertices", data=allv, chunks=(max(1, len(allv)), ndim))
            s.create_array("offsets", data=offsets, chunks=(len(offsets),))
            t = s.create_array("type", shape=(len(types),), dtype=str, chunks=(max(1, len(types)),))
            if types:
                t[:] = np.array(types, dtype=object)

        with self._lock:
            rebuild_group(self._root, self._folder, "prompts", build)

    def read(self) -> Prompts:
        """The stored prompt layers, or, if none were written, the prompts of the log (accepted and
        current objects, undo/redo applied): clicks as points, boxes as rectangles, scribbles as paths."""
        if (self._folder / "prompts" / "zarr.json").is_file():
            try:
                return read_prompt_layers(self._folder, self._ndim)
            except Exception as err:  # noqa: BLE001 - whatever Zarr raises for a damaged node
                raise ValueError(f"session {self._folder} is damaged: prompt layers unreadable ({err})") from err
        return prompts_from_events(self._events(), self._plane_axes, self._ndim)


def read_prompt_layers(path, ndim: int) -> Prompts:
    """The prompt layers stored in ``path/prompts`` (a session folder), read-only."""
    g = zarr.open_group(LocalStore(path / "prompts", read_only=True), mode="r")
    offs = g["shapes/offsets"][:]
    verts = g["shapes/vertices"][:]
    return Prompts(
        g["points/coords"][:].reshape(-1, ndim),
        g["points/positive"][:].astype(bool),
        [verts[a:b] for a, b in zip(offs[:-1], offs[1:])],
        [str(t) for t in g["shapes/type"][:]],
    )


def prompts_from_events(events: list[dict[str, Any]], plane_axes, ndim: int) -> Prompts:
    """Prompt layers implied by a log: the prompts in force at each accept (undo/redo/clear applied)
    plus those of the object in progress. Priors are masks, not drawn shapes, and are left out."""
    kept: list[dict] = []
    cur: list[dict] = []
    undo: list[tuple[list, list]] = []
    redo: list[tuple[list, list]] = []
    touched = False
    for e in events:
        k = e["kind"]
        if k in PROMPT_KINDS:
            undo.append((cur, cur + [e]))
            redo.clear()
            cur, touched = cur + [e], True
        elif k == "undo" and undo:
            before, after = undo.pop()
            redo.append((before, after))
            cur = before
        elif k == "redo" and redo:
            before, after = redo.pop()
            undo.append((before, after))
            cur = after
        elif k == "clear":
            if touched:
                undo.append((cur, []))
                redo.clear()
            cur = []
        elif k in ("accept", "session"):
            if k == "accept":
                kept.extend(cur)
            cur, undo, redo, touched = [], [], [], False
    kept.extend(cur)
    pts, pos, shapes, types = [], [], [], []
    for e in kept:
        plane, c = e["plane"], e["coords"]
        if e["kind"] == "click":
            pts.append(_full(plane_axes, ndim, plane, c))
            pos.append(bool(e["label"]))
        elif e["kind"] == "box":
            y0, x0, y1, x1 = c
            shapes.append(
                np.array([_full(plane_axes, ndim, plane, yx) for yx in ((y0, x0), (y0, x1), (y1, x1), (y1, x0))])
            )
            types.append("rectangle")
        elif e["kind"] == "scribble":
            shapes.append(np.array([_full(plane_axes, ndim, plane, yx) for yx in c]))
            types.append("path")
    return Prompts(np.array(pts, np.float64).reshape(-1, ndim), np.array(pos, bool), shapes, types)


def _full(plane_axes, ndim: int, plane, yx) -> list[float]:
    return [float(v) for v in geometry.full_coords(plane_axes, ndim, plane, yx)]
