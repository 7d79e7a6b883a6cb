"""Edit history: undoable steps, each a list of changes, with the usual undo/redo semantics.

One rule for the session (prompts on planes) and the widget (accepted objects): a new step
clears what could be redone; undo moves the last step to the redo stack and back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

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
