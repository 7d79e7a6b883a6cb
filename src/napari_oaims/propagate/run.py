"""Carry the object of a session through a stack: plan, per-slice steps, stopping, fusion.

*Anchors* are the planes the user prompted. Along the propagation axis every line of planes
(the planes that differ only in their coordinate on that axis) that holds an anchor is redone:

* outward from the lowest and the highest anchor, slice by slice, with the stop rules
  (:func:`~napari_oaims.propagate.stops.stop_reason`): the mask vanished, its overlap with the
  previous slice dropped, its area jumped, the image no longer shows the object, the intensity
  inside the mask jumped (another object), its intensity profile along the axis dipped and rose
  again (the seam between touching objects), its area grew again after a neck, stopped shrinking
  far below its largest (a plateau: a wall it spilled onto goes on past its end), or its signal
  (area times contrast) halved and grew again (a waist: an object stacked behind it begins), or
  only a structure that runs through the whole stack beside it is left (``through``);
  where several rules find an end on one slice, the earliest end wins;
* between two anchors, for ``ema`` and ``frozen`` from the anchor with the larger mask to the
  other (a model carrying a mask follows its object where it shrinks, not where it grows:
  ``PropagateSettings.cross_from_larger``); for ``registration`` and ``copy`` (and anchors of
  equal area) from both ends, each chain across the whole gap, fused by distance
  (``p = w_a p_a + w_b p_b`` with ``w_a = (b - z) / (b - a)``);
* an anchor whose mask is empty (e.g. a negative click on a propagated slice) marks where the
  object ends: no chain starts from it and none passes it.

Each step of ``ema`` and ``frozen`` predicts the slice from the previous slice's mask (the prior
channel) and a positive click at the deepest point of each of its larger components, on a local
window around it (grown when the mask touches the border, as for a click); ``ema`` adapts the
temporary teacher on the way (:mod:`napari_oaims.propagate.ema`). ``registration`` and ``copy``
carry the chain's anchor mask itself (:mod:`napari_oaims.propagate.registration`).

Whatever the method, each slice keeps only the part of its mask that *continues* the previous
slice (:func:`~napari_oaims.propagate.stops.continuing`: components that overlap the previous
mask, within reach of it), and never takes a voxel of the *barrier* (accepted objects, other
objects carried at the same time). The model's slices also leave out what runs through the whole
stack beside the object where the chain's anchor left it out (:mod:`napari_oaims.propagate.through`:
a wall of the object's intensity).

Nothing here changes the session: :func:`run` reads it through its public interface (the anchors'
masks and prompts, windows and encoded inputs) and returns the new plane masks;
:meth:`napari_oaims.Session.propagate` applies them as one undoable step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_oaims.core import geometry
from napari_oaims.core.progress import CancelLike, Progress, check_cancel, emit
from napari_oaims.propagate.anchors import Anchor, Barrier, Key, session_anchors
from napari_oaims.propagate.masks import Sparse
from napari_oaims.propagate.plan import (
    MODEL_METHODS,
    Chain,
    Line,
    keep_extent,
    key_of,
    plan,
    resolve_axis,
    resolve_extent,
)
from napari_oaims.propagate.settings import METHODS, PropagateSettings, resolve
from napari_oaims.propagate.steps import Context
from napari_oaims.propagate.stops import Track, brightened, continuing, is_cap, stop_reason
from napari_oaims.propagate.through import cut_through, merge_through

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.session import Session


@dataclass
class Outcome:
    """What :func:`run` computed: new masks of the redone planes (empty ones included)."""

    axis: int
    extent: tuple[int, int]
    method: str
    settings: PropagateSettings
    planes: dict[tuple[int, ...], Sparse]
    anchors: list[tuple[int, ...]]
    stats: dict[str, Any]
    #: The probabilities behind ``planes`` (``planes`` is them above 0.5).
    probs: dict[tuple[int, ...], Sparse] = field(default_factory=dict)
    #: The voxels the barrier kept out, plane by plane (:attr:`Barrier.blocked`).
    blocked: dict[tuple[int, ...], list[Sparse]] = field(default_factory=dict)


# -- one chain, slice by slice ------------------------------------------------------------------
class Walk:
    """One chain of one object being carried, a slice at a time: :meth:`predict` the next slice
    (the barrier applied), then :meth:`commit` it (what continues the previous slice, the stop
    rules). Between the two, :func:`napari_oaims.propagate.objects.propagate_objects` settles the
    voxels that several objects predicted on the same slice."""

    def __init__(self, carry: "Carry", ln: Line, chain: Chain):
        self.carry, self.ln, self.chain = carry, ln, chain
        ctx, s = carry.ctx, carry.ctx.settings
        self.akey = ln.anchors[chain.anchor]
        self.prev = carry.anchors[self.akey].sparse
        self.prev_key = self.akey
        c0, mean0 = ctx.anchor_contrast(self.akey) if chain.open else (None, None)
        self.track = Track(c0, mean0, self.prev.area, self.prev.area)
        # the anchors nearest the chain's start give the interactive loss (ema)
        near = sorted(ln.nonempty, key=lambda p: (abs(p - chain.anchor), p))
        self.samples = []
        if ctx.method == "ema":
            found = (ctx.anchor_sample(ln.anchors[p]) for p in near[: s.max_anchors])
            self.samples = [x for x in found if x is not None]
        self.through, self.ran_past = None, False
        self.through_end, self.end = None, None  # a gap's end anchor, and its map merged in
        if ctx.method in MODEL_METHODS:
            keys = [key_of(ln.line, carry.kpos, p) for p in range(*ln.span)]
            self.through = ctx.through(self.akey, keys)
            end = chain.positions[-1] + (1 if chain.positions[0] > chain.anchor else -1) if chain.positions else None
            if self.through is not None and end in ln.nonempty:
                other = ctx.through(ln.anchors[end], keys)
                if other is not None:
                    self.through_end, self.end = merge_through(self.through, other), end
        self.index, self.n, self.reason, self.at = 0, 0, None, None
        self.finished = not chain.positions
        self._pending: tuple | None = None

    @property
    def done(self) -> int:
        """Slices of the chain behind it (all of them once it stopped)."""
        return len(self.chain.positions) if self.finished else self.index

    @property
    def key(self) -> Key:
        """The plane it predicts next."""
        return key_of(self.ln.line, self.carry.kpos, self.chain.positions[self.index])

    def predict(self) -> Sparse:
        """The next slice's probabilities, with the barrier's voxels at zero (the taken ones only
        with ``barrier_steers``; else :meth:`commit` leaves them out of what it stores)."""
        ctx, s, pos = self.carry.ctx, self.carry.ctx.settings, self.chain.positions[self.index]
        t0, key = time.perf_counter(), self.key
        if ctx.method in ("ema", "frozen"):
            rng = np.random.default_rng([s.seed, *self.ln.line, self.chain.index, pos])
            cap = is_cap(self.prev, self.track, s)
            prob, info = ctx.model_step(key, self.prev, rng, self.samples, self.prev_key, cap=cap)
        else:
            prob, info = ctx.carry_step(key, self.akey)
        prob = ctx.barrier.apply(key, prob, taken=s.barrier_steers)
        self._pending = (t0, info)
        return prob

    def commit(self, prob: Sparse) -> Sparse | None:
        """Keep the predicted slice ``prob`` (settled): returns its mask, or None when the chain
        stopped there."""
        ctx, s, chain = self.carry.ctx, self.carry.ctx.settings, self.chain
        (t0, info), self._pending = self._pending, None
        pos, key = chain.positions[self.index], self.key
        mask = prob.threshold()
        if ctx.method in ("ema", "frozen"):
            cap = is_cap(self.prev, self.track, s)
            kept = continuing(self.cut_through(mask), info.pop("moved", self.prev), s, cap=cap)
            if chain.open and not cap:
                kept = brightened(ctx, key, self.akey, kept, self.track)
            if kept.area < mask.area:
                prob = Sparse(prob.box, prob.values * kept.in_box(prob.box))
                mask = kept
        reason = None
        if chain.open:
            reason = stop_reason(ctx, key, mask, self.prev, self.track, pos)
        elif mask.box is None:
            reason = "vanished"
        if reason == "vanished" and self.ran_past:
            reason = "through"  # only what runs through the stack beside the object was left
        ms = (time.perf_counter() - t0) * 1e3
        shown = ("n_aug", "uncertain", "kept", "loss", "passes", "blank")
        self.carry.stats["slices"].append(
            {"plane": list(key), "ms": round(ms, 2), "stop": reason, **{k: v for k, v in info.items() if k in shown}}
        )
        self.index += 1
        results = self.carry.results.setdefault(self.ln.line, {})
        if reason is not None:
            self.reason, self.at = reason, pos
            if self.track.cut is not None:  # the object ended before: drop the slices from there
                walked = chain.positions[: chain.positions.index(pos)]
                dropped = walked[walked.index(self.track.cut) :] if self.track.cut in walked else []
                for p in dropped:
                    results[p] = [r for r in results.get(p, []) if r[0] != chain.anchor]
                self.n -= len(dropped)
                self.at = dropped[0] if dropped else pos
            self._finish()
            return None
        self.n += 1
        stored = prob if s.barrier_steers else ctx.barrier.apply(key, prob, extra=False)
        results.setdefault(pos, []).append((chain.anchor, stored))
        self.prev, self.prev_key = mask, key
        if self.index == len(chain.positions):
            self._finish()
        return mask

    def cut_through(self, mask: Sparse) -> Sparse:
        """``mask`` without what runs through the stack beside the object
        (:mod:`napari_oaims.propagate.through`)."""
        if self.through is None:
            return mask
        s = self.carry.ctx.settings
        through, pos = self.through, self.chain.positions[self.index]
        if self.end is not None and abs(pos - self.end) < abs(pos - self.chain.anchor):
            through = self.through_end  # nearer the gap's other anchor: what it left out too
        # only an outward chain can run past the object's end; a gap lies between two slices of it
        least = max(s.min_area_px, s.min_area_share * through[1]) if self.chain.open else 0
        cut = cut_through(mask, through, least)
        self.ran_past = cut.box is None and mask.box is not None
        return cut

    def _finish(self) -> None:
        self.finished = True
        chain = self.chain
        self.carry.stats["chains"].append(
            {
                "line": list(self.ln.line),
                "from": chain.anchor,
                "direction": 1 if chain.positions[0] > chain.anchor else -1,
                "slices": self.n,
                "stop": self.reason,
                "stopped_at": self.at,
            }
        )


class Carry:
    """One object's propagation: its plan, its steps' context and its chains (:class:`Walk`,
    walked one after another), and the masks they made."""

    def __init__(
        self, session: "Session", axis: int, method: str, ext, s: PropagateSettings, anchors, barrier, own: bool
    ):
        self.session, self.axis, self.method, self.extent, self.settings = session, axis, method, ext, s
        self.anchors, self.barrier = anchors, barrier
        src = session.source
        self.lines = plan(session, axis, ext, s, anchors, method)
        self.kpos = [x for x in range(len(src.spatial_shape)) if x not in src.plane_axes].index(axis)
        if own and s.keep_extent:
            for ln in self.lines:
                keep_extent(session, ln, self.kpos)
        self.total = sum(len(c.positions) for ln in self.lines for c in ln.chains)
        self.stats: dict[str, Any] = {"chains": [], "slices": [], "total": self.total, "barrier": bool(barrier)}
        self.ctx = Context(session, method, s, anchors, barrier) if self.total else None
        self.results: dict[tuple, dict[int, list[tuple[int, Sparse]]]] = {}  # line -> position -> [(anchor, prob)]
        self.walks = [Walk(self, ln, c) for ln in self.lines for c in ln.chains] if self.total else []

    @property
    def walk(self) -> Walk | None:
        """The chain it carries now (None when all are done)."""
        return next((w for w in self.walks if not w.finished), None)

    @property
    def done(self) -> int:
        return sum(w.done for w in self.walks)

    def outcome(self, elapsed_ms: float) -> Outcome:
        """Fuse the chains' slices (by distance between two anchors) into the new plane masks."""
        planes: dict[tuple, Sparse] = {}
        probs: dict[tuple, Sparse] = {}
        for ln in self.lines:
            results = self.results.get(ln.line, {})
            for pos in ln.targets:
                key = key_of(ln.line, self.kpos, pos)
                got = results.get(pos, [])
                if pos in ln.gaps and got:
                    lo_a, hi_a = ln.gaps[pos]
                    box = None
                    for _, p in got:
                        box = geometry.union(box, p.box)
                    fused = np.zeros((box[2] - box[0], box[3] - box[1]), np.float32)
                    for src_anchor, p in got:
                        other = hi_a if src_anchor == lo_a else lo_a
                        weight = abs(other - pos) / (hi_a - lo_a)
                        fused += weight * p.in_box(box)
                    probs[key] = Sparse(box, fused)
                else:
                    probs[key] = got[0][1] if got else Sparse.empty()
                planes[key] = probs[key].threshold()
        stats = self.stats
        stats["time_ms"] = round(elapsed_ms, 1)
        computed = [x["ms"] for x in stats["slices"]]
        stats["ms_per_slice"] = round(float(np.mean(computed)), 2) if computed else None
        if self.ctx is not None and self.ctx.teacher is not None:
            stats["student_steps"] = self.ctx.teacher.steps_taken
        anchor_keys = [k for ln in self.lines for k in ln.anchors.values()]
        return Outcome(
            self.axis, self.extent, self.method, self.settings, planes, anchor_keys, stats, probs, self.barrier.blocked
        )


