"""Answers that follow the image's edges, and whether the accepted objects say they should.

The model draws an object's outline from what it learnt; on some images the image's own edges
say more. Two candidate answers redraw the model's answer with a marker watershed (scikit-image)
on the gradient of the window, where the model is unsure:

* ``"edges"`` (:func:`grow_along_edges`): the answer grows through the band where the model's
  logit lies between ``-band`` and 0, up to the image's edges (thin dark cavities in bright
  tissue: the model keeps a blob around the click and cuts the object short);
* ``"snap"`` (:func:`snap_to_edges`): only the model's sure object (logit above ``sure``) and sure
  background (below ``-band``) are kept; the image's edges decide the rest, so the answer may grow
  or shrink (faint lesions in similar tissue: the model's blob is too small on a large lesion and
  spills over the rim of a small one).

Which answer a session gives is learnt from the user's accepted objects
(:class:`EdgeEvidence`): for each object the session keeps its first answer from the model and
from each candidate, and at accept it measures which one was closer to what the user accepted.
Answers follow a candidate once the last :data:`EVIDENCE_OBJECTS` accepted objects show it helps
(at least :data:`MIN_OBJECTS` of them; a mean gain in Dice above the candidate's
:data:`THRESHOLDS` and a gain on a share of at least its own there), the first of
:data:`CANDIDATES` when both qualify, and stop when that no longer holds. Following ``"edges"``,
a correction's answer grows only inside the answer before it
(:func:`napari_oaims.answer.edge_answer`): the edges add what the first answer missed, and a
correction cannot grow past it. Following ``"snap"``, corrections are the model's own (which
change the mask near the click only, :func:`napari_oaims.answer.correct_near`).

Everything here works on one window at native resolution or on plain masks; nothing knows about
sessions, torch or napari.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from skimage.draw import disk
from skimage.filters import sobel
from skimage.segmentation import watershed

from napari_oaims.core.regions import keep_prompted

#: What :attr:`napari_oaims.engine.Engine.edges` may be: ``"auto"`` (learnt from accepted
#: objects), ``"always"`` (answers grow along edges), ``"snap"`` (first answers snap to them) or
#: ``"never"``.
MODES = ("auto", "always", "snap", "never")
#: Logits below ``-EDGE_BAND`` are background for sure; between it and 0 the image's edges decide.
EDGE_BAND = 8.0
#: Radius (px) of the disc each click seeds.
CLICK_RADIUS = 1
#: Logits above ``SNAP_SURE`` are the object for sure in :func:`snap_to_edges`.
SNAP_SURE = 4.0
#: The candidate answers (:func:`candidate`), in the order the evidence tries them: growing,
#: which also grows corrections, before snapping, which redraws first answers only.
CANDIDATES = ("edges", "snap")
#: How many of the latest accepted objects the evidence looks at and how many it needs at least.
EVIDENCE_OBJECTS = 5
MIN_OBJECTS = 3
#: Per candidate: the mean gain in Dice (candidate minus model, first answers against the accepted
#: mask) the evidence needs, and the share of the objects on which the candidate must have won.
#: Measured on procedural sets: with a lower bar growing switched on by chance on speckle and soft
#: cells; the snap's gains on faint lesions are many small ones, which growing's bar rarely lets
#: through, and at 0.1 on 60% no other set lost more than 0.9 points at any click.
THRESHOLDS = {"edges": (0.2, 0.8), "snap": (0.1, 0.6)}


def check_candidates(names) -> tuple[str, ...]:
    """``names`` as a tuple if each is one of :data:`CANDIDATES`, else a ``ValueError`` that lists them."""
    names = tuple(names) if isinstance(names, (list, tuple)) else (names,)
    bad = [n for n in names if n not in CANDIDATES]
    if bad:
        raise ValueError(f"edge candidates must be among {', '.join(map(repr, CANDIDATES))}, got {bad[0]!r}")
    return names


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MODES`, else a ``ValueError`` that lists them."""
    if mode not in MODES:
        raise ValueError(f"edges must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    return mode


def grow_along_edges(
    crop: np.ndarray,
    logits: np.ndarray,
    mask: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray,
    band: float = EDGE_BAND,
) -> np.ndarray:
    """``mask`` grown up to the image's edges through the pixels where the model is unsure.

    Parameters
    ----------
    crop, logits, mask : array (H, W)
        The window's image, the model's logits and its answer (the object's kept part).
    positive, negative : array (N, 2)
        Window pixels of the positive and negative clicks (outside ones are ignored).
    band : float
        Logits below ``-band`` are background markers.

    Returns
    -------
    array of bool
        The pixels the watershed gives the object's markers: ``mask`` and what grew from it
        (never less than ``mask`` minus the negative clicks' discs).
    """
    mask = np.asarray(mask, bool)
    seg = _marker_watershed(crop, mask, np.asarray(logits) < -band, positive, negative)
    return mask if seg is None else seg


def snap_to_edges(
    crop: np.ndarray,
    logits: np.ndarray,
    mask: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray,
    sure: float = SNAP_SURE,
    band: float = EDGE_BAND,
) -> np.ndarray:
    """``mask`` redrawn along the image's edges between the model's sure object and background.

    Object markers are the pixels of ``mask`` whose logit is above ``sure`` and the positive
    clicks; background markers the logits below ``-band``, the window's border and the negative
    clicks. Of the watershed's object only the components that hold a positive click are kept
    (:func:`~napari_oaims.core.regions.keep_prompted`). Parameters as :func:`grow_along_edges`.
    """
    mask = np.asarray(mask, bool)
    logits = np.asarray(logits)
    seg = _marker_watershed(crop, mask & (logits > sure), logits < -band, positive, negative)
    return mask if seg is None else keep_prompted(seg, np.asarray(positive, float).reshape(-1, 2))


def candidate(name: str, crop, logits, mask, positive, negative) -> np.ndarray:
    """The candidate answer ``name`` (:data:`CANDIDATES`): :func:`grow_along_edges` for
    ``"edges"``, :func:`snap_to_edges` for ``"snap"``."""
    rule = {"edges": grow_along_edges, "snap": snap_to_edges}[check_candidates(name)[0]]
    return rule(crop, logits, mask, positive, negative)


def _marker_watershed(crop, objects, background, positive, negative) -> np.ndarray | None:
    """The object of a marker watershed on ``sobel(crop)``: object markers ``objects`` and discs
    of :data:`CLICK_RADIUS` on the positive clicks, background markers ``background``, the border
    and discs on the negative clicks (a later marker wins a pixel). None without object markers."""
    markers = np.zeros(objects.shape, np.int32)
    markers[background] = 2
    markers[[0, -1], :] = 2
    markers[:, [0, -1]] = 2
    markers[objects] = 1
    for points, label in ((positive, 1), (negative, 2)):
        for y, x in np.rint(np.asarray(points, float).reshape(-1, 2)).astype(int):
            if 0 <= y < objects.shape[0] and 0 <= x < objects.shape[1]:
                markers[disk((y, x), CLICK_RADIUS, shape=objects.shape)] = label
    if not (markers == 1).any():
        return None
    return watershed(sobel(np.asarray(crop, np.float64)), markers) == 1


def dice_on(region: tuple[slice, slice], part: np.ndarray, whole: np.ndarray) -> float:
    """Dice of ``part`` (a mask on ``region`` of a plane, the rest of the plane empty) and ``whole``
    (a mask of the whole plane)."""
    overlap = int(np.count_nonzero(part & whole[region]))
    total = int(np.count_nonzero(part)) + int(np.count_nonzero(whole))
    return 2.0 * overlap / total if total else 1.0


#: What an accept event logs, per candidate: the name of its gain.
GAIN_NAMES = {"edges": "edge_gain", "snap": "snap_gain"}


@dataclass
class EdgeEvidence:
    """What the accepted objects say about following the image's edges (see the module docstring).

    ``gains`` holds, by object id in accept order, the Dice of the first answer grown along edges
    (``"edges"``) minus that of the model's own first answer, both against the accepted mask;
    ``snap_gains`` the same for ``"snap"``. ``candidates`` are the candidates the session judges
    (a session logs them; replay of a log that does not name them judges ``"edges"`` alone)."""

    gains: dict[int, float] = field(default_factory=dict)
    snap_gains: dict[int, float] = field(default_factory=dict)
    candidates: tuple[str, ...] = CANDIDATES
    _first: dict[int, tuple] = field(default_factory=dict, repr=False)
    _withdrawn: dict[tuple[str, int], float] = field(default_factory=dict, repr=False)

    def gains_of(self, name: str) -> dict[int, float]:
        """The gains of candidate ``name`` by object id (the dict itself)."""
        return self.gains if name == "edges" else self.snap_gains

    def first_answer(self, object_id: int, plane, region, model: np.ndarray, answers: dict) -> None:
        """The object's first answer on ``plane`` (its mask on ``region``), from the model and from
        each candidate (``answers``: name -> mask); a later first answer of the same object (after
        an undo) replaces it."""
        kept = {n: np.asarray(m, bool) for n, m in answers.items()}
        self._first[int(object_id)] = (tuple(plane), region, np.asarray(model, bool), kept)

    def accepted(self, object_id: int, masks: dict) -> dict[str, float]:
        """Record the gains of object ``object_id``, accepted with ``masks`` (plane -> full plane
        mask); returns what the accept event logs (``{"edge_gain": gain, "snap_gain": gain}``, see
        :data:`GAIN_NAMES`), or nothing when no first answer was kept for the object (its first
        prompt was no single click)."""
        first = self._first.pop(int(object_id), None)
        self._first.clear()
        if first is None or first[0] not in masks:
            return {}
        plane, region, model, answers = first
        whole = np.asarray(masks[plane], bool)
        base = dice_on(region, model, whole)
        logged = {}
        for name, mask in answers.items():
            gain = round(dice_on(region, mask, whole) - base, 4)
            self.gains_of(name)[int(object_id)] = gain
            logged[GAIN_NAMES[name]] = gain
        return logged

    def withdraw(self, object_id: int) -> None:
        """An accepted object was taken back: its gains no longer count."""
        for name in CANDIDATES:
            if int(object_id) in self.gains_of(name):
                self._withdrawn[name, int(object_id)] = self.gains_of(name).pop(int(object_id))

    def reinstate(self, object_id: int) -> None:
        """A withdrawn object was brought back: its gains count again."""
        for name in CANDIDATES:
            if (name, int(object_id)) in self._withdrawn:
                gains = self.gains_of(name)
                gains[int(object_id)] = self._withdrawn.pop((name, int(object_id)))
                ordered = dict(sorted(gains.items()))
                gains.clear()
                gains.update(ordered)

    def choice(self) -> str | None:
        """The candidate answers should follow now: the first of :attr:`candidates` (in the order
        of :data:`CANDIDATES`) whose evidence holds, or None (the model's own answers)."""
        for name in CANDIDATES:
            recent = np.array(list(self.gains_of(name).values())[-EVIDENCE_OBJECTS:], float)
            min_gain, min_wins = THRESHOLDS[name]
            held = len(recent) >= MIN_OBJECTS and recent.mean() > min_gain and (recent > 0).mean() >= min_wins
            if name in self.candidates and held:
                return name
        return None

    def follow(self) -> bool:
        """Whether answers should follow the image's edges now (one of the candidates)."""
        return self.choice() is not None
