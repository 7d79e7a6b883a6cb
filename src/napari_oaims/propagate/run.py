"""Carry the object of a session through a stack: plan, per-slice steps, stopping, fusion.

*Anchors* are the planes the user prompted. Along the propagation axis every line of planes
(the planes that differ only in their coordinate on that axis) that holds an anchor is redone:

* outward from the lowest and the highest anchor, slice by slice, with the stop rules
  (:func:`~napari_oaims.propagate.stops.stop_reason`): the mask vanished, its overlap with the
  previous slice dropped, its area jumped, the image no longer shows the object, the intensity
  inside the mask jumped (another object), its intensity profile along the axis dipped and rose
  again (the seam between touching objects), or its area grew again after a neck;
* between two anchors from both ends, each chain across the whole gap, fused by distance
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
objects carried at the same time).

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
from napari_oaims.propagate.plan import keep_extent, key_of, plan, resolve_axis, resolve_extent
from napari_oaims.propagate.settings import METHODS, PropagateSettings, resolve
from napari_oaims.propagate.steps import Context
from napari_oaims.propagate.stops import Track, continuing, stop_reason

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
    if method not in METHODS:
        raise ValueError(f"unknown propagation method {method!r}; use one of {METHODS}")
    s = resolve(settings, overrides or {})
    a = resolve_axis(session, axis)
    ext = resolve_extent(session.source.spatial_shape[a], extent)
    message = f"propagating along axis {a}" if message is None else message
    own = anchors is None
    anchors = session_anchors(session) if own else anchors
    barrier = Barrier(session.source) if barrier is None else barrier
    lines = plan(session, a, ext, s, anchors)
    src = session.source
    kpos = [x for x in range(len(src.spatial_shape)) if x not in src.plane_axes].index(a)
    if own and s.keep_extent:
        for ln in lines:
            keep_extent(session, ln, kpos)
    anchor_keys = [k for ln in lines for k in ln.anchors.values()]
    total = sum(len(c.positions) for ln in lines for c in ln.chains)
    stats: dict[str, Any] = {"chains": [], "slices": [], "total": total, "barrier": bool(barrier)}
    planes: dict[tuple, Sparse] = {}
    probs: dict[tuple, Sparse] = {}
    check_cancel(cancel)
    ctx = Context(session, method, s, anchors, barrier) if total else None
    done = 0
    t_all = time.perf_counter()
    for ln in lines:
        results: dict[int, list[tuple[int, Sparse]]] = {}  # position -> [(from anchor, prob)]
        for chain in ln.chains:
            akey = ln.anchors[chain.anchor]
            prev = anchors[akey].sparse
            c0, mean0 = ctx.anchor_contrast(akey) if chain.open else (None, None)
            track = Track(c0, mean0, prev.area, prev.area)
            # the anchors nearest the chain's start give the interactive loss (ema)
            near = sorted(ln.nonempty, key=lambda p: (abs(p - chain.anchor), p))
            samples = []
            if method == "ema":
                samples = [
                    x for x in (ctx.anchor_sample(ln.anchors[p]) for p in near[: s.max_anchors]) if x is not None
                ]
            reason, at, n = None, None, 0
            prev_key = akey
            for pos in chain.positions:
                check_cancel(cancel)
                t0 = time.perf_counter()
                key = key_of(ln.line, kpos, pos)
                if method in ("ema", "frozen"):
                    rng = np.random.default_rng([s.seed, *ln.line, chain.index, pos])
                    prob, info = ctx.model_step(key, prev, rng, samples, prev_key)
                else:
                    prob, info = ctx.carry_step(key, akey)
                prob = barrier.apply(key, prob)
                mask = prob.threshold()
                if method in ("ema", "frozen"):
                    kept = continuing(mask, info.pop("moved", prev), s)
                    if kept.area < mask.area:
                        prob = Sparse(prob.box, prob.values * kept.in_box(prob.box))
                        mask = kept
                if chain.open:
                    reason = stop_reason(ctx, key, mask, prev, track, pos)
                elif mask.box is None:
                    reason = "vanished"
                ms = (time.perf_counter() - t0) * 1e3
                stats["slices"].append(
                    {
                        "plane": list(key),
                        "ms": round(ms, 2),
                        "stop": reason,
                        **{
                            k: v
                            for k, v in info.items()
                            if k in ("n_aug", "uncertain", "kept", "loss", "passes", "blank")
                        },
                    }
                )
                done += 1
                if reason is not None:
                    at = pos
                    if track.cut is not None:  # the object ended before: drop the slices from there
                        walked = chain.positions[: chain.positions.index(pos)]
                        dropped = walked[walked.index(track.cut) :] if track.cut in walked else []
                        for p in dropped:
                            results[p] = [r for r in results.get(p, []) if r[0] != chain.anchor]
                        n -= len(dropped)
                        at = dropped[0] if dropped else pos
                    break
                n += 1
                results.setdefault(pos, []).append((chain.anchor, prob))
                prev, prev_key = mask, key
                if on_slice is not None:
                    on_slice(key, mask.plane(src.plane_shape))
                emit(progress, done, total, message)
            skipped = len(chain.positions) - n - (1 if reason is not None else 0)
            done += max(skipped, 0)
            if reason is not None:
                emit(progress, done, total, message)
            stats["chains"].append(
                {
                    "line": list(ln.line),
                    "from": chain.anchor,
                    "direction": 1 if chain.positions[0] > chain.anchor else -1,
                    "slices": n,
                    "stop": reason,
                    "stopped_at": at,
                }
            )
        for pos in ln.targets:
            key = key_of(ln.line, kpos, pos)
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
    stats["time_ms"] = round((time.perf_counter() - t_all) * 1e3, 1)
    computed = [x["ms"] for x in stats["slices"]]
    stats["ms_per_slice"] = round(float(np.mean(computed)), 2) if computed else None
    if ctx is not None and ctx.teacher is not None:
        stats["student_steps"] = ctx.teacher.steps_taken
    return Outcome(a, ext, method, s, planes, anchor_keys, stats, probs)
