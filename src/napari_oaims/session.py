"""One image being annotated, one object at a time: prompts, prediction, undo/redo, accept, log.

A :class:`Session` is made by :meth:`napari_oaims.Engine.session`. It keeps, for the object in
progress, the prompts and the mask of every plane the user touched (a 2D image has one plane;
in an nD image the plane of a click is given by its coordinates on the non-plane axes). Each
prompt re-predicts that plane on a local window (see :mod:`napari_oaims.guidance`) and records
two events: the prompt and the prediction.

Event log schema (``Session.events``, one dict per event, in order):

========== ==================================================================================
key        meaning
========== ==================================================================================
seq        0, 1, 2, ... within the session
time       Unix time (s) when the event was recorded
kind       ``click``, ``box``, ``scribble``, ``prior``, ``predict``, ``undo``, ``redo``,
           ``clear``, ``accept``, ``update`` (a weights update by the adapter), ``session``,
           ``withdraw`` / ``reinstate`` (an accepted object taken back / brought back, e.g. by
           the widget's undo / redo; ``extra.diameter`` is its size for object size "auto")
object     id of the object the event belongs to (1, 2, ... in accept order)
plane      coordinates on the non-plane axes (``[]`` for a 2D image)
coords     click ``[y, x]``; box ``[y0, x0, y1, x1]``; scribble ``[[y, x], ...]`` (plane
           coordinates); ``None`` otherwise
label      1 positive / 0 negative prompt; ``None`` for other kinds
latency_ms time from the call to the result (``predict``, ``accept``, ``update``)
weights    short hash of the weights that made the prediction (or after an update)
extra      kind-specific details (window, area, loss, ...; an ``accept`` holds ``area``,
           ``planes``, ``adaptation``, ``class_id``, ``class_name`` and ``diameter``; prompts and
           accepts hold ``adaptation``, the adapter's name; ``adapter``, its full settings, is in
           the ``session`` event and in the first prompt or accept after the adapter changed)
========== ==================================================================================
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from skimage.transform import resize as _sk_resize

from . import guidance
from .images import ImageSource

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine

#: Re-predict on a larger window (this factor) when the mask touches the window border.
GROW = 1.8
MAX_GROW_PASSES = 2


@dataclass(frozen=True)
class Prompt:
    """One user prompt on a plane. ``points`` are plane pixels (N, 2)."""

    kind: str  # click | box | scribble | prior
    positive: bool
    points: np.ndarray
    box: tuple[int, int, int, int] | None = None
    mask: np.ndarray | None = None
    #: Whether the prompt corrected the mask shown when it was given (:func:`is_correction`); None
    #: for the first prompt of an object on its plane. A click that corrected nothing (a positive
    #: click inside the mask, a negative one outside) is what a wrong-label click looks like.
    corrected: bool | None = None


def is_correction(prompt: Prompt, mask_values: np.ndarray) -> bool:
    """Whether ``prompt`` corrects the mask whose values at its pixels are ``mask_values``.

    A click or scribble corrects the mask where its polarity disagrees with it (any pixel);
    boxes and prior masks always count as corrections.
    """
    if prompt.kind not in ("click", "scribble"):
        return True
    return bool(np.any(np.asarray(mask_values, bool) != bool(prompt.positive)))


@dataclass
class PlaneState:
    prompts: list[Prompt] = field(default_factory=list)
    mask: np.ndarray | None = None  # bool, plane shape, allocated lazily
    bbox: tuple[int, int, int, int] | None = None  # (y0, x0, y1, x1) of mask, exclusive ends


@dataclass
class _Change:
    key: tuple[int, ...]
    prompts_before: list[Prompt]
    prompts_after: list[Prompt]
    region: tuple[slice, slice] | None
    before: np.ndarray | None
    after: np.ndarray | None
    bbox_before: tuple | None
    bbox_after: tuple | None


@dataclass
class PromptContext:
    """What an adapter sees when a prompt arrives (before the shown prediction is made)."""

    session: "Session"
    key: tuple[int, ...]
    window: guidance.Window
    previous: list[Prompt]
    prompts: list[Prompt]
    new: Prompt
    #: An adapter that already predicted ``prompts`` on ``window`` with the current weights may
    #: leave the working-size logits here; the session then shows them instead of predicting again.
    logits: np.ndarray | None = None


@dataclass
class AcceptContext:
    """What an adapter sees when an object is accepted: per plane, its prompts and final mask."""

    session: "Session"
    planes: dict[tuple[int, ...], tuple[list[Prompt], np.ndarray]]


def _supersedes(new: Prompt, old: Prompt) -> bool:
    """A click replaces an earlier click of the other label on the same pixel: the later one wins.

    Both in the model's input would ask for opposite answers at one pixel; the user meant the
    newer one. Undo brings the earlier click back.
    """
    return (new.kind == old.kind == "click" and new.positive != old.positive
            and np.array_equal(new.points, old.points))


def _bbox(mask: np.ndarray, offset: tuple[int, int] = (0, 0)) -> tuple[int, int, int, int] | None:
    rows = np.flatnonzero(mask.any(1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask.any(0))
    return (rows[0] + offset[0], cols[0] + offset[1], rows[-1] + 1 + offset[0], cols[-1] + 1 + offset[1])


def _union(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _resize(array: np.ndarray, size: int) -> np.ndarray:
    if array.shape[0] == size:
        return array.astype(np.float32, copy=False)
    return _sk_resize(array, (size, size), order=1, anti_aliasing=array.shape[0] > size, preserve_range=True).astype(
        np.float32
    )


class Session:
    """Interactive segmentation of one image (see the module docstring for the event schema)."""

    def __init__(self, engine: "Engine", image: Any, plane_axes=(-2, -1), channel_axis=None, rgb=None, channel=None):
        self.engine = engine
        self.source = ImageSource(image, plane_axes=plane_axes, channel_axis=channel_axis, rgb=rgb, channel=channel)
        self.events: list[dict[str, Any]] = []
        self.object_id = 1
        self.planes: dict[tuple[int, ...], PlaneState] = {}
        self.changed: tuple[tuple[int, ...], tuple[slice, slice]] | None = None
        self._undo: list[list[_Change]] = []
        self._redo: list[list[_Change]] = []
        self._listeners: list[Callable[[dict], None]] = []
        self._pending: list = []
        #: Prior masks given with :meth:`prior`, by the ``seq`` of their event (for saving/replay).
        self.prior_masks: dict[int, np.ndarray] = {}
        #: Equivalent diameters (px, largest plane) of the objects accepted so far, by object id:
        #: with ``first_window="auto"`` their median sizes the next first window. An object taken
        #: back (:meth:`withdraw`) leaves it; a resumed session gets it back from the log.
        self.accepted_diameters: dict[int, float] = {}
        self._estimates: dict[int, int] = {}  # "auto" first window measured for the current object
        self._logged_adapter = self.engine.adapter  # the adapter whose settings the log last recorded
        self._log("session", extra={"shape": list(self.source.spatial_shape), "plane_axes": list(self.source.plane_axes),
                                    "rgb": self.source.rgb, "channel_axis": self.source.channel_axis,
                                    "adapter": self.engine.adapter.settings()})

    # -- public prompts ------------------------------------------------------------------------
    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return self.source.spatial_shape

    def click(self, coords, positive: bool = True) -> np.ndarray:
        """Add a positive/negative click at full spatial coordinates; returns the object mask."""
        key, (y, x) = self.source.check_point(coords)
        prompt = Prompt("click", bool(positive), np.array([[y, x]]))
        return self._add(key, prompt, coords=[y, x])

    def box(self, box, plane=None) -> np.ndarray:
        """Box ``(y0, x0, y1, x1)`` in plane coordinates (ends exclusive); ``plane`` for nD images."""
        key = self.source.check_key(plane)
        try:
            y0, x0, y1, x1 = (float(v) for v in box)
        except (TypeError, ValueError) as err:
            raise ValueError(f"a box is (y0, x0, y1, x1), got {box!r}") from err
        if not all(np.isfinite([y0, x0, y1, x1])):
            raise ValueError(f"box corners must be finite, got {box!r}")
        if y1 <= y0 or x1 <= x0:
            raise ValueError(f"box corners are inverted or empty: need y0 < y1 and x0 < x1, got {box!r}")
        h, w = self.source.plane_shape
        b = (int(max(np.floor(y0), 0)), int(max(np.floor(x0), 0)), int(min(np.ceil(y1), h)), int(min(np.ceil(x1), w)))
        if b[2] <= b[0] or b[3] <= b[1]:
            raise ValueError(f"box {box!r} lies outside the image plane of shape {self.source.plane_shape}")
        prompt = Prompt("box", True, np.array([[b[0], b[1]], [b[2] - 1, b[3] - 1]]), box=b)
        return self._add(key, prompt, coords=list(b))

    def scribble(self, points, positive: bool = True) -> np.ndarray:
        """A scribble through ``points`` (N x ndim full coordinates, all on one plane)."""
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or len(pts) == 0:
            raise ValueError(f"a scribble is an (N, {len(self.spatial_shape)}) array of points, got shape {pts.shape}")
        checked = [self.source.check_point(p) for p in pts]
        keys = {k for k, _ in checked}
        if len(keys) != 1:
            raise ValueError(f"all points of a scribble must lie on one plane, got planes {sorted(keys)}")
        path = guidance.rasterise_path(np.array([yx for _, yx in checked]))
        prompt = Prompt("scribble", bool(positive), path)
        return self._add(keys.pop(), prompt, coords=[list(yx) for _, yx in checked])

    def prior(self, mask2d, plane=None) -> np.ndarray:
        """Give a prior mask for a plane (e.g. a rough outline); it feeds the prior channel."""
        key = self.source.check_key(plane)
        m = np.asarray(mask2d)
        if m.shape != self.source.plane_shape:
            raise ValueError(f"prior mask must have the plane shape {self.source.plane_shape}, got {m.shape}")
        if m.dtype.kind not in "biuf":
            raise TypeError(f"prior mask must be boolean or numeric, got dtype {m.dtype}")
        m = np.nan_to_num(m.astype(np.float32)) > 0.5 if m.dtype.kind == "f" else m.astype(bool)
        bb = _bbox(m)
        if bb is None:
            raise ValueError("prior mask is empty")
        prompt = Prompt("prior", True, np.array([[bb[0], bb[1]], [bb[2] - 1, bb[3] - 1]]), box=bb, mask=m)
        return self._add(key, prompt, coords=list(bb))

    # -- undo / redo / clear -------------------------------------------------------------------
    def undo(self) -> np.ndarray:
        """Undo the last prompt or clear of the current object (no-op if there is none)."""
        if self._undo:
            action = self._undo.pop()
            self._apply(action, before=True)
            self._redo.append(action)
            self._log("undo", plane=list(action[0].key))
        return self.mask

    def redo(self) -> np.ndarray:
        if self._redo:
            action = self._redo.pop()
            self._apply(action, before=False)
            self._undo.append(action)
            self._log("redo", plane=list(action[0].key))
        return self.mask

    def clear(self) -> np.ndarray:
        """Remove all prompts and the mask of the current object (undoable)."""
        changes = []
        for key, st in self.planes.items():
            region = (slice(st.bbox[0], st.bbox[2]), slice(st.bbox[1], st.bbox[3])) if st.bbox else None
            before = st.mask[region].copy() if region else None
            changes.append(_Change(key, list(st.prompts), [], region, before,
                                   np.zeros_like(before) if before is not None else None, st.bbox, None))
        if changes:
            self._apply(changes, before=False)
            self._undo.append(changes)
            self._redo.clear()
        self._log("clear")
        return self.mask

    def accept(self, defer_update: bool = False, class_id: int = 1, class_name: str = "object") -> np.ndarray:
        """The object is done: returns its mask and starts a new object.

        The adapter's accept hook (Post-Interaction learning) runs now, or, with
        ``defer_update=True``, later in :meth:`run_pending_updates` (a GUI runs that in a worker
        thread so the viewer stays responsive). ``class_id``/``class_name`` label the object in the
        log (and in a saved session). Raises ``ValueError`` if the mask is empty.
        """
        if int(class_id) < 1 or not str(class_name).strip():
            raise ValueError("an object's class needs class_id >= 1 and a non-empty class_name")
        planes = {k: (list(st.prompts), st.mask.copy()) for k, st in self.planes.items() if st.bbox is not None}
        if not planes:
            raise ValueError("nothing to accept: the current object has an empty mask (add a positive prompt first)")
        t0 = time.perf_counter()
        final = self.mask
        area = int(sum(np.count_nonzero(m) for _, m in planes.values()))
        largest = max(int(np.count_nonzero(m)) for _, m in planes.values())
        diameter = round(float(2.0 * np.sqrt(largest / np.pi)), 2)
        self._log("accept", latency_ms=(time.perf_counter() - t0) * 1e3,
                  extra={"area": area, "planes": [list(k) for k in planes], **self._adaptation_extra(),
                         "class_id": int(class_id), "class_name": str(class_name), "diameter": diameter})
        self._pending.append((self.object_id, self.engine.adapter, AcceptContext(self, planes)))
        self.accepted_diameters[self.object_id] = diameter
        self.planes = {}
        self._undo.clear()
        self._redo.clear()
        self.object_id += 1
        if not defer_update:
            self.run_pending_updates()
        return final

    def withdraw(self, object_id: int) -> float | None:
        """An accepted object was taken back (e.g. undone in the viewer): its size no longer counts
        for ``first_window="auto"``. Returns its diameter (to give back to :meth:`reinstate`).
        What the model learnt from it stays learnt (:meth:`Engine.reset` undoes all learning).
        Logged as a ``withdraw`` event, so that a replay withdraws it too."""
        diameter = self.accepted_diameters.pop(int(object_id), None)
        self._log("withdraw", extra={"diameter": diameter}, object_id=int(object_id))
        return diameter

    def reinstate(self, object_id: int, diameter: float | None) -> None:
        """Count an accepted object's diameter again (a withdrawn object was brought back); logged
        as a ``reinstate`` event."""
        if diameter is not None and (not np.isfinite(diameter) or diameter <= 0):
            raise ValueError(f"an object's diameter must be a positive number of pixels, got {diameter!r}")
        if diameter is not None:
            self.accepted_diameters[int(object_id)] = float(diameter)
        self._log("reinstate", extra={"diameter": None if diameter is None else float(diameter)},
                  object_id=int(object_id))

    def run_pending_updates(self) -> int:
        """Run deferred accept hooks in accept order; returns how many objects were processed."""
        done = 0
        while self._pending:
            object_id, adapter, ctx = self._pending.pop(0)
            for record in adapter.on_accept(self.engine, ctx):
                self._log("update", latency_ms=record.pop("latency_ms", None), extra=record, object_id=object_id)
            done += 1
        return done

    @property
    def pending_updates(self) -> int:
        """Number of accepted objects whose update has not run yet."""
        return len(self._pending)

    # -- state ---------------------------------------------------------------------------------
    @property
    def mask(self) -> np.ndarray:
        """The current object's mask, of the image's spatial shape (bool)."""
        if len(self.spatial_shape) == 2:
            st = self.planes.get(())
            if st is None or st.mask is None:
                return np.zeros(self.spatial_shape, bool)
            return st.mask.T.copy() if self.source.plane_axes[0] > self.source.plane_axes[1] else st.mask.copy()
        out = np.zeros(self.spatial_shape, bool)  # lazily zeroed pages: only touched planes cost
        for key, st in self.planes.items():
            if st.bbox is not None:
                view = out[self.source.plane_index(key)]
                view[...] = st.mask.T if self.source.plane_axes[0] > self.source.plane_axes[1] else st.mask
        return out

    def full_coords(self, plane, yx) -> tuple[int, ...]:
        """Full spatial coordinates of plane pixel ``yx`` on plane ``plane`` (inverse of the log's form)."""
        it = iter(plane)
        pa = self.source.plane_axes
        return tuple(int(yx[0]) if a == pa[0] else int(yx[1]) if a == pa[1] else int(next(it))
                     for a in range(len(self.spatial_shape)))

    def plane_mask(self, plane=()) -> np.ndarray:
        """The current object's 2D mask on one plane."""
        st = self.planes.get(self.source.check_key(plane))
        if st is None or st.mask is None:
            return np.zeros(self.source.plane_shape, bool)
        return st.mask.copy()

    def mask_values(self, plane, points) -> np.ndarray:
        """The current object's mask at plane pixels ``points`` (N x 2, y/x), without copying it.

        Points outside the plane read as background.
        """
        pts = np.rint(np.asarray(points, dtype=np.float64).reshape(-1, 2)).astype(int)
        out = np.zeros(len(pts), bool)
        st = self.planes.get(self.source.check_key(plane))
        if st is None or st.mask is None:
            return out
        h, w = st.mask.shape
        ok = (pts[:, 0] >= 0) & (pts[:, 0] < h) & (pts[:, 1] >= 0) & (pts[:, 1] < w)
        out[ok] = st.mask[pts[ok, 0], pts[ok, 1]]
        return out

    def subscribe(self, listener: Callable[[dict], None]) -> None:
        """Call ``listener(event)`` for every event from now on (e.g. to autosave)."""
        self._listeners.append(listener)

    # -- internals -----------------------------------------------------------------------------
    def _adaptation_extra(self) -> dict:
        """The adaptation's name for a prompt or accept event, with the adapter's full settings when
        the engine's adapter changed since the log last recorded them (so replay rebuilds it)."""
        extra = {"adaptation": self.engine.adaptation}
        if self.engine.adapter is not self._logged_adapter:
            self._logged_adapter = self.engine.adapter
            extra["adapter"] = self.engine.adapter.settings()
        return extra

    def _log(self, kind: str, plane=None, coords=None, label=None, latency_ms=None, extra=None, object_id=None) -> dict:
        event = {
            "seq": len(self.events), "time": time.time(), "kind": kind,
            "object": self.object_id if object_id is None else object_id,
            "plane": list(plane) if plane is not None else [], "coords": coords, "label": label,
            "latency_ms": None if latency_ms is None else round(float(latency_ms), 3),
            "weights": self.engine.weights_hash, "extra": extra or {},
        }
        self.events.append(event)
        for listener in self._listeners:
            listener(event)
        return event

    def _state(self, key) -> PlaneState:
        st = self.planes.get(key)
        if st is None:
            st = self.planes[key] = PlaneState()
        return st

    def _add(self, key: tuple[int, ...], prompt: Prompt, coords) -> np.ndarray:
        t0 = time.perf_counter()
        st = self._state(key)
        previous = list(st.prompts)
        if previous:
            prompt = replace(prompt, corrected=is_correction(prompt, self.mask_values(key, prompt.points)))
        prompts = [p for p in previous if not _supersedes(prompt, p)] + [prompt]
        label = None if prompt.kind in ("box", "prior") else int(prompt.positive)
        if prompt.kind == "prior":  # stored before the event, so an autosave of the event can save it
            self.prior_masks[len(self.events)] = prompt.mask
        self._log(prompt.kind, plane=key, coords=coords, label=label, extra=self._adaptation_extra())
        window = self.choose_window(key, prompts, st.bbox, first=st.bbox is None)
        logits = None
        if window is not None:
            ctx = PromptContext(self, key, window, previous, prompts, prompt)
            for record in self.engine.adapter.on_prompt(self.engine, ctx):
                self._log("update", plane=key, latency_ms=record.pop("latency_ms", None), extra=record)
            logits = ctx.logits
        region, new_values, info = self._predict(key, prompts, window, st, logits)
        before = st.mask[region].copy() if region is not None and st.mask is not None else None
        new_bbox = _bbox(new_values, (region[0].start, region[1].start)) if region is not None else None
        change = _Change(key, previous, prompts, region, before, new_values, st.bbox, new_bbox)
        self._apply([change], before=False)
        self._undo.append([change])
        self._redo.clear()
        latency = (time.perf_counter() - t0) * 1e3
        self._log("predict", plane=key, latency_ms=latency, extra=info)
        return self.mask

    def _apply(self, changes: list[_Change], before: bool) -> None:
        for ch in changes:
            st = self._state(ch.key)
            st.prompts = list(ch.prompts_before if before else ch.prompts_after)
            values = ch.before if before else ch.after
            if ch.region is not None:
                if st.mask is None:
                    st.mask = np.zeros(self.source.plane_shape, bool)
                st.mask[ch.region] = values
            st.bbox = ch.bbox_before if before else ch.bbox_after
            self.changed = (ch.key, ch.region) if ch.region is not None else None

    # -- prediction ----------------------------------------------------------------------------
    def choose_window(self, key, prompts: list[Prompt], mask_bbox=None, first: bool = False) -> guidance.Window | None:
        """The local window for ``prompts`` (None when there is no positive prompt, box or prior).

        ``first``: the object has no mask yet, so with only clicks or scribbles the window side is
        at least the engine's ``first_window`` (the weights' ``window.first_size``). Other windows
        are at least ``LATER_WINDOW_SHARE`` of it (with ``"auto"``: of the accepted objects' size, or
        of what this object's first click measured).
        """
        pos = [p.points for p in prompts if p.positive and p.kind in ("click", "scribble")]
        extra = mask_bbox
        for p in prompts:
            if p.kind in ("box", "prior"):
                extra = _union(extra, p.box)
        pts = np.concatenate(pos) if pos else np.zeros((0, 2))
        if len(pts) == 0 and extra is None:
            return None
        if first and extra is None:
            min_size = self._first_window(key, pts)
        else:  # later windows keep the object at the scale of its first window
            size = self.engine.first_window
            if size == "auto":
                size = self._object_window() or self._estimates.get(self.object_id) or guidance.MIN_WINDOW
            min_size = max(8, int(round(guidance.LATER_WINDOW_SHARE * size)))
        return guidance.choose_window(pts, self.source.plane_shape, extra, min_size=min_size)

    def _object_window(self) -> int | None:
        """Four times the median diameter of the objects accepted so far (None before the first)."""
        if not self.accepted_diameters:
            return None
        diameter = float(np.median(list(self.accepted_diameters.values())))
        return max(guidance.AUTO_MIN_WINDOW, int(round(guidance.AUTO_WINDOW_DIAMETERS * diameter)))

    def _first_window(self, key, pts: np.ndarray) -> int:
        """The engine's first-window side. With ``"auto"``: four times the median diameter of the
        objects accepted in this session, or, before the first one, of the blob under the prompt."""
        size = self.engine.first_window
        if size != "auto":
            return size
        known = self._object_window()
        if known is not None:
            return known
        centre = np.rint((pts.min(0) + pts.max(0)) / 2).astype(int)
        r = guidance.diameter_patch_radius()
        window = guidance.Window(int(centre[0]) - r, int(centre[1]) - r, 2 * r + 1)
        patch = self.source.crop(key, window)
        _, _, wy, wx = window.clip(self.source.plane_shape)
        # Mirror the plane beyond its border instead of the zeros crop() puts there (no false edge).
        pad = ((wy.start, window.size - wy.stop), (wx.start, window.size - wx.stop))
        patch = np.pad(patch[wy, wx], pad, mode="reflect" if min(patch[wy, wx].shape) > 1 else "edge")
        diameter = guidance.estimate_diameter(patch)
        size = max(guidance.AUTO_MIN_WINDOW, int(round(guidance.AUTO_WINDOW_DIAMETERS * diameter)))
        self._estimates = {self.object_id: size}  # the object's later windows follow it
        return size

    def inputs(self, key, prompts: list[Prompt], window: guidance.Window) -> np.ndarray:
        """The (4, S, S) network input for ``prompts`` on ``window`` of plane ``key``."""
        image = _resize(self.source.crop(key, window), guidance.WORK_SIZE)
        pos = [window.to_work(p.points) for p in prompts if p.positive and p.kind in ("click", "scribble")]
        neg = [window.to_work(p.points) for p in prompts if not p.positive]
        prior = None
        for p in prompts:
            if p.kind == "box":
                y0, x0 = window.to_work(np.array([p.box[0], p.box[1]]) - 0.5)
                y1, x1 = window.to_work(np.array([p.box[2], p.box[3]]) - 0.5)
                layer = guidance.box_prior((y0, x0, y1, x1))
            elif p.kind == "prior":
                layer = _resize(guidance.crop_plane(p.mask, window), guidance.WORK_SIZE)
            else:
                continue
            prior = layer if prior is None else np.maximum(prior, layer)
        return guidance.encode(
            image,
            np.concatenate(pos) if pos else np.zeros((0, 2)),
            np.concatenate(neg) if neg else np.zeros((0, 2)),
            prior,
        )

    def predict_window(self, key, prompts: list[Prompt], window: guidance.Window) -> np.ndarray:
        """Logits at native window resolution (size x size) for ``prompts``."""
        logits = self.engine.predict(self.inputs(key, prompts, window)[None])[0]
        return _resize(logits, window.size)

    def _predict(self, key, prompts, window, st: PlaneState, logits: np.ndarray | None = None):
        """Predict ``prompts`` on ``window`` (growing it if the mask hits its border).

        ``logits`` (working size), if given, are this prediction for ``window`` already made.

        Returns the changed plane region, the new mask values there, and details for the log.
        """
        h, w = self.source.plane_shape
        if window is None:  # only negative prompts: nothing is segmented
            region = (slice(st.bbox[0], st.bbox[2]), slice(st.bbox[1], st.bbox[3])) if st.bbox else None
            values = np.zeros((st.bbox[2] - st.bbox[0], st.bbox[3] - st.bbox[1]), bool) if st.bbox else None
            return region, values, {"window": None, "area": 0, "passes": 0}
        passes = 0
        while True:
            passes += 1
            if passes == 1 and logits is not None:
                pred = _resize(logits, window.size) > 0
            else:
                pred = self.predict_window(key, prompts, window) > 0
            ys, xs, wy, wx = window.clip((h, w))
            inside = pred[wy, wx]
            touches = (
                (ys.start > 0 and inside[0].any()) or (ys.stop < h and inside[-1].any())
                or (xs.start > 0 and inside[:, 0].any()) or (xs.stop < w and inside[:, -1].any())
            )
            if not touches or passes > MAX_GROW_PASSES or window.size >= 1.1 * max(h, w):
                break
            bb = _bbox(inside, (ys.start, xs.start))
            window = guidance.choose_window(np.zeros((0, 2)), (h, w), _union(bb, st.bbox), min_size=int(window.size * GROW),
                                            context=1.0)
        region_bb = _union((ys.start, xs.start, ys.stop, xs.stop), st.bbox)
        region = (slice(region_bb[0], region_bb[2]), slice(region_bb[1], region_bb[3]))
        values = np.zeros((region_bb[2] - region_bb[0], region_bb[3] - region_bb[1]), bool)
        values[ys.start - region_bb[0]: ys.stop - region_bb[0], xs.start - region_bb[1]: xs.stop - region_bb[1]] = inside
        info = {"window": [window.y0, window.x0, window.size], "area": int(inside.sum()), "passes": passes}
        return region, values, info
