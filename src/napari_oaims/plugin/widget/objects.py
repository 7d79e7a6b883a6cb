"""Accepted objects in the objects layer: painting them, taking them back, their classes.

An object is painted with :func:`napari_oaims.core.labels.paint_planes` (the rule the session
store and replay use too: by default it keeps the pixels of earlier ones) and taken back with
:func:`~napari_oaims.core.labels.unpaint`. Classes are shown as the layer's ``features``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Labels

from napari_oaims.core.labels import paint_planes, unpaint

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable

    from napari_oaims.core.results import Accepted
    from napari_oaims.session import Session

#: Class of objects whose class is not known (e.g. painted by hand before saving).
DEFAULT_CLASS = (1, "object")


@dataclass(eq=False)
class ObjectStep:
    """An accepted object as a step of the annotator's undo history."""

    accepted: "Accepted"
    #: ``(index, before, after)`` per plane, from its last painting (for undo).
    records: list = field(default_factory=list)
    #: Taken back (the step waits in the redo stack).
    undone: bool = False

    @property
    def object_id(self) -> int:
        return self.accepted.object_id

    @property
    def cls(self) -> tuple[int, str]:
        return self.accepted.class_id, self.accepted.class_name


@dataclass(eq=False)
class ObjectGroup:
    """Objects accepted together (e.g. by *Propagate all*) as one step of the undo history."""

    steps: list[ObjectStep]

    @property
    def undone(self) -> bool:
        return all(step.undone for step in self.steps)

    def in_order(self, undo: bool) -> list[ObjectStep]:
        """The steps in the order to apply them (the last painted is taken back first)."""
        return list(reversed(self.steps)) if undo else list(self.steps)


class AcceptedObjects:
    """The objects of one objects layer and their classes (a new layer starts with none)."""

    def __init__(self) -> None:
        self.layer: Labels | None = None
        #: object id -> (class id, class name)
        self.classes: dict[int, tuple[int, str]] = {}
        self._withdrawn: dict[int, float | None] = {}  # taken-back objects' diameters, for redo

    def use(self, layer: Labels) -> None:
        """Paint into ``layer`` from now on."""
        if layer is not self.layer:
            self.layer = layer
            self.classes = {}
            self._withdrawn = {}

    def reset(self) -> None:
        """Forget the diameters of taken-back objects (a new session does not know them)."""
        self._withdrawn = {}

    def load(self, layer: Labels, labels: np.ndarray, classes: dict[int, tuple[int, str]]) -> None:
        """Show saved objects (``labels``) and their classes in ``layer``."""
        self.use(layer)
        layer.data = labels
        self.classes = dict(classes)
        self.show_classes()

    def add(self, accepted: "Accepted") -> ObjectStep:
        """Paint a just accepted object; returns its undo step."""
        return self.add_group([accepted]).steps[0]

    def add_group(self, accepted: "Iterable[Accepted]") -> ObjectGroup:
        """Paint objects accepted together, in order, with one redraw of the layer; their undo step."""
        group = ObjectGroup([ObjectStep(one) for one in accepted])
        for step in group.steps:
            self._paint(step)
        self._show()
        return group

    def apply(self, step: "ObjectStep | ObjectGroup", undo: bool, session: "Session | None") -> None:
        """Take the object(s) of ``step`` back (``undo``) or paint them again (one redraw of the layer).

        A taken-back object's size no longer counts for object size "auto" in ``session``.
        """
        if self.layer is None:
            raise ValueError("the objects layer was removed: the object cannot be changed any more")
        for one in step.in_order(undo) if isinstance(step, ObjectGroup) else [step]:
            one.undone = undo
            if not undo:
                self._paint(one)
                if session is not None and one.object_id in self._withdrawn:
                    session.reinstate(one.object_id, self._withdrawn.pop(one.object_id))
                continue
            unpaint(self.layer.data, one.records)
            self.classes.pop(one.object_id, None)
            if session is not None:
                self._withdrawn[one.object_id] = session.withdraw(one.object_id)
        self._show()

    def _paint(self, step: ObjectStep) -> None:
        """Paint ``step``'s object into the layer's data (shown by :meth:`_show`)."""
        if self.layer is None:
            raise ValueError("there is no objects layer to paint into")
        accepted = step.accepted
        _, _, step.records = paint_planes(
            self.layer.data, accepted.plane_axes, accepted.planes, accepted.object_id, accepted.overwrite
        )
        self.classes[accepted.object_id] = step.cls

    def _show(self) -> None:
        """Show what was painted: the classes, and one redraw of the layer."""
        self.show_classes()
        if self.layer is not None:
            self.layer.refresh(extent=False)  # painting never changes its extent

    def show_classes(self) -> None:
        """Write the classes into the layer's features (and metadata)."""
        if self.layer is None:
            return
        ids = sorted(self.classes)
        self.layer.features = {
            "index": np.array(ids, int),
            "class_id": [self.classes[i][0] for i in ids],
            "class_name": [self.classes[i][1] for i in ids],
        }
        self.layer.metadata["oaims_classes"] = {i: self.classes[i][1] for i in ids}
