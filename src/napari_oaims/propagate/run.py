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

from napari_oaims.core import geometry, guidance
from napari_oaims.core.progress import CancelLike, Progress, check_cancel, emit
from napari_oaims.core.prompts import Prompt
from napari_oaims.propagate.anchors import Anchor, Barrier, Key, session_anchors
from napari_oaims.propagate.masks import Sparse, contrast, deepest_points
from napari_oaims.propagate.settings import METHODS, PropagateSettings, resolve
from napari_oaims.propagate.stops import Track, continuing, stop_reason

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.session import Session


@dataclass
class Chain:
    """Slices ``positions`` carried, in order, from the anchor at ``anchor``; ``open``: the stop
    rules apply (outward from the outermost anchors, or towards an empty anchor)."""

    anchor: int
    positions: list[int]
    open: bool
    index: int = 0


@dataclass
class Line:
    """One line of planes along the axis: its anchors, the slices it redoes and its chains."""

    line: tuple[int, ...]
    anchors: dict[int, tuple[int, ...]]  # position -> plane key
    nonempty: list[int]
    targets: list[int]
    chains: list[Chain] = field(default_factory=list)
    gaps: dict[int, tuple[int, int]] = field(default_factory=dict)  # position -> (a, b)
    span: tuple[int, int] = (0, 0)  # the extent (start, stop) the line is redone within


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


# -- validation --------------------------------------------------------------------------------
def resolve_axis(session: "Session", axis) -> int:
    """The spatial axis to propagate along (the only non-plane axis of a 3D image by default)."""
    src = session.source
    nd = len(src.spatial_shape)
    if nd < 3:
        raise ValueError(
            f"propagation needs a 3D or 4D image; this one has {nd} spatial axes (shape {src.spatial_shape})"
        )
    choices = [a for a in range(nd) if a not in src.plane_axes]
    if axis is None:
        if len(choices) == 1:
            return choices[0]
        raise ValueError(
            f"this image can be propagated along {len(choices)} axes: pass axis= one of {choices} "
            f"(spatial shape {src.spatial_shape}, plane axes {list(src.plane_axes)})"
        )
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"axis must be an integer, one of {choices}; got {axis!r}")
    a = int(axis)
    if not -nd <= a < nd:
        raise ValueError(f"axis {axis} is out of range for spatial shape {src.spatial_shape}: use one of {choices}")
    a %= nd
    if a in src.plane_axes:
        raise ValueError(
            f"axis {a} is a plane axis (plane axes {list(src.plane_axes)}): propagate along one of {choices}"
        )
    return a


def resolve_extent(n: int, extent) -> tuple[int, int]:
    """``(start, stop)`` (stop exclusive) within ``[0, n)``; None: the whole axis."""
    if extent is None:
        return 0, n
    try:
        start, stop = extent
        start = 0 if start is None else int(start)
        stop = n if stop is None else int(stop)
    except (TypeError, ValueError) as err:
        raise ValueError(f"extent is (start, stop) along the axis, got {extent!r}") from err
    if not 0 <= start < stop <= n:
        raise ValueError(f"extent {tuple(extent)} lies outside the axis: need 0 <= start < stop <= {n}")
    return start, stop


def plan(
    session: "Session", axis: int, extent: tuple[int, int], settings: PropagateSettings, prompted: dict[Key, Anchor]
) -> list[Line]:
    """The lines to redo along ``axis`` within ``extent``, with their chains."""
    src = session.source
    others = [a for a in range(len(src.spatial_shape)) if a not in src.plane_axes]
    kpos = others.index(axis)
    lo, hi = extent
    if not prompted:
        raise ValueError("nothing to propagate: prompt the object on a slice first (a click, box, scribble or prior)")
    lines: dict[tuple, dict[int, tuple]] = {}
    for key in prompted:
        if lo <= key[kpos] < hi:
            lines.setdefault(key[:kpos] + key[kpos + 1 :], {})[key[kpos]] = key
    out = []
    for line, anchors in sorted(lines.items()):
        nonempty = sorted(p for p, k in anchors.items() if prompted[k].box is not None)
        ln = Line(line, anchors, nonempty, [p for p in range(lo, hi) if p not in anchors], span=(lo, hi))
        pos = sorted(anchors)
        idx = 0

        def add(anchor, positions, open_):
            nonlocal idx
            if positions:
                ln.chains.append(Chain(anchor, positions, open_, idx))
                idx += 1

        if pos[0] in nonempty:
            add(pos[0], list(range(pos[0] - 1, lo - 1, -1)), True)
        for a, b in zip(pos[:-1], pos[1:]):
            inside = list(range(a + 1, b))
            if a in nonempty and b in nonempty:
                add(a, inside, settings.stop_between)
                add(b, inside[::-1], settings.stop_between)
                for p in inside:
                    ln.gaps[p] = (a, b)
            elif a in nonempty:
                add(a, inside, True)
            elif b in nonempty:
                add(b, inside[::-1], True)
        if pos[-1] in nonempty:
            add(pos[-1], list(range(pos[-1] + 1, hi)), True)
        out.append(ln)
    if not out:
        raise ValueError(
            f"nothing to propagate within extent {extent}: no prompted slice lies in it "
            f"(prompted positions along the axis: {sorted({k[kpos] for k in prompted})})"
        )
    if not any(ln.nonempty for ln in out):
        where = f" within extent {extent}" if extent != (0, src.spatial_shape[axis]) else ""
        raise ValueError(
            f"nothing to propagate: the prompted slices{where} have empty masks "
            "(add a positive prompt on a slice of the object)"
        )
    return out


