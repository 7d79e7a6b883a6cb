"""How a session turns the model's logits on a window into the object's answer on one plane.

* **One object is one connected thing**: of the model's mask only the components that hold a
  positive click, scribble or box centre, or overlap a prior mask, are kept
  (:func:`napari_oaims.core.regions.keep_prompted`).
* **Scale from the model's own evidence**: an object's first window (size ``"auto"``) is sized
  from the objects accepted so far or, before the first one, the blob under the click; in that
  case, when the model is not sure of its answer there (mean logit over the object below
  :data:`~napari_oaims.core.regions.SURE_LOGIT`, or nothing at the click) it also predicts on a
  window of half the side, and the surer answer that is not a speck wins (:func:`rescale`).
* **Objects larger than the window**: a first answer from clicks whose outline follows no edge of
  the image (:func:`~napari_oaims.core.regions.outline_contrast` below
  :data:`~napari_oaims.core.regions.FLAT_OUTLINE`: the window may lie inside a larger object) is
  also predicted on a window 2-4 times the side; that answer wins when it is much larger and its
  outline follows a clear edge (:func:`enlarge`).
* **Flat spots**: a positive click where the image is one value all around adds the connected
  region of that value to the model's answer (:func:`flat_regions`).
* **Edges where the model is unsure**: answers are redrawn along the image's edges where the model
  is unsure (grown through its unsure band, or snapped between its sure object and sure
  background), when the objects accepted so far show that this brings first answers closer to
  what the user accepted (:mod:`napari_oaims.core.edges`, :func:`edge_answer`).
* **Never an empty answer to a positive click, scribble or box**: when the model finds nothing,
  a window of half the side is tried, then the region of similar values under the click
  (:func:`no_empty`).
* **A correction corrects near the click**: after a correction click, the model's new answer
  replaces the mask shown before it only within :data:`CORRECTION_REACH` times the click's
  distance to the other side of that mask (:func:`correct_near`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from napari_oaims.core import edges, geometry, guidance, regions
from napari_oaims.core.history import PlaneState
from napari_oaims.core.prompts import Prompt
from napari_oaims.session_windows import follow_window

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.session import Session

#: The rules a session may answer by, each a ``Session`` attribute (True or False) the log records
#: (a log that does not name one replays without it, as it was answered):
#:
#: * ``correct_near``: a correction changes the mask near the click only (:func:`correct_near`);
#: * ``larger_windows``: a first answer that follows no edge is looked for on a larger window
#:   (:func:`enlarge`);
#: * ``remove_again``: on a plane the model's propagation carried, a negative click in a component
#:   an earlier one hit may take it all (:data:`napari_oaims.propagate.REMOVE_AGAIN`,
#:   :func:`carried_by_model`);
#: * ``first_peak``: the blob under the first click of a session's first object is the smallest
#:   scale that answers nearly as strongly as the strongest
#:   (:data:`~napari_oaims.core.guidance.BLOB_PEAK_SHARE`), not the strongest.
RULES = ("correct_near", "larger_windows", "remove_again", "first_peak")
#: Smallest window side (px) :func:`rescale` and :func:`no_empty` go down to.
SMALLEST_WINDOW = 16
#: A correction click changes the mask within this many times its depth (:func:`correct_near`).
CORRECTION_REACH = 6.0
#: :func:`enlarge`: the range of the ratio of the larger window's side to the first's; the larger
#: window's answer replaces the first when it is this many times as large and its outline holds
#: this much contrast (:func:`~napari_oaims.core.regions.outline_contrast`). A touching cell's
#: cluster, a lesion's tissue: 4-8 times, 1.6-2.0; an organ seen from inside: 13-64 times, 2.7-3.7.
LARGER_STEP = (2.0, 4.0)
LARGER_AREA = 10.0
LARGER_CONTRAST = 2.5


def correct_near(before: np.ndarray | None, after: np.ndarray, prompt: Prompt, offset: tuple[int, int]) -> np.ndarray:
    """The mask a correction click makes: the model's new answer ``after`` within
    :data:`CORRECTION_REACH` times the click's depth of it, the mask shown before the click
    (``before``) elsewhere; both are region values whose first pixel is plane pixel ``offset``,
    and the region holds the whole of ``before``.

    The depth is the click's distance to the other side of ``before``: to the nearest pixel
    outside it for a negative click inside it, to the nearest pixel of it for a positive click
    outside it. A click on the rim of the mask corrects the rim near it (the network does not see
    the mask it drew, and redraws the whole edge: a negative click on a one-pixel rim of false
    positives shrinks the whole object); a click deep inside a wrong region takes the new answer
    over all of it. A click that corrects nothing, or a first click, keeps ``after``. The idea of
    updating only a focus region around the new click is that of Chen et al., "FocalClick:
    Towards Practical Interactive Image Segmentation", CVPR 2022, section 3.
    """
    if prompt.kind != "click" or not prompt.corrected or before is None or not before.any():
        return after
    y, x = (int(v) - o for v, o in zip(prompt.points[0], offset))
    if not (0 <= y < after.shape[0] and 0 <= x < after.shape[1]):
        return after
    # The side of ``before`` the click is on; beyond the region lies background.
    side = np.pad(before if not prompt.positive else ~before, 1, constant_values=bool(prompt.positive))
    depth = float(ndimage.distance_transform_edt(side)[y + 1, x + 1])
    yy, xx = np.ogrid[: after.shape[0], : after.shape[1]]
    near = (yy - y) ** 2 + (xx - x) ** 2 <= (CORRECTION_REACH * depth) ** 2
    return np.where(near, after, before)


def corrected(session: "Session", prompts: list[Prompt], before, after: np.ndarray, offset) -> np.ndarray:
    """The plane region's new values after the last of ``prompts``: on a plane led by a prior (a
    propagated mask) the click edits that mask (:func:`napari_oaims.propagate.edit_click`); else,
    when the session corrects near the click (``Session.correct_near``), :func:`correct_near`."""
    if prompts[0].kind == "prior":
        from napari_oaims.propagate import edit_click

        earlier = prompts[1:-1] if session.remove_again and carried_by_model(session) else []
        return edit_click(before, after, prompts[-1], offset, earlier)
    return correct_near(before, after, prompts[-1], offset) if session.correct_near else after


def carried_by_model(session: "Session") -> bool:
    """Whether the session's latest propagation carried the object with the model (``frozen`` or
    ``ema``): where such a chain ran into a neighbour, a part the user rejects twice is the
    neighbour; ``registration`` and ``copy`` move an anchor's own outline, which a click trims."""
    for e in reversed(session.events):
        if e["kind"] == "propagate":
            return (e["extra"].get("call") or {}).get("method") in ("frozen", "ema")
    return False


