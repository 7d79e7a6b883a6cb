"""What a propagation carries from and must keep out of: anchors and barriers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from napari_oaims.core import geometry
from napari_oaims.propagate.masks import Sparse

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.session import Session

#: A plane key: coordinates on the non-plane axes.
Key = tuple[int, ...]


@dataclass(frozen=True)
class Anchor:
    """An anchor plane: its mask (``box``/``crop``, None when empty) and its prompts."""

    box: geometry.Box | None
    crop: np.ndarray | None
    prompts: list

    @property
    def sparse(self) -> Sparse:
        return Sparse.empty() if self.box is None else Sparse.of_mask(self.crop, self.box[:2])


def session_anchors(session: "Session") -> dict[Key, Anchor]:
    """The current object's anchors: its planes with prompts."""
    out = {}
    for key in session.prompted_planes():
        got = session.plane_crop(key)
        out[key] = Anchor(*(got or (None, None)), session.prompts(key))
    return out


class Barrier:
    """Voxels a propagation must not take: ``taken`` (an array of the image's spatial shape,
    nonzero where taken, read one plane at a time) and masks added per plane (:meth:`add`).

    :attr:`blocked` keeps, plane by plane, the voxels it kept out of a slice (those of the
    slice's box, when the slice was made): with them as ``taken``, the same propagation is kept
    out of the same voxels (what a replay needs; :meth:`write`)."""

    def __init__(self, source, taken=None):
        self.source = source
        self.taken = taken
        self.extra: dict[Key, list[Sparse]] = {}
        self.blocked: dict[Key, list[Sparse]] = {}

    def add(self, key: Key, mask: Sparse) -> None:
        if mask.box is not None:
            self.extra.setdefault(key, []).append(mask)

    def __bool__(self) -> bool:
        return self.taken is not None or bool(self.extra)

    def in_box(self, key: Key, box: geometry.Box, taken: bool = True, extra: bool = True) -> np.ndarray | None:
        """The blocked pixels of plane ``key`` inside ``box`` (None: none): those of ``taken``
        and those :meth:`add` gave, or only one kind."""
        out = None
        if taken and self.taken is not None:
            index = list(self.source.plane_index(key))
            a0, a1 = self.source.plane_axes
            index[a0] = slice(box[0], box[2])
            index[a1] = slice(box[1], box[3])
            block = np.asarray(self.taken[tuple(index)]) != 0
            out = block.T if a0 > a1 else block
        for m in self.extra.get(key, []) if extra else []:
            part = m.in_box(box, bool)
            out = part if out is None else out | part
        return out

    def apply(self, key: Key, prob: Sparse, taken: bool = True, extra: bool = True) -> Sparse:
        """``prob`` with the blocked pixels of plane ``key`` set to zero (of ``taken``, of the
        masks :meth:`add` gave, or both)."""
        if not self or prob.box is None:
            return prob
        blocked = self.in_box(key, prob.box, taken, extra)
        if blocked is None or not blocked.any():
            return prob
        self.keep_out(key, Sparse.of_mask(blocked, prob.box[:2]))
        return Sparse(prob.box, np.where(blocked, 0, prob.values).astype(prob.values.dtype))

    def keep_out(self, key: Key, mask: Sparse) -> None:
        """Record ``mask`` (bool) as voxels of plane ``key`` a slice was kept out of."""
        if mask.box is not None:
            self.blocked.setdefault(key, []).append(mask)


def write_blocked(source, blocked: dict[Key, list[Sparse]], out) -> None:
    """Set the voxels of ``blocked`` (:attr:`Barrier.blocked`) in ``out``, an array of the
    image's spatial shape (a NumPy or Zarr array: one region write per piece)."""
    a0, a1 = source.plane_axes
    for key, pieces in blocked.items():
        for piece in pieces:
            y0, x0, y1, x1 = piece.box
            index = list(source.plane_index(key))
            index[a0], index[a1] = slice(y0, y1), slice(x0, x1)
            index = tuple(index)
            values = piece.values.T if a0 > a1 else piece.values
            out[index] = np.asarray(out[index], bool) | values
