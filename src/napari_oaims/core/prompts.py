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