# -- the run -----------------------------------------------------------------------------------
def run(
    session: "Session",
    axis=None,
    method: str = "frozen",
    extent=None,
    settings=None,
    overrides: dict | None = None,
    progress: Progress | None = None,
    cancel: CancelLike = None,
    on_slice: Callable[[tuple, np.ndarray], None] | None = None,
    anchors: dict[Key, Anchor] | None = None,
    barrier: Barrier | None = None,
    message: str | None = None,
) -> Outcome:
    """Compute a propagation (see the module docstring); the session is not changed.

    ``anchors``: the planes to carry from (default: the current object's prompted planes);
    ``barrier``: the voxels no slice may take (:class:`Barrier`).

    ``progress(done, total, message)`` after each slice (:mod:`napari_oaims.core.progress`;
    ``message``, default "propagating along axis N", names the work); ``cancel`` is checked
    before each slice and raises :class:`~napari_oaims.core.progress.Cancelled`;
    ``on_slice(key, mask)`` with each slice's mask (a plane, bool) as it is made (a slice between
    two anchors is shown from each end, then fused).
    """
    carry = prepare(session, axis, method, extent, settings, overrides, anchors, barrier)
    message = f"propagating along axis {carry.axis}" if message is None else message
    check_cancel(cancel)
    t_all = time.perf_counter()
    shape = session.source.plane_shape
    while (walk := carry.walk) is not None:
        check_cancel(cancel)
        key = walk.key
        mask = walk.commit(walk.predict())
        if mask is not None and on_slice is not None:
            on_slice(key, mask.plane(shape))
        emit(progress, carry.done, carry.total, message)
    return carry.outcome((time.perf_counter() - t_all) * 1e3)


def prepare(
    session: "Session",
    axis=None,
    method: str = "frozen",
    extent=None,
    settings=None,
    overrides: dict | None = None,
    anchors: dict[Key, Anchor] | None = None,
    barrier: Barrier | None = None,
) -> Carry:
    """Check the arguments of :func:`run` and plan one object's propagation."""
    if method not in METHODS:
        raise ValueError(f"unknown propagation method {method!r}; use one of {METHODS}")
    s = resolve(settings, overrides or {})
    a = resolve_axis(session, axis)
    ext = resolve_extent(session.source.spatial_shape[a], extent)
    own = anchors is None
    anchors = session_anchors(session) if own else anchors
    barrier = Barrier(session.source) if barrier is None else barrier
    return Carry(session, a, method, ext, s, anchors, barrier, own)