def positive_points(prompts: list[Prompt]) -> np.ndarray:
    """Plane pixels (N x 2) of the positive clicks and scribbles."""
    pts = [p.points for p in prompts if p.positive and p.kind in ("click", "scribble")]
    return np.concatenate(pts) if pts else np.zeros((0, 2))


def checks_scale(session: "Session", known_box, prompts: list[Prompt]) -> bool:
    """Whether :func:`rescale` checks this prediction's window: the object's first (no mask yet,
    ``known_box`` None), from clicks alone, with ``"auto"`` size before any accepted object (the
    window is sized from the blob at one point)."""
    return (
        known_box is None
        and session.engine.first_window == "auto"
        and not session.accepted_diameters
        and all(p.kind == "click" for p in prompts)
    )


def plane_values(pieces, known_box) -> tuple[tuple[slice, slice], np.ndarray]:
    """The plane region holding ``known_box`` (the mask so far, or None) and every ``(box, mask)``
    of ``pieces``, and the union of the pieces' masks on it (what the prediction sets there)."""
    box = known_box
    for b, _ in pieces:
        box = geometry.union(box, b)
    values = np.zeros((box[2] - box[0], box[3] - box[1]), bool)
    for (y0, x0, y1, x1), part in pieces:
        values[y0 - box[0] : y1 - box[0], x0 - box[1] : x1 - box[1]] |= part
    return geometry.box_slices(box), values