def key_of(line: tuple[int, ...], kpos: int, position: int) -> tuple[int, ...]:
    return line[:kpos] + (int(position),) + line[kpos:]


def keep_extent(session: "Session", ln: Line, kpos: int) -> None:
    """Once a line was propagated, its outward chains stay within the object's current extent
    along the axis (its farthest slices with a mask): a correction refines the object where it
    is and never makes it run past an end that an earlier propagation found."""
    masked = [
        p for p in range(*ln.span) if p not in ln.anchors and session.plane_crop(key_of(ln.line, kpos, p)) is not None
    ]
    if not masked:
        return
    held = masked + list(ln.nonempty)
    lo, hi = min(held), max(held)
    for chain in ln.chains:
        if chain.open:
            chain.positions = [p for p in chain.positions if lo <= p <= hi]
    ln.chains = [c for c in ln.chains if c.positions]


# -- stepping ----------------------------------------------------------------------------------
class _Context:
    """What the steps of one propagation share: the session, settings, model copies, caches."""

    def __init__(
        self, session: "Session", method: str, settings: PropagateSettings, anchors: dict[Key, Anchor], barrier: Barrier
    ):
        self.session = session
        self.source = session.source
        self.anchors = anchors
        self.barrier = barrier
        self.method = method
        self.settings = settings
        self.teacher = None
        if method == "ema":
            from napari_oaims.propagate.ema import StudentTeacher

            self.teacher = StudentTeacher(session.engine, settings)
        self.slices_seen = 0  # slices predicted so far (ema adapts on every adapt_every-th)
        self._anchor_samples: dict[tuple, Any] = {}
        self._anchor_views: dict[tuple, tuple] = {}
        self._contrast: dict[tuple, tuple[float | None, float | None]] = {}

    # model methods ------------------------------------------------------------------------
    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.teacher is not None:
            return self.teacher.predict(x)
        return self.session.engine.predict(x)

    def anchor_sample(self, key):
        """The anchor's own prompts on its window, its mask there and their CCG points."""
        if key not in self._anchor_samples:
            from napari_oaims.adapt.oaims import ccg_points, work_target
            from napari_oaims.propagate.ema import AnchorSample

            anchor = self.anchors[key]
            window = self.session.window(key, anchor.prompts, anchor.box)
            sample = None
            if window is not None:
                points = [pt for p in anchor.prompts for pt in ccg_points(p, window)]
                plane = anchor.sparse.plane(self.source.plane_shape)
                sample = AnchorSample(
                    self.session.encode(key, anchor.prompts, window), work_target(plane, window), points
                )
            self._anchor_samples[key] = sample
        return self._anchor_samples[key]

    def warped(self, key, prev_key, prev: Sparse) -> Sparse:
        """The previous slice's mask moved onto plane ``key`` by 2D optical flow between the two
        slices (on a window around it): the prior that follows a moving object."""
        from napari_oaims.propagate.registration import flow_args, warp_mask

        window = self.session.window(key, [], prev.box)
        moving = self.source.crop(prev_key, window)
        fixed = self.source.crop(key, window)
        if float(fixed.max() - fixed.min()) < 1e-6 or float(moving.max() - moving.min()) < 1e-6:
            return prev
        prob = warp_mask(moving, prev.window(window), fixed, **flow_args(self.settings, prior=True))
        ys, xs, wy, wx = window.clip(self.source.plane_shape)
        return Sparse((ys.start, xs.start, ys.stop, xs.stop), prob[wy, wx]).threshold()

    def model_step(self, key, prev: Sparse, rng, anchors: list, prev_key=None) -> tuple[Sparse, dict]:
        """Predict plane ``key`` from the previous slice's mask ``prev`` (probabilities)."""
        h, w = self.source.plane_shape
        if self.settings.warp_prior and prev_key is not None:
            moved = self.warped(key, prev_key, prev)
            prev = moved if moved.box is not None else prev
        pts = deepest_points(prev, self.settings.click_share)
        prompts = [Prompt("click", True, p[None]) for p in pts]
        window = self.session.window(key, prompts, prev.box)
        passes = 0
        while True:
            passes += 1
            crop = self.source.crop(key, window)
            ys, xs, wy, wx = window.clip((h, w))
            inside_img = crop[wy, wx]
            if inside_img.size == 0 or float(inside_img.max() - inside_img.min()) < 1e-6:
                return Sparse.empty(), {"passes": passes, "blank": True, "moved": prev}
            prior = guidance.resize_window(prev.window(window), guidance.WORK_SIZE)
            x = guidance.encode(
                guidance.resize_window(crop, guidance.WORK_SIZE),
                window.to_work(pts).reshape(-1, 2),
                np.zeros((0, 2)),
                prior,
            )
            logits = self.predict(x[None])[0]
            pred = guidance.resize_window(logits, window.size)[wy, wx] > 0
            larger = guidance.grown_window(window, pred, (h, w), prev.box, passes)
            if larger is None:
                break
            window = larger
        info: dict[str, Any] = {"passes": passes, "window": [window.y0, window.x0, window.size], "moved": prev}
        if self.teacher is not None:
            self.slices_seen += 1
            if (self.slices_seen - 1) % self.settings.adapt_every == 0 and self.uncertain(logits):
                info.update(self.teacher.adapt(x, logits, rng, anchors))
                logits = self.teacher.predict(x[None])[0]
        prob = guidance.sigmoid(guidance.resize_window(logits, window.size)[wy, wx])
        return Sparse((ys.start, xs.start, ys.stop, xs.stop), prob.astype(np.float32)), info

    def uncertain(self, logits: np.ndarray) -> bool:
        """Whether the teacher is unsure enough of a slice to adapt on it: the share of its
        foreground whose probability lies in ``band`` is at least ``adapt_min_uncertain``."""
        s = self.settings
        if s.adapt_min_uncertain <= 0:
            return True
        p = guidance.sigmoid(logits / s.temperature)
        fg = np.count_nonzero(p > 0.5)
        band = np.count_nonzero((p >= s.band[0]) & (p <= s.band[1]))
        return band >= s.adapt_min_uncertain * max(fg, 1)

    # anchor-mask methods ------------------------------------------------------------------
    def anchor_view(self, key):
        """The window around an anchor's mask, its image crop and its mask there."""
        if key not in self._anchor_views:
            sparse = self.anchors[key].sparse
            window = self.session.window(key, [], sparse.box)
            self._anchor_views[key] = (window, self.source.crop(key, window), sparse.window(window))
        return self._anchor_views[key]

    def carry_step(self, key, anchor_key) -> tuple[Sparse, dict]:
        """The anchor's mask on plane ``key``: copied, or warped by 2D registration."""
        from napari_oaims.propagate.registration import flow_args, warp_mask

        window, anchor_crop, anchor_mask = self.anchor_view(anchor_key)
        crop = self.source.crop(key, window)
        ys, xs, wy, wx = window.clip(self.source.plane_shape)
        if float(crop[wy, wx].max() - crop[wy, wx].min()) < 1e-6:
            return Sparse.empty(), {"blank": True}
        if self.method == "copy":
            prob = anchor_mask
        else:
            prob = warp_mask(anchor_crop, anchor_mask, crop, **flow_args(self.settings))
        return Sparse((ys.start, xs.start, ys.stop, xs.stop), prob[wy, wx].astype(np.float32)), {}

    # stopping -----------------------------------------------------------------------------
    def contrast_of(self, key, mask: Sparse) -> tuple[float | None, float | None]:
        """Mean normalised image inside ``mask`` minus a ring around it, and the mean inside, on
        plane ``key``."""
        if mask.box is None:
            return None, None
        y0, x0, y1, x1 = mask.box
        margin = int(np.clip(round(0.2 * max(y1 - y0, x1 - x0)), 2, 12)) + 2
        size = max(y1 - y0, x1 - x0) + 2 * margin
        window = guidance.Window(y0 - margin, x0 - margin, size)
        image = self.source.crop(key, window)
        inside = mask.window(window) > 0.5
        return contrast(image, inside), float(image[inside].mean())

    def anchor_contrast(self, key) -> tuple[float | None, float | None]:
        if key not in self._contrast:
            self._contrast[key] = self.contrast_of(key, self.anchors[key].sparse)
        return self._contrast[key]


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
    ctx = _Context(session, method, s, anchors, barrier) if total else None
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
