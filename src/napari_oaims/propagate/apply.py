"""Putting a propagation into a session: one undoable step and one ``propagate`` event."""

from __future__ import annotations

from typing import TYPE_CHECKING

from napari_oaims.propagate import Propagated

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.session import Session


def apply_propagation(session: "Session", out, t0: float) -> Propagated:
    """Apply the planes of a finished propagation ``out`` to ``session``
    (:meth:`Session.apply_masks`): the changed planes become one undoable step and one
    ``propagate`` event (started at ``t0``); the voxels its barrier kept out go to
    ``session.barrier_masks`` under the event's seq."""
    info = {
        "method": out.method,
        "axis": out.axis,
        "extent": list(out.extent),
        "settings": out.settings.to_dict(),
        "anchors": [list(k) for k in out.anchors],
    }
    masks = {key: None if new.box is None else (new.box, new.values) for key, new in out.planes.items()}
    call = {"axis": out.axis, "method": out.method, "extent": list(out.extent), "settings": out.settings.to_dict()}

    def extra(changes) -> dict:
        return {
            "call": call,
            **info,
            "slices_changed": [list(ch.plane) for ch in changes],
            "time_ms": out.stats.get("time_ms"),
            "ms_per_slice": out.stats.get("ms_per_slice"),
            "weights_hash": session.engine.weights_hash,
            "chains": out.stats.get("chains", []),
            "student_steps": out.stats.get("student_steps"),
            "barrier": out.stats.get("barrier", False),
        }

    seq = len(session.events)  # the propagate event's, if it changes anything
    if out.blocked:  # kept beside the log: a replay keeps the propagation out of the same voxels
        session.barrier_masks[seq] = out.blocked
    result = session.apply_masks(masks, "propagate", extra=extra, started=t0)
    if not result.changes:
        session.barrier_masks.pop(seq, None)
    return Propagated(
        result.changes,
        result.shape,
        result.plane_axes,
        result.planes,
        result.object_id,
        axis=out.axis,
        method=out.method,
        anchors=tuple(out.anchors),
        info={**info, **out.stats},
    )
