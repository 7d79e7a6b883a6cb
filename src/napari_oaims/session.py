"""One image being annotated, one object at a time: prompts, prediction, undo/redo, accept, log.

A :class:`Session` is made by :meth:`napari_oaims.Engine.session`. It keeps, for the object in
progress, the prompts and the mask of every plane the user touched (a 2D image has one plane;
in an nD image the plane of a click is given by its coordinates on the non-plane axes). Each
prompt re-predicts that plane on a local window (see :mod:`napari_oaims.core.guidance`) and
returns a :class:`Result`: the plane regions it changed, their new values, and the object's mask.
Every step is recorded as an event (schema: :mod:`napari_oaims.core.events`) and handed to the
listeners given to :meth:`Session.subscribe`, with the result it made.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_oaims import answer
from napari_oaims.adapt.base import AcceptedObject, PromptUpdate, run_accepted
from napari_oaims.core import geometry, guidance
from napari_oaims.core import prompts as checks
from napari_oaims.core.edges import EdgeEvidence
from napari_oaims.core.events import make_event
from napari_oaims.core.history import History, PlaneState, apply_edits, clear_edits, mask_edits, snapshot
from napari_oaims.core.history import PlaneEdit as _Change
from napari_oaims.core.prompts import Prompt, box_prompt, is_correction, prior_prompt, supersedes
from napari_oaims.core.results import Accepted, PlaneChange, Result
from napari_oaims.core.source import ImageSource
from napari_oaims.propagate.api import PropagationMixin
from napari_oaims.session_windows import choose_window, later_size

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.core.progress import CancelLike, Progress
    from napari_oaims.engine import Engine


def _serialised(method):
    """Run ``method`` holding the session's re-entrant lock: calls from several threads take turns
    (a prompt given while a propagation runs waits for it)."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._mutex:
            return method(self, *args, **kwargs)

    return run


class _Plane:
    """The :class:`~napari_oaims.adapt.base.PlaneView` of one plane of a session (what adapters see)."""

    def __init__(self, session: "Session", key: tuple[int, ...]):
        self._session = session
        self.key = key

    def encode(self, prompts: list[Prompt], window: guidance.Window) -> np.ndarray:
        return self._session.encode(self.key, prompts, window)

    def window(self, prompts: list[Prompt], mask_bbox=None) -> guidance.Window:
        return self._session.window(self.key, prompts, mask_bbox)