def window_answer(
    session: "Session", key, prompts: list[Prompt], window: guidance.Window, logits: np.ndarray
) -> tuple[np.ndarray, tuple[slice, slice]]:
    """The object's mask on the part of ``window`` inside the plane (``logits`` at the window's
    native size), with only the prompted components kept; and the plane slices it covers."""
    ys, xs, wy, wx = window.clip(session.source.plane_shape)
    inside = logits[wy, wx] > 0
    offset = np.array([ys.start, xs.start])
    seeds = [positive_points(prompts) - offset]
    prior = None
    for p in prompts:
        if p.kind == "box":
            seeds.append(np.array([[(p.box[0] + p.box[2] - 1) / 2, (p.box[1] + p.box[3] - 1) / 2]]) - offset)
        elif p.kind == "prior":
            part = np.asarray(p.mask[ys, xs], bool)
            prior = part if prior is None else prior | part
    return regions.keep_prompted(inside, np.concatenate(seeds), prior), (ys, xs)


def rescale(
    session: "Session", key, prompts: list[Prompt], window: guidance.Window, logits: np.ndarray
) -> tuple[guidance.Window, np.ndarray]:
    """The first window of an object and its logits: ``window`` itself when the model is sure of
    its answer there, otherwise the surer of it and a window of half the side (one more pass)."""
    inside, _ = window_answer(session, key, prompts, window, logits)
    ys, xs, wy, wx = window.clip(session.source.plane_shape)
    sure = regions.sureness(logits[wy, wx], inside)
    if sure >= regions.SURE_LOGIT or window.size // 2 < SMALLEST_WINDOW:
        return window, logits
    smaller = guidance.choose_window(positive_points(prompts), session.source.plane_shape, min_size=window.size // 2)
    if smaller.size >= window.size:
        return window, logits
    small_logits = session.predict_window(key, prompts, smaller)
    small_inside, _ = window_answer(session, key, prompts, smaller, small_logits)
    ys, xs, wy, wx = smaller.clip(session.source.plane_shape)
    speck = 2.0 * np.sqrt(small_inside.sum() / np.pi) < smaller.size / regions.SPECK_SHARE
    if not speck and regions.sureness(small_logits[wy, wx], small_inside) > sure:
        return smaller, small_logits
    return window, logits


def checks_size(session: "Session", known_box, prompts: list[Prompt]) -> bool:
    """Whether :func:`enlarge` checks this prediction's window: the object's first (no mask yet),
    from clicks alone, with ``"auto"`` size, when the session looks for larger windows
    (``Session.larger_windows``)."""
    auto = session.engine.first_window == "auto"
    return session.larger_windows and auto and known_box is None and all(p.kind == "click" for p in prompts)


def enlarge(
    session: "Session", key, prompts: list[Prompt], window: guidance.Window, logits: np.ndarray
) -> tuple[guidance.Window, np.ndarray]:
    """The first window of an object and its logits: ``window`` itself, unless its answer's
    outline follows no edge of the image (it lies inside something larger) while on a window
    :func:`larger_step` times the side the answer is at least :data:`LARGER_AREA` times as large
    and its outline holds at least :data:`LARGER_CONTRAST` (one more pass)."""
    plane_shape = session.source.plane_shape

    def answer_on(w: guidance.Window, lg: np.ndarray) -> tuple[float, int]:
        inside, _ = window_answer(session, key, prompts, w, lg)
        if guidance.grown_window(w, inside, plane_shape) is not None:  # cut by the window
            return -1.0, int(inside.sum())
        _, _, wy, wx = w.clip(plane_shape)
        return regions.outline_contrast(session.source.crop(key, w)[wy, wx], inside), int(inside.sum())

    contrast, area = answer_on(window, logits)
    if contrast >= regions.FLAT_OUTLINE:
        return window, logits
    size = int(np.ceil(window.size * larger_step(window.size, plane_shape)))
    larger = guidance.choose_window(positive_points(prompts), plane_shape, min_size=size)
    if larger.size <= window.size:
        return window, logits
    larger_logits = session.predict_window(key, prompts, larger)
    contrast, larger_area = answer_on(larger, larger_logits)
    if contrast >= LARGER_CONTRAST and larger_area >= LARGER_AREA * max(area, 1):
        return larger, larger_logits
    return window, logits


def larger_step(size: int, plane_shape: tuple[int, int]) -> float:
    """The ratio of the window :func:`enlarge` tries to the first: the first of three equal steps
    from ``size`` to the whole plane, kept within :data:`LARGER_STEP`."""
    return float(np.clip((1.1 * max(plane_shape) / size) ** (1 / 3), *LARGER_STEP))


def flat_regions(session: "Session", key, prompts: list[Prompt]) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    """``(box, mask crop)`` of the uniform region under each positive click on a flat spot
    (:meth:`~napari_oaims.core.source.ImageSource.is_flat`), unless a negative prompt lies in it."""
    negatives = [p.points for p in prompts if not p.positive]
    neg = np.concatenate(negatives).astype(int) if negatives else np.zeros((0, 2), int)
    out = []
    for p in prompts:
        if p.kind != "click" or not p.positive:
            continue
        yx = (int(p.points[0, 0]), int(p.points[0, 1]))
        if not session.source.is_flat(key, yx):
            continue
        box, crop = session.source.uniform_region(key, yx)
        hit = [crop[y - box[0], x - box[1]] for y, x in neg if box[0] <= y < box[2] and box[1] <= x < box[3]]
        if not any(hit):
            out.append((box, crop))
    return out


def no_empty(
    session: "Session", key, prompts: list[Prompt], window: guidance.Window
) -> tuple[guidance.Window, np.ndarray, tuple[slice, slice], str]:
    """An answer for a positive click or scribble, or a box, the model answered with nothing on
    ``window``: the model on a window of half the side, else the region of similar values under
    the prompt's first point (a box's centre). Returns the window used, the mask on its part
    inside the plane, the plane slices and the fallback's name
    (:data:`napari_oaims.core.results.FALLBACKS`)."""
    last = prompts[-1]
    if last.kind == "box":
        pts = np.array([[(last.box[0] + last.box[2] - 1) // 2, (last.box[1] + last.box[3] - 1) // 2]])
    else:
        pts = last.points
    smaller = guidance.choose_window(pts, session.source.plane_shape, min_size=max(SMALLEST_WINDOW, window.size // 2))
    if smaller.size < window.size:
        inside, where = window_answer(session, key, prompts, smaller, session.predict_window(key, prompts, smaller))
        if inside.any():
            return smaller, inside, where, "smaller window"
    ys, xs, wy, wx = smaller.clip(session.source.plane_shape)
    crop = session.source.crop(key, smaller)[wy, wx]
    seed = (int(pts[0, 0]) - ys.start, int(pts[0, 1]) - xs.start)
    return smaller, regions.similar_region(crop, seed), (ys, xs), "region"


def is_first_answer(session: "Session", prompts: list[Prompt]) -> bool:
    """Whether ``prompts`` ask for the object's first answer: one positive click, no mask yet."""
    one_click = len(prompts) == 1 and prompts[0].kind == "click" and prompts[0].positive
    return one_click and all(st.bbox is None for st in session.planes.values())


def edge_answer(
    session: "Session",
    key,
    prompts: list[Prompt],
    window: guidance.Window,
    logits,
    inside,
    where,
    shown=None,
    flat: bool = False,
) -> tuple[np.ndarray, str | None]:
    """``inside`` (the answer on ``where``), or it redrawn along the image's edges by the candidate
    the session follows (:mod:`napari_oaims.core.edges`): ``"edges"`` with ``engine.edges ==
    "always"``, ``"snap"`` with ``"snap"``, the one the accepted objects' evidence chooses with
    ``"auto"``; and that candidate's name, or None. On the object's first answer every candidate's
    answer is kept as evidence (:class:`~napari_oaims.core.edges.EdgeEvidence`; with a fixed mode
    only its own). A correction's answer grows along edges only inside ``shown``, the mask before
    it. A snap redraws first answers only, and not on a flat spot (``flat``: the answer is the
    uniform region under the click, :func:`flat_regions`), which is no evidence for it either
    (growing keeps counting such objects, as logs that judged growing alone recorded them). A
    plane led by a prior (a propagated mask, a given outline) keeps the model's answer."""
    mode, evidence = session.engine.edges, session.edge_evidence
    first = is_first_answer(session, prompts)
    follow = {"always": "edges", "snap": "snap"}.get(mode) or (evidence.choice() if mode == "auto" else None)
    follow = follow if follow == "edges" or (first and not flat) else None  # a snap: first answers, not flat
    if mode == "never" or not inside.any() or not (first or follow) or any(p.kind == "prior" for p in prompts):
        return inside, None
    ys, xs = where
    _, _, wy, wx = window.clip(session.source.plane_shape)
    offset = np.array([ys.start, xs.start])
    negatives = [p.points for p in prompts if not p.positive and p.kind in ("click", "scribble")]
    neg = np.concatenate(negatives) if negatives else np.zeros((0, 2))
    crop = session.source.crop(key, window)[wy, wx]
    names = evidence.candidates if first and mode == "auto" else (follow,) if follow else ()
    names = [n for n in names if not (flat and n == "snap")]
    pos = positive_points(prompts) - offset
    answers = {n: edges.candidate(n, crop, logits[wy, wx], inside, pos, neg - offset) for n in names}
    if first:
        evidence.first_answer(session.object_id, key, where, inside, answers)
    if follow is None:
        return inside, None
    redrawn = answers[follow]
    if shown is not None and not first:  # a correction grows only where the mask shown before it was
        redrawn = inside | (redrawn & shown[where])
    return redrawn, follow


def predict(session: "Session", key, prompts: list[Prompt], window, state: PlaneState, logits=None):
    """Predict ``prompts`` on ``window`` of plane ``key`` (growing it if the mask hits its border)
    with the rules above; ``state`` is the plane as it is, ``logits`` (working size), if given,
    this prediction for ``window`` already made.

    Returns the changed plane region, the new mask values there, and details for the log.
    """
    h, w = session.source.plane_shape
    if window is None:  # only negative prompts: nothing is segmented
        box = state.bbox
        region = geometry.box_slices(box) if box else None
        values = np.zeros((box[2] - box[0], box[3] - box[1]), bool) if box else None
        return region, values, {"window": None, "area": 0, "passes": 0}
    flat = flat_regions(session, key, prompts)
    check_scale = not flat and checks_scale(session, state.bbox, prompts)
    check_size = not flat and checks_size(session, state.bbox, prompts)
    passes, fallback = 0, None
    while True:
        passes += 1
        if passes == 1 and logits is not None:
            raw = guidance.resize_window(logits, window.size)
        else:
            raw = session.predict_window(key, prompts, window)
        if passes == 1 and (check_scale or check_size):
            first = window
            if check_scale:
                window, raw = rescale(session, key, prompts, window, raw)
            if check_size:
                window, raw = enlarge(session, key, prompts, window, raw)
            if check_scale or window is not first:
                follow_window(session, window.size)  # the object's later windows follow it
        inside, (ys, xs) = window_answer(session, key, prompts, window, raw)
        larger = guidance.grown_window(window, inside, (h, w), state.bbox, passes)
        if larger is None:
            break
        window = larger
    inside, followed = edge_answer(session, key, prompts, window, raw, inside, (ys, xs), state.mask, bool(flat))
    if not inside.any() and not flat and prompts[-1].guides and prompts[-1].kind != "prior":
        window, inside, (ys, xs), fallback = no_empty(session, key, prompts, window)
    region, values = plane_values([((ys.start, xs.start, ys.stop, xs.stop), inside)] + flat, state.bbox)
    fallback = "uniform" if flat else fallback
    info = {"window": [window.y0, window.x0, window.size], "area": int(values.sum()), "passes": passes}
    if fallback:
        info["fallback"] = fallback
    if followed:
        info["followed_edges"] = True if followed == "edges" else followed
    return region, values, info
