"""Putting a propagation into a session: one undoable step and one ``propagate`` event."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from napari_oaims.core import geometry
from napari_oaims.core.history import PlaneEdit as _Change
from napari_oaims.propagate import Propagated

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.session import Session


def apply_propagation(session: "Session", out, t0: float) -> Propagated:
    """Apply the planes of a finished (or cancelled) propagation ``out`` to ``session``: the
    changed planes become one undoable step and one ``propagate`` event (started at ``t0``)."""
    info = {
        "method": out.method,
        "axis": out.axis,
        "extent": list(out.extent),
        "settings": out.settings.to_dict(),
        "anchors": [list(k) for k in out.anchors],
    }

    def done(changes, cancelled=False) -> Propagated:
        return Propagated(
            tuple(changes),
            session.spatial_shape,
            session.source.plane_axes,
            session._snapshot(),
            session.object_id,
            cancelled=cancelled,
            axis=out.axis,
            method=out.method,
            anchors=tuple(out.anchors),
            info={**info, **out.stats},
        )

    if out.cancelled:
        return done((), cancelled=True)
    changes = []
    for key, new in out.planes.items():
        st = session.planes.get(key)
        old_box = st.bbox if st is not None else None
        box = geometry.union(old_box, new.box)
        if box is None:
            continue
        region = geometry.box_slices(box)
        before = (
            st.mask[region].copy()
            if st is not None and st.mask is not None
            else np.zeros((box[2] - box[0], box[3] - box[1]), bool)
        )
        after = new.in_box(box, bool)
        if np.array_equal(before, after):
            continue
        prompts = list(st.prompts) if st is not None else []
        changes.append(_Change(key, prompts, prompts, region, before, after, old_box, new.box))
    if not changes:
        return done(())
    result = done(session._apply(changes, before=False))
    session._history.push(changes)
    extra = {
        "call": {
            "axis": out.axis,
            "method": out.method,
            "extent": list(out.extent),
            "settings": out.settings.to_dict(),
        },
        **info,
        "slices_changed": [list(ch.key) for ch in changes],
        "time_ms": out.stats.get("time_ms"),
        "ms_per_slice": out.stats.get("ms_per_slice"),
        "weights_hash": session.engine.weights_hash,
        "chains": out.stats.get("chains", []),
        "student_steps": out.stats.get("student_steps"),
    }
    session._log("propagate", latency_ms=(time.perf_counter() - t0) * 1e3, extra=extra, result=result)
    return result
