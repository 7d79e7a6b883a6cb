"""The accepted-objects label image of a session folder and the objects-table rows that go with it.

An object is painted into ``labels/objects`` (a region write: an object a session accepted keeps
other objects' pixels unless it was accepted with ``overwrite``; a mask given whole wins there),
then its objects-table row is journaled (:meth:`Journal.record_object
<napari_oaims.store.journal.Journal.record_object>`) with the new areas of the objects it painted
over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from napari_oaims.core.events import dumps as _dumps
from napari_oaims.core.geometry import bbox_nd
from napari_oaims.core.labels import object_planes, paint, paint_planes, planes_of_labels

if TYPE_CHECKING:  # pragma: no cover
    import zarr

    from napari_oaims.core.results import Accepted
    from napari_oaims.store.journal import Journal


class LabelImage:
    """Painting accepted objects into the label image, each with its objects-table row.

    Parameters
    ----------
    array : zarr.Array
        The label image (``labels/objects``: uint32, the image's spatial axes).
    plane_axes : tuple of int
        The session's plane axes (an object's planes are recorded along them).
    journal : Journal
        Where objects-table rows go.
    lock : threading.RLock
        The store's lock, held from painting to the journaled row.
    """

    def __init__(self, array: "zarr.Array", plane_axes, journal: "Journal", lock):
        self.array = array
        self._plane_axes = plane_axes
        self._journal = journal
        self._lock = lock

    def commit(self, object_id: int, mask: np.ndarray, class_id: int, class_name: str) -> None:
        """Paint ``mask`` (the labels' shape) as object ``object_id`` and record its row."""
        mask = np.asarray(mask, bool)
        if mask.shape != self.array.shape:
            raise ValueError(f"object mask has shape {mask.shape}; the labels have shape {self.array.shape}")
        index = bbox_nd(mask)
        if index is None:
            raise ValueError(f"object {object_id} has an empty mask")
        planes = object_planes(mask, self._plane_axes)
        with self._lock:
            area, overwritten, _ = paint(self.array, index, mask[index], object_id, overwrite=True)
            self._journal.record_object(object_id, area, [list(p) for p in planes], overwritten, class_id, class_name)

    def commit_accepted(self, accepted: "Accepted", class_id: int, class_name: str) -> None:
        """Paint an object a session accepted (its planes) and record its row; the journal is not
        compacted here (the caller compacts once the accept event is logged too)."""
        area, overwritten, _ = paint_planes(
            self.array, accepted.plane_axes, accepted.planes, accepted.object_id, accepted.overwrite
        )
        self._journal.record_object(
            accepted.object_id,
            area,
            [list(k) for k in accepted.planes],
            overwritten,
            class_id,
            class_name,
            compact=False,
        )

    def replace(self, labels: np.ndarray, class_name: str) -> None:
        """Replace the whole label image and rebuild the objects table (class ids and names of ids
        already in the table are kept; new ids get class 1, ``class_name``)."""
        labels = np.asarray(labels)
        if labels.shape != self.array.shape:
            raise ValueError(
                f"labels of shape {labels.shape} do not fit the session image (labels shape {self.array.shape})"
            )
        if labels.dtype.kind not in "biu" or (labels.size and labels.min() < 0):
            raise ValueError(f"labels must hold non-negative integers, got dtype {labels.dtype}")
        known = {o["id"]: o for o in self._journal.objects()}
        ids, areas = np.unique(labels, return_counts=True)
        keep = ids != 0
        ids, areas = ids[keep], areas[keep]
        planes = planes_of_labels(labels, self._plane_axes)
        old = [known.get(int(i), {}) for i in ids]
        rows = {
            "id": ids.astype(np.int32),
            "class_id": np.array([o.get("class_id", 1) for o in old], np.int32),
            "class_name": np.array([o.get("class_name", class_name) for o in old], dtype=object),
            "area": areas.astype(np.int64),
            "planes": np.array([_dumps(planes[int(i)]) for i in ids], dtype=object),
        }
        with self._lock:
            self._journal.compact()
            self.array[...] = labels.astype(np.uint32)
            self._journal.replace_objects(rows)
