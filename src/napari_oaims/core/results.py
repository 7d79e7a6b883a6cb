"""What a session step returns: the plane regions it changed and the object's mask."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from napari_oaims.core import geometry

#: How a prompt that asks for an object was answered when the model's mask was not used:
#: ``"uniform"``: a positive click lies on a flat spot (one value all around), so the answer
#: holds the connected region of that value; ``"smaller window"``: the model found nothing on the chosen
#: window and answered on a smaller one; ``"region"``: it found nothing there either, so the
#: answer is the connected region of similar values under the click.
FALLBACKS = ("uniform", "smaller window", "region")


@dataclass(frozen=True)
class PlaneChange:
    """New values (bool, ``region`` shape) of the object's mask in ``region`` (plane slices) of
    plane ``plane``. ``region`` is None when the step changed only the prompts."""

    plane: tuple[int, ...]
    region: tuple[slice, slice] | None
    values: np.ndarray | None


@dataclass(frozen=True, eq=False)
class Result:
    """What a prompt, undo, redo, clear or accept did.

    ``changes`` are the plane regions that changed (copy only these into a display); ``mask`` is
    the object's whole mask (image spatial shape, made on first access from the object's planes
    as they were when the step ended). ``np.asarray(result)`` is ``result.mask``. ``fallback``
    says how a prompt that asks for an object was answered when the model's answer on its window
    was not used (:data:`FALLBACKS`), None when it was.
    """

    changes: tuple[PlaneChange, ...]
    shape: tuple[int, ...]
    plane_axes: tuple[int, int]
    #: The object's planes when the step ended: key -> (bbox, mask crop in bbox).
    planes: dict[tuple[int, ...], tuple[geometry.Box, np.ndarray]]
    object_id: int
    fallback: str | None = None

    @cached_property
    def mask(self) -> np.ndarray:
        out = np.zeros(self.shape, bool)
        flip = geometry.transposed(self.plane_axes, len(self.shape))
        for key, (box, crop) in self.planes.items():
            out[geometry.plane_index(self.plane_axes, len(self.shape), key, geometry.box_slices(box))] = (
                crop.T if flip else crop
            )
        return out

    @property
    def plane(self) -> tuple[int, ...] | None:
        """The plane of the (last) change, None when nothing changed."""
        return self.changes[-1].plane if self.changes else None

    @property
    def area(self) -> int:
        """Pixels in the object's mask."""
        return int(sum(np.count_nonzero(c) for _, c in self.planes.values()))

    def __array__(self, dtype=None, copy=None):
        return self.mask if dtype is None else self.mask.astype(dtype)


@dataclass(frozen=True, eq=False)
class Accepted(Result):
    """An accepted object (:meth:`Session.accept`): its id, class and mask, and whether painting
    it may take pixels of objects accepted before (``overwrite``; see
    :func:`napari_oaims.core.labels.paint`)."""

    class_id: int = 1
    class_name: str = "object"
    overwrite: bool = False
