"""Answers that follow the image's edges, and whether the accepted objects say they should.

The model draws an object's outline from what it learnt; on some images the image's own edges
say more (thin dark cavities in bright tissue: the model keeps a blob around the click and cuts
the object short). :func:`grow_along_edges` grows the model's answer through the band where the
model is unsure (its logit between ``-band`` and 0), up to the image's edges: a marker watershed
(scikit-image) on the gradient of the window, seeded with the answer and the positive clicks as
object and the model's sure background, the negative clicks and the window's border as
background.

Which answer a session gives is learnt from the user's accepted objects
(:class:`EdgeEvidence`): for each object the session keeps its first answer both ways, and at
accept it measures which one was closer to what the user accepted. Answers follow the edges once
the last :data:`EVIDENCE_OBJECTS` accepted objects show it helps (at least :data:`MIN_OBJECTS`
of them; mean gain in Dice above :data:`MIN_GAIN`, and a gain on a share of at least
:data:`MIN_WINS`), and stop when that no longer holds. A correction's answer grows only where the
answer before it was (:func:`napari_oaims.answer.edge_answer`): the edges add what the first answer
missed, and a correction cannot grow past it.

Everything here works on one window at native resolution or on plain masks; nothing knows about
sessions, torch or napari.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from skimage.draw import disk
from skimage.filters import sobel
from skimage.segmentation import watershed

#: What :attr:`napari_oaims.engine.Engine.edges` may be: ``"auto"`` (learnt from accepted
#: objects), ``"always"`` or ``"never"``.
MODES = ("auto", "always", "never")
#: Logits below ``-EDGE_BAND`` are background for sure; between it and 0 the image's edges decide.
EDGE_BAND = 8.0
#: Radius (px) of the disc each click seeds.
CLICK_RADIUS = 1
#: How many of the latest accepted objects the evidence looks at, how many it needs at least, the
#: mean gain in Dice (edges minus model, first answers against the accepted mask) it needs, and the
#: share of them on which the edges must have won.
EVIDENCE_OBJECTS = 5
MIN_OBJECTS = 3
MIN_GAIN = 0.2
MIN_WINS = 0.8


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
    markers = np.zeros(mask.shape, np.int32)
    markers[np.asarray(logits) < -band] = 2
    markers[[0, -1], :] = 2
    markers[:, [0, -1]] = 2
    markers[mask] = 1
    for points, label in ((positive, 1), (negative, 2)):
        for y, x in np.rint(np.asarray(points, float).reshape(-1, 2)).astype(int):
            if 0 <= y < mask.shape[0] and 0 <= x < mask.shape[1]:
                markers[disk((y, x), CLICK_RADIUS, shape=mask.shape)] = label
    if not (markers == 1).any():
        return mask
    return watershed(sobel(np.asarray(crop, np.float64)), markers) == 1


def dice_on(region: tuple[slice, slice], part: np.ndarray, whole: np.ndarray) -> float:
    """Dice of ``part`` (a mask on ``region`` of a plane, the rest of the plane empty) and ``whole``
    (a mask of the whole plane)."""
    overlap = int(np.count_nonzero(part & whole[region]))
    total = int(np.count_nonzero(part)) + int(np.count_nonzero(whole))
    return 2.0 * overlap / total if total else 1.0


@dataclass
class EdgeEvidence:
    """What the accepted objects say about following the image's edges (see the module docstring).

    ``gains`` holds, by object id in accept order, the Dice of the first answer grown along edges
    minus that of the model's own first answer, both against the accepted mask."""

    gains: dict[int, float] = field(default_factory=dict)
    _first: dict[int, tuple] = field(default_factory=dict, repr=False)
    _withdrawn: dict[int, float] = field(default_factory=dict, repr=False)

    def first_answer(self, object_id: int, plane, region, model: np.ndarray, edges: np.ndarray) -> None:
        """The object's first answer on ``plane`` (its mask on ``region``), from the model and grown
        along edges; a later first answer of the same object (after an undo) replaces it."""
        self._first[int(object_id)] = (tuple(plane), region, np.asarray(model, bool), np.asarray(edges, bool))

    def accepted(self, object_id: int, masks: dict) -> dict[str, float]:
        """Record the gain of object ``object_id``, accepted with ``masks`` (plane -> full plane
        mask); returns what the accept event logs: ``{"edge_gain": gain}``, or nothing when no
        first answer was kept for the object (its first prompt was no single click)."""
        first = self._first.pop(int(object_id), None)
        self._first.clear()
        if first is None or first[0] not in masks:
            return {}
        plane, region, model, edges = first
        whole = np.asarray(masks[plane], bool)
        gain = round(dice_on(region, edges, whole) - dice_on(region, model, whole), 4)
        self.gains[int(object_id)] = gain
        return {"edge_gain": gain}

    def withdraw(self, object_id: int) -> None:
        """An accepted object was taken back: its gain no longer counts."""
        if int(object_id) in self.gains:
            self._withdrawn[int(object_id)] = self.gains.pop(int(object_id))

    def reinstate(self, object_id: int) -> None:
        """A withdrawn object was brought back: its gain counts again."""
        if int(object_id) in self._withdrawn:
            self.gains[int(object_id)] = self._withdrawn.pop(int(object_id))
            self.gains = dict(sorted(self.gains.items()))

    def follow(self) -> bool:
        """Whether answers should follow the image's edges now."""
        recent = np.array(list(self.gains.values())[-EVIDENCE_OBJECTS:], float)
        return bool(len(recent) >= MIN_OBJECTS and recent.mean() > MIN_GAIN and (recent > 0).mean() >= MIN_WINS)