class Session(PropagationMixin):
    """Interactive segmentation of one image (see the module docstring).

    Methods that change the session take turns when called from several threads (a prompt or
    an accept given while :meth:`propagate` runs waits for it).
    """

    propagate = _serialised(PropagationMixin.propagate)
    propagate_objects = _serialised(PropagationMixin.propagate_objects)
    set_mask = _serialised(PropagationMixin.set_mask)

    def __init__(self, engine: "Engine", image: Any, plane_axes=(-2, -1), channel_axis=None, rgb=None, channel=None):
        self._mutex = threading.RLock()  # public methods that change the session take turns (_serialised)
        self.engine = engine
        self.source = ImageSource(image, plane_axes=plane_axes, channel_axis=channel_axis, rgb=rgb, channel=channel)
        self.events: list[dict[str, Any]] = []
        self.object_id = 1
        self.planes: dict[tuple[int, ...], PlaneState] = {}
        self._history: History[list[_Change]] = History()
        self._listeners: list[Callable[[dict, Result | None], None]] = []
        self._pending: list[tuple[int, Any, AcceptedObject]] = []
        #: Prior masks given with :meth:`prior`, by the ``seq`` of their event (for saving/replay).
        self.prior_masks: dict[int, np.ndarray] = {}
        #: The voxels a propagation was kept out of, plane by plane, by the ``seq`` of its
        #: ``propagate`` event (:attr:`napari_oaims.propagate.Barrier.blocked`; for saving/replay).
        self.barrier_masks: dict[int, dict] = {}
        #: Equivalent diameters (px, largest plane) of the objects accepted so far, by object id:
        #: with ``first_window="auto"`` their median sizes the next first window. An object taken
        #: back (:meth:`withdraw`) leaves it; a resumed session gets it back from the log.
        self.accepted_diameters: dict[int, float] = {}
        #: The "auto" first-window side measured for the object in progress (by object id): its
        #: later windows follow it.
        self.first_sizes: dict[int, int] = {}
        #: Whether answers should follow the image's edges, from the accepted objects (``engine.edges``).
        self.edge_evidence = EdgeEvidence()
        self._logged_adapter = self.engine.adapter  # the adapter whose settings the log last recorded
        self._logged_edges = self.engine.edges  # the edges mode the log last recorded
        #: The answer rules (:data:`napari_oaims.answer.RULES`; logged, so that replay follows them).
        self.correct_near = self.larger_windows = self.remove_again = self.first_peak = True
        self._log(
            "session",
            extra={
                "shape": list(self.source.spatial_shape),
                "plane_axes": list(self.source.plane_axes),
                "rgb": self.source.rgb,
                "channel_axis": self.source.channel_axis,
                "adapter": self.engine.adapter.settings(),
                "edges": self.engine.edges,
                **{rule: getattr(self, rule) for rule in answer.RULES},
                "edge_candidates": list(self.edge_evidence.candidates),
            },
        )

    # -- public prompts ------------------------------------------------------------------------
    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return self.source.spatial_shape

    @_serialised
    def click(self, coords, positive: bool = True) -> Result:
        """Add a positive or negative click.

        Parameters
        ----------
        coords : sequence of float
            Full spatial coordinates (one per spatial axis); the click segments the plane it lies in.
        positive : bool
            True for "this is the object", False for "this is not".

        Returns
        -------
        Result
            ``.mask`` is the object's mask of the image's spatial shape, ``.changes`` the plane
            regions that changed.
        """
        key, (y, x) = self.source.check_point(checks.check_numbers(coords))
        prompt = Prompt("click", checks.check_positive(positive), np.array([[y, x]]))
        return self._add(key, prompt, coords=[y, x])

    @_serialised
    def box(self, box, plane=None) -> Result:
        """Box ``(y0, x0, y1, x1)`` in plane coordinates (ends exclusive); ``plane`` for nD images."""
        key = self.source.check_key(plane)
        prompt = box_prompt(box, self.source.plane_shape)
        return self._add(key, prompt, coords=list(prompt.box))

    @_serialised
    def scribble(self, points, positive: bool = True) -> Result:
        """A scribble through ``points`` (N x ndim full coordinates, all on one plane)."""
        pts = np.asarray(checks.check_numbers(points, "scribble points"), dtype=np.float64)
        if pts.ndim != 2 or len(pts) == 0:
            raise ValueError(f"a scribble is an (N, {len(self.spatial_shape)}) array of points, got shape {pts.shape}")
        checked = [self.source.check_point(p) for p in pts]
        keys = {k for k, _ in checked}
        if len(keys) != 1:
            raise ValueError(f"all points of a scribble must lie on one plane, got planes {sorted(keys)}")
        path = guidance.rasterise_path(np.array([yx for _, yx in checked]))
        prompt = Prompt("scribble", checks.check_positive(positive), path)
        return self._add(keys.pop(), prompt, coords=[list(yx) for _, yx in checked])

    @_serialised
    def prior(self, mask2d, plane=None) -> Result:
        """Give a prior mask for a plane (e.g. a rough outline); it feeds the prior channel."""
        key = self.source.check_key(plane)
        prompt = prior_prompt(mask2d, self.source.plane_shape)
        return self._add(key, prompt, coords=list(prompt.box))

    # -- undo / redo / clear -------------------------------------------------------------------
    @_serialised
    def undo(self) -> Result:
        """Undo the last prompt or clear of the current object (no-op if there is none)."""
        return self._step(self._history.undo(), "undo")

    @_serialised
    def redo(self) -> Result:
        """Redo what :meth:`undo` took back (no-op if there is nothing)."""
        return self._step(self._history.redo(), "redo")

    def _step(self, action: list[_Change] | None, kind: str) -> Result:
        if action is None:
            return self._result(())
        result = self._result(self._apply(action, before=kind == "undo"))
        self._log(kind, plane=list(action[0].key), result=result)
        return result

    @_serialised
    def clear(self) -> Result:
        """Remove all prompts and the mask of the current object (undoable)."""
        changes = clear_edits(self.planes)
        applied: tuple[PlaneChange, ...] = ()
        if changes:
            applied = self._apply(changes, before=False)
            self._history.push(changes)
        result = self._result(applied)
        self._log("clear", result=result)
        return result

    @_serialised
    def accept(
        self, defer_update: bool = False, class_id: int = 1, class_name: str = "object", overwrite: bool = False
    ) -> Accepted:
        """The object is done: returns it and starts a new object.

        Parameters
        ----------
        defer_update : bool
            Run Post-Interaction learning later, in :meth:`run_pending_updates` (a GUI's worker).
        class_id, class_name
            The object's class in the log and in a saved session.
        overwrite : bool
            Whether painting the object into a label image may take pixels of objects accepted
            before (:func:`napari_oaims.core.labels.paint`); by default they are kept. Logged.

        Returns
        -------
        Accepted
            ``.mask``, ``.object_id``, ``.class_id``, ``.class_name``, ``.overwrite``;
            ``ValueError`` if the mask is empty.
        """
        if int(class_id) < 1 or not str(class_name).strip():
            raise ValueError("an object's class needs class_id >= 1 and a non-empty class_name")
        planes = {k: st for k, st in self.planes.items() if st.bbox is not None}
        if not planes:
            raise ValueError("nothing to accept: the current object has an empty mask (add a positive prompt first)")
        t0 = time.perf_counter()
        snapshot = self._snapshot()
        labelled = {"class_id": int(class_id), "class_name": str(class_name), "overwrite": bool(overwrite)}
        accepted = Accepted((), self.spatial_shape, self.source.plane_axes, snapshot, self.object_id, **labelled)
        largest = max(int(np.count_nonzero(c)) for _, c in snapshot.values())
        diameter = round(geometry.diameter(largest), 2)
        edge_gain = self.edge_evidence.accepted(self.object_id, {k: st.mask for k, st in planes.items()})
        self._log(
            "accept",
            latency_ms=(time.perf_counter() - t0) * 1e3,
            result=accepted,
            extra={
                "area": accepted.area,
                "planes": [list(k) for k in snapshot],
                **self._adaptation_extra(),
                **labelled,
                "diameter": diameter,
                **edge_gain,
            },
        )
        views = [(_Plane(self, k), list(st.prompts), st.mask.copy()) for k, st in planes.items()]
        self._pending.append((self.object_id, self.engine.adapter, AcceptedObject(views)))
        self.accepted_diameters[self.object_id] = diameter
        self.planes = {}
        self._history.clear()
        self.object_id += 1
        if not defer_update:
            self.run_pending_updates()
        return accepted

    @_serialised
    def withdraw(self, object_id: int) -> float | None:
        """An accepted object was taken back: its size and edge gain no longer count (what was learnt
        stays learnt). Returns its diameter for :meth:`reinstate`; logged."""
        diameter = self.accepted_diameters.pop(int(object_id), None)
        self.edge_evidence.withdraw(object_id)
        self._log("withdraw", extra={"diameter": diameter}, object_id=int(object_id))
        return diameter

    @_serialised
    def reinstate(self, object_id: int, diameter: float | None) -> None:
        """Count a withdrawn object's diameter and edge gain again (it was brought back); logged."""
        if diameter is not None and (not np.isfinite(diameter) or diameter <= 0):
            raise ValueError(f"an object's diameter must be a positive number of pixels, got {diameter!r}")
        if diameter is not None:
            self.accepted_diameters[int(object_id)] = float(diameter)
        self.edge_evidence.reinstate(object_id)
        self._log(
            "reinstate", extra={"diameter": None if diameter is None else float(diameter)}, object_id=int(object_id)
        )

    @_serialised
    def run_pending_updates(self, progress: Progress | None = None, cancel: CancelLike = None) -> int:
        """Run deferred accept hooks in accept order; returns how many objects were processed
        (``progress`` and ``cancel``: :func:`~napari_oaims.adapt.base.run_accepted`)."""

        def log(object_id: int, record: dict) -> None:
            self._log("update", latency_ms=record.pop("latency_ms", None), extra=record, object_id=object_id)

        return run_accepted(self.engine, self._pending, log, progress, cancel)

    @property
    def pending_updates(self) -> int:
        """Number of accepted objects whose update has not run yet."""
        return len(self._pending)

    # -- state ---------------------------------------------------------------------------------
    @property
    def mask(self) -> np.ndarray:
        """The current object's mask, of the image's spatial shape (bool)."""
        return self._result(()).mask

    def full_coords(self, plane, yx) -> tuple[int, ...]:
        """Full spatial coordinates of plane pixel ``yx`` on plane ``plane`` (inverse of the log's form)."""
        return tuple(int(c) for c in geometry.full_coords(self.source.plane_axes, len(self.spatial_shape), plane, yx))

    def plane_mask(self, plane=()) -> np.ndarray:
        """The current object's 2D mask on one plane."""
        st = self.planes.get(self.source.check_key(plane))
        if st is None or st.mask is None:
            return np.zeros(self.source.plane_shape, bool)
        return st.mask.copy()

    def found_nothing(self, plane=()) -> bool:
        """Whether the last prompt on ``plane`` asked for an object (a positive click or scribble, a box,
        a prior) and the object's mask there is empty. Only a prior can end so (``Result.fallback``)."""
        st = self.planes.get(self.source.check_key(plane))
        if st is None or not st.prompts or not st.prompts[-1].guides:
            return False
        return st.mask is None or not st.mask.any()

    def mask_values(self, plane, points) -> np.ndarray:
        """The current object's mask at plane pixels ``points`` (N x 2, y/x; outside: background)."""
        st = self.planes.get(self.source.check_key(plane))
        return geometry.values_at(None if st is None else st.mask, points)

    def prompts(self, plane=()) -> list[Prompt]:
        """The current object's prompts on one plane, in order."""
        st = self.planes.get(self.source.check_key(plane))
        return list(st.prompts) if st is not None else []

    def subscribe(self, listener: Callable[[dict, Result | None], None]) -> None:
        """Call ``listener(event, result)`` for every event from now on (e.g. to autosave).

        ``result``: the :class:`Result` a ``predict``, ``undo``, ``redo`` or ``clear`` event made,
        the :class:`Accepted` object of an ``accept`` event, None for other events."""
        self._listeners.append(listener)

    def view(self, plane=()) -> "_Plane":
        """One plane as adapters see it (:class:`~napari_oaims.adapt.base.PlaneView`)."""
        return _Plane(self, self.source.check_key(plane))

    # -- planes, windows and whole-step edits (what propagation and adapters build on) -----------
    def plane_crop(self, plane) -> tuple[geometry.Box, np.ndarray] | None:
        """The current object's mask on ``plane`` as ``(box, crop)`` (a copy), None when empty."""
        st = self.planes.get(self.source.check_key(plane))
        if st is None or st.bbox is None:
            return None
        return st.bbox, st.mask[geometry.box_slices(st.bbox)].copy()

    def prompted_planes(self) -> list[tuple[int, ...]]:
        """The planes of the current object that hold prompts (its anchors), in key order."""
        return sorted(k for k, st in self.planes.items() if st.prompts)

    def window(
        self, plane, prompts: list[Prompt], mask_bbox=None, min_size: int | None = None
    ) -> guidance.Window | None:
        """The local window the session predicts ``prompts`` on, on ``plane`` (``mask_bbox``: a
        mask it must hold; ``min_size``: its smallest side, default :meth:`later_window`); None
        when there is no positive prompt, box, prior or mask."""
        return choose_window(self, self.source.check_key(plane), prompts, mask_bbox, min_size=min_size)

    def later_window(self) -> int:
        """The smallest side of the current object's windows after its first (the window rule:
        :func:`napari_oaims.session_windows.later_size`)."""
        return later_size(self)

    def encode(self, plane, prompts: list[Prompt], window: guidance.Window) -> np.ndarray:
        """The (4, S, S) network input for ``prompts`` on ``window`` of ``plane``."""
        return self._encode(self.source.check_key(plane), prompts, window)

    def record(self, kind: str, plane=None, coords=None, extra=None, latency_ms=None, adaptation: bool = False) -> dict:
        """Log an event of ``kind`` (``adaptation``: with the adaptation's name, as prompts are)."""
        extra = {**(self._adaptation_extra() if adaptation else {}), **(extra or {})}
        return self._log(kind, plane=plane, coords=coords, extra=extra, latency_ms=latency_ms)

    def apply_masks(
        self,
        masks: dict[tuple[int, ...], tuple[geometry.Box, np.ndarray] | None],
        kind: str,
        prompts: dict[tuple[int, ...], list[Prompt]] | None = None,
        extra: dict | Callable[[tuple[PlaneChange, ...]], dict] | None = None,
        plane=None,
        started: float | None = None,
    ) -> Result:
        """Give planes new masks (``(box, crop)``, None: empty) and, for the planes ``prompts``
        names, new prompts, as one undoable step logged as one ``kind`` event (``extra``, or
        ``extra(changes)``; latency from ``started``, a ``time.perf_counter()``). Planes left as
        they were are no change; when nothing changes, nothing is logged."""
        changes = mask_edits(self.planes, masks, prompts or {})
        if not changes:
            return self._result(())
        result = self._result(self._apply(changes, before=False))
        self._history.push(changes)
        latency = None if started is None else (time.perf_counter() - started) * 1e3
        extra = extra(result.changes) if callable(extra) else extra
        self._log(kind, plane=plane, latency_ms=latency, extra=extra, result=result)
        return result

    # -- internals -----------------------------------------------------------------------------
    def _snapshot(self) -> dict[tuple[int, ...], tuple[geometry.Box, np.ndarray]]:
        return snapshot(self.planes)

    def _result(self, changes: tuple[PlaneChange, ...]) -> Result:
        return Result(tuple(changes), self.spatial_shape, self.source.plane_axes, self._snapshot(), self.object_id)

    def _adaptation_extra(self) -> dict:
        """The adaptation's name for a prompt or accept event, with the adapter's full settings and
        the edges mode when they changed since the log last recorded them (so replay follows)."""
        extra = {"adaptation": self.engine.adaptation}
        if self.engine.adapter is not self._logged_adapter:
            self._logged_adapter = self.engine.adapter
            extra["adapter"] = self.engine.adapter.settings()
        if self.engine.edges != self._logged_edges:  # the mode changed since the log last said it
            self._logged_edges = extra["edges"] = self.engine.edges
        return extra

    def _log(
        self,
        kind: str,
        plane=None,
        coords=None,
        label=None,
        latency_ms=None,
        extra=None,
        object_id=None,
        result: Result | None = None,
    ) -> dict:
        oid = self.object_id if object_id is None else object_id
        event = make_event(
            len(self.events), kind, oid, self.engine.weights_hash, plane, coords, label, latency_ms, extra
        )
        self.events.append(event)
        for listener in self._listeners:
            listener(event, result)
        return event

    def _add(self, key: tuple[int, ...], prompt: Prompt, coords) -> Result:
        t0 = time.perf_counter()
        st = self.planes.setdefault(key, PlaneState([]))
        previous = list(st.prompts)
        if previous:
            prompt = replace(prompt, corrected=is_correction(prompt, self.mask_values(key, prompt.points)))
        prompts = [p for p in previous if not supersedes(prompt, p)] + [prompt]
        if not previous and st.bbox is not None and prompt.kind != "prior":
            # A propagated plane (a mask, no prompts): the prompt edits that mask, which goes in first
            # as a prior; the plane becomes an anchor (see propagate.edit_prior for an object's end).
            from napari_oaims.propagate import edit_prior

            prompt = replace(prompt, corrected=is_correction(prompt, self.mask_values(key, prompt.points)))
            prior = edit_prior(st.mask, st.bbox, prompt)
            prompts = ([] if prior is None else [prior]) + [prompt]
        label = None if prompt.kind in ("box", "prior") else int(prompt.positive)
        if prompt.kind == "prior":  # stored before the event, so an autosave of the event can save it
            self.prior_masks[len(self.events)] = prompt.mask
        self._log(prompt.kind, plane=key, coords=coords, label=label, extra=self._adaptation_extra())
        window = choose_window(self, key, prompts, st.bbox, first=st.bbox is None)  # the window rule
        logits = None
        if window is not None:
            reply = self.engine.adapter.on_prompt(
                self.engine, PromptUpdate(_Plane(self, key), window, previous, prompts, prompt)
            )
            for record in reply.records:
                self._log("update", plane=key, latency_ms=record.pop("latency_ms", None), extra=record)
            logits = reply.logits
        region, new_values, info = answer.predict(self, key, prompts, window, st, logits)
        if region is None:
            before = None
        elif st.mask is None:  # the plane's first mask: it was empty there
            before = np.zeros((region[0].stop - region[0].start, region[1].stop - region[1].start), bool)
        else:
            before = st.mask[region].copy()
        if region is not None:  # a correction changes the mask shown before it near the click only
            new_values = answer.corrected(self, prompts, before, new_values, (region[0].start, region[1].start))
        new_bbox = geometry.bbox(new_values, (region[0].start, region[1].start)) if region is not None else None
        change = _Change(key, previous, prompts, region, before, new_values, st.bbox, new_bbox)
        result = self._result(self._apply([change], before=False))
        self._history.push([change])
        result = replace(result, fallback=info.get("fallback"))
        self._log("predict", plane=key, latency_ms=(time.perf_counter() - t0) * 1e3, extra=info, result=result)
        return result

    def _apply(self, changes: list[_Change], before: bool) -> tuple[PlaneChange, ...]:
        return apply_edits(self.planes, self.source.plane_shape, changes, before)

    # -- prediction ----------------------------------------------------------------------------
    def _encode(self, key, prompts: list[Prompt], window: guidance.Window) -> np.ndarray:
        """The (4, S, S) network input for ``prompts`` on ``window`` of plane ``key``."""
        return guidance.encode_prompts(self.source.crop(key, window), prompts, window)

    def predict_window(self, plane, prompts: list[Prompt], window: guidance.Window) -> np.ndarray:
        """The model's logits for ``prompts`` over ``window`` of ``plane``, at the window's native
        resolution (size x size); nothing in the session changes."""
        key = tuple(plane)
        logits = self.engine.predict(self._encode(key, prompts, window)[None])[0]
        return guidance.resize_window(logits, window.size)
