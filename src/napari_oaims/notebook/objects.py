"""The notebook annotator's accepted objects: painted into the labels, taken back and put back
by undo and redo, each change autosaved."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from napari_oaims.core.labels import paint_planes, unpaint

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.core.results import Accepted
    from napari_oaims.notebook.saving import Autosave
    from napari_oaims.session import Session


class ObjectStep:
    """An accepted object as a step of the undo history."""

    def __init__(self, accepted: "Accepted", records: list) -> None:
        self.accepted = accepted
        self.records = records
        self.undone = False
        self.diameter: float | None = None


class AcceptedObjects:
    """Paints accepted objects into ``labels`` and takes them back.

    Parameters
    ----------
    session : Session
        Told when an object is taken back or put back (its size prior).
    autosave : Autosave
        Where a change is written (when it has a store).
    labels : ndarray
        The accepted objects (image spatial shape), changed in place.
    object_classes : dict
        Each object's (class id, class name), changed in place.
    """

    def __init__(
        self,
        session: "Session",
        autosave: "Autosave",
        labels: np.ndarray,
        object_classes: dict[int, tuple[int, str]],
    ) -> None:
        self._session = session
        self._autosave = autosave
        self._labels = labels
        self._object_classes = object_classes

    def add(self, accepted: "Accepted") -> ObjectStep:
        """Paint an accepted object into the labels; its undo step."""
        records = _paint(self._labels, accepted)
        self._object_classes[accepted.object_id] = (accepted.class_id, accepted.class_name)
        return ObjectStep(accepted, records)

    def step(self, step: ObjectStep, undo: bool) -> None:
        """Take the object of ``step`` back (``undo``) or put it back, and autosave the labels."""
        accepted = step.accepted
        step.undone = undo
        if undo:
            unpaint(self._labels, step.records)
            self._object_classes.pop(accepted.object_id, None)
            step.diameter = self._session.withdraw(accepted.object_id)
        else:
            step.records = _paint(self._labels, accepted)
            self._object_classes[accepted.object_id] = (accepted.class_id, accepted.class_name)
            self._session.reinstate(accepted.object_id, step.diameter)
        store = self._autosave.store
        if store is None:
            return
        if undo:
            store.write_labels(self._labels)
        else:
            store.commit_object(
                accepted.object_id,
                self._labels == accepted.object_id,
                class_id=accepted.class_id,
                class_name=accepted.class_name,
            )


def _paint(labels: np.ndarray, accepted: "Accepted") -> list:
    """Paint ``accepted`` into ``labels`` with the overwrite rule it was accepted with; the records
    that undo it."""
    planes = accepted.planes
    return paint_planes(labels, accepted.plane_axes, planes, accepted.object_id, accepted.overwrite)[2]
