"""User prompts on one plane: clicks, scribbles, boxes and prior masks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The kinds of prompt a session takes.
KINDS = ("click", "box", "scribble", "prior")


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

    @property
    def guides(self) -> bool:
        """Whether the prompt can start an object (a positive click or scribble, a box, a prior)."""
        return self.positive or self.kind in ("box", "prior")


def check_positive(positive) -> bool:
    """A prompt's label: ``True`` (the object) or ``False`` (not the object); 1 and 0 count too.

    Anything else (a string such as ``"no"``, None, 2) is a ``ValueError``: its truth value would
    say nothing about what the user meant.
    """
    if isinstance(positive, (bool, np.bool_)) or (isinstance(positive, (int, np.integer)) and positive in (0, 1)):
        return bool(positive)
    raise ValueError(f"positive must be True (the object) or False (not the object), got {positive!r}")


def check_numbers(values, what: str = "coordinates"):
    """``values`` if it is a number or a (nested) sequence or array of real numbers; else a
    ``ValueError`` naming ``what`` (None, strings and booleans are not coordinates)."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        arr = np.asarray(None)
    if arr.dtype.kind not in "iuf" or _holds_bool(values):
        raise ValueError(f"{what} must be real numbers (one per spatial axis), got {values!r}")
    return values


def _holds_bool(values) -> bool:
    if isinstance(values, (bool, np.bool_)):
        return True
    return isinstance(values, (list, tuple)) and any(_holds_bool(v) for v in values)


def is_correction(prompt: Prompt, mask_values: np.ndarray) -> bool:
    """Whether ``prompt`` corrects the mask whose values at its pixels are ``mask_values``.

    A click or scribble corrects the mask where its polarity disagrees with it (any pixel);
    boxes and prior masks always count as corrections.
    """
    if prompt.kind not in ("click", "scribble"):
        return True
    return bool(np.any(np.asarray(mask_values, bool) != bool(prompt.positive)))


def supersedes(new: Prompt, old: Prompt) -> bool:
    """A click replaces an earlier click of the other label on the same pixel: the later one wins.

    Both in the model's input would ask for opposite answers at one pixel; the user meant the
    newer one. Undo brings the earlier click back.
    """
    return new.kind == old.kind == "click" and new.positive != old.positive and np.array_equal(new.points, old.points)


def box_prompt(box, plane_shape: tuple[int, int]) -> Prompt:
    """A box prompt from ``(y0, x0, y1, x1)`` (plane pixels, ends exclusive), clipped to the plane.

    Raises ``ValueError`` for a malformed, non-finite, inverted or outside box.
    """
    try:
        y0, x0, y1, x1 = (float(v) for v in box)
    except (TypeError, ValueError) as err:
        raise ValueError(f"a box is (y0, x0, y1, x1), got {box!r}") from err
    if not all(np.isfinite([y0, x0, y1, x1])):
        raise ValueError(f"box corners must be finite, got {box!r}")
    if y1 <= y0 or x1 <= x0:
        raise ValueError(f"box corners are inverted or empty: need y0 < y1 and x0 < x1, got {box!r}")
    h, w = plane_shape
    b = (int(max(np.floor(y0), 0)), int(max(np.floor(x0), 0)), int(min(np.ceil(y1), h)), int(min(np.ceil(x1), w)))
    if b[2] <= b[0] or b[3] <= b[1]:
        raise ValueError(f"box {box!r} lies outside the image plane of shape {tuple(plane_shape)}")
    return Prompt("box", True, np.array([[b[0], b[1]], [b[2] - 1, b[3] - 1]]), box=b)


def prior_prompt(mask2d, plane_shape: tuple[int, int]) -> Prompt:
    """A prior-mask prompt (boolean or numeric plane mask; numbers > 0.5 count, NaN does not)."""
    m = np.asarray(mask2d)
    if m.shape != tuple(plane_shape):
        raise ValueError(f"prior mask must have the plane shape {tuple(plane_shape)}, got {m.shape}")
    if m.dtype.kind not in "biuf":
        raise TypeError(f"prior mask must be boolean or numeric, got dtype {m.dtype}")
    m = np.nan_to_num(m.astype(np.float32)) > 0.5 if m.dtype.kind == "f" else m.astype(bool)
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    if len(rows) == 0:
        raise ValueError("prior mask is empty")
    bb = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    return Prompt("prior", True, np.array([[bb[0], bb[1]], [bb[2] - 1, bb[3] - 1]]), box=bb, mask=m)
