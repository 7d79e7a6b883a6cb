"""Edit history: undoable steps, each a list of changes, with the usual undo/redo semantics.

One rule for the session (prompts on planes) and the widget (accepted objects): a new step
clears what could be redone; undo moves the last step to the redo stack and back. A session's
step is a list of :class:`PlaneEdit` on its planes (``{key: PlaneState}``), made by
:func:`mask_edits` or :func:`clear_edits` and put in (or taken back) by :func:`apply_edits`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from napari_oaims.core import geometry
from napari_oaims.core.results import PlaneChange

T = TypeVar("T")


class History(Generic[T]):
    """Undo and redo stacks of steps (any objects the owner knows how to apply)."""

    def __init__(self) -> None:
        self._undo: list[T] = []
        self._redo: list[T] = []

    def push(self, step: T) -> None:
        """Record a new step (what could be redone is dropped)."""
        self._undo.append(step)
        self._redo.clear()

    def undo(self) -> T | None:
        """The step to take back (None if there is none); it becomes redoable."""
        if not self._undo:
            return None
        step = self._undo.pop()
        self._redo.append(step)
        return step

    def redo(self) -> T | None:
        """The step to apply again (None if there is none)."""
        if not self._redo:
            return None
        step = self._redo.pop()
        self._undo.append(step)
        return step

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()

    def drop(self, keep) -> None:
        """Forget the steps for which ``keep(step)`` is false (in both stacks)."""
        self._undo = [s for s in self._undo if keep(s)]
        self._redo = [s for s in self._redo if keep(s)]

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def last(self) -> T | None:
        """The step :meth:`undo` would take back."""
        return self._undo[-1] if self._undo else None


@dataclass
class PlaneEdit:
    """One plane's part of a session step: its prompts and mask region before and after."""

    key: tuple[int, ...]
    prompts_before: list[Any]
    prompts_after: list[Any]
    region: tuple[slice, slice] | None
    before: Any
    after: Any
    bbox_before: tuple[int, int, int, int] | None
    bbox_after: tuple[int, int, int, int] | None


@dataclass
class PlaneState:
    """The object in progress on one plane: its prompts, its mask (bool, plane shape, allocated
    lazily) and the mask's bounding box."""

    prompts: list[Any]
    mask: Any = None
    bbox: tuple[int, int, int, int] | None = None


# -- a session's steps on its planes (``{key: PlaneState}``) ---------------------------------------
def snapshot(planes: dict[tuple[int, ...], PlaneState]) -> dict[tuple[int, ...], tuple[Any, Any]]:
    """``{key: (bbox, mask crop)}`` of the planes with a mask (copies)."""
    return {
        k: (st.bbox, st.mask[geometry.box_slices(st.bbox)].copy()) for k, st in planes.items() if st.bbox is not None
    }


def apply_edits(
    planes: dict[tuple[int, ...], PlaneState], plane_shape, edits: list[PlaneEdit], before: bool
) -> tuple[PlaneChange, ...]:
    """Put each edit's ``before`` (undo) or ``after`` (do, redo) state into ``planes``; returns the
    :class:`~napari_oaims.core.results.PlaneChange` of each."""
    out = []
    for ch in edits:
        st = planes.setdefault(ch.key, PlaneState([]))
        st.prompts = list(ch.prompts_before if before else ch.prompts_after)
        values = ch.before if before else ch.after
        if ch.region is not None:
            if st.mask is None:
                st.mask = np.zeros(plane_shape, bool)
            st.mask[ch.region] = values
        st.bbox = ch.bbox_before if before else ch.bbox_after
        out.append(PlaneChange(ch.key, ch.region, None if values is None else values.copy()))
    return tuple(out)


def clear_edits(planes: dict[tuple[int, ...], PlaneState]) -> list[PlaneEdit]:
    """The edits that empty every plane (prompts and mask)."""
    edits = []
    for key, st in planes.items():
        region = geometry.box_slices(st.bbox) if st.bbox else None
        before = st.mask[region].copy() if region else None
        after = np.zeros_like(before) if before is not None else None
        edits.append(PlaneEdit(key, list(st.prompts), [], region, before, after, st.bbox, None))
    return edits


def mask_edits(
    planes: dict[tuple[int, ...], PlaneState],
    masks: dict[tuple[int, ...], Any],
    prompts: dict[tuple[int, ...], list[Any]],
) -> list[PlaneEdit]:
    """The edits that give planes new masks (``masks[key]``: ``(box, crop)``, None: empty) and,
    for the planes ``prompts`` names, new prompts; planes left as they were are no edit."""
    edits = []
    for key in dict.fromkeys([*masks, *prompts]):
        st = planes.get(key)
        old_box = st.bbox if st is not None else None
        new_box, crop = masks[key] if masks.get(key) is not None else (None, None)
        if key not in masks:
            new_box, crop = (old_box, st.mask[geometry.box_slices(old_box)]) if old_box else (None, None)
        box = geometry.union(old_box, new_box)
        old_prompts = list(st.prompts) if st is not None else []
        new_prompts = list(prompts.get(key, old_prompts))
        if box is None:
            region = before = after = None
        else:
            region = geometry.box_slices(box)
            shape = (box[2] - box[0], box[3] - box[1])
            before = st.mask[region].copy() if old_box is not None else np.zeros(shape, bool)
            after = np.zeros_like(before)
            if new_box is not None:
                after[new_box[0] - box[0] : new_box[2] - box[0], new_box[1] - box[1] : new_box[3] - box[1]] = crop
            new_box = geometry.bbox(after, (box[0], box[1]))
        if (before is None or np.array_equal(before, after)) and key not in prompts:
            continue
        edits.append(PlaneEdit(key, old_prompts, new_prompts, region, before, after, old_box, new_box))
    return edits
