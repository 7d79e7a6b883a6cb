"""The window rule of a :class:`~napari_oaims.session.Session`: the local window each prompt is
predicted on (:func:`choose_window`), sized from the engine's ``first_window`` or, with
``"auto"``, from the objects accepted so far or the blob under the object's first click.

A module of the session itself: it reads the session's memory of the object in progress.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from napari_oaims.core import geometry, guidance
from napari_oaims.core.prompts import Prompt

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.session import Session


def choose_window(
    session: "Session", key, prompts: list[Prompt], mask_bbox=None, first: bool = False, min_size: int | None = None
) -> guidance.Window | None:
    """The local window for ``prompts`` on plane ``key`` (None when there is no positive prompt,
    box, prior or ``mask_bbox``).

    ``first``: the object has no mask yet, so with only clicks or scribbles the window side is
    at least the engine's ``first_window`` (the weights' ``window.first_size``). Other windows
    are at least ``LATER_WINDOW_SHARE`` of it (with ``"auto"``: of the accepted objects' size, or
    of what this object's first click measured), or ``min_size`` when given.
    """
    pos = [p.points for p in prompts if p.positive and p.kind in ("click", "scribble")]
    extra = mask_bbox
    for p in prompts:
        if p.kind in ("box", "prior"):
            extra = geometry.union(extra, p.box)
    pts = np.concatenate(pos) if pos else np.zeros((0, 2))
    if len(pts) == 0 and extra is None:
        return None
    if first and extra is None:
        min_size = first_window(session, key, pts)
    elif min_size is None:
        min_size = later_size(session)
    return guidance.choose_window(pts, session.source.plane_shape, extra, min_size=min_size)


def later_size(session: "Session") -> int:
    """The smallest side of the object's windows after its first: they keep the object at the
    scale of its first window."""
    size = session.engine.first_window
    if size == "auto":
        size = object_window(session) or session.first_sizes.get(session.object_id) or guidance.MIN_WINDOW
    return max(8, int(round(guidance.LATER_WINDOW_SHARE * size)))


def object_window(session: "Session") -> int | None:
    """Four times the median diameter of the objects accepted so far (None before the first)."""
    if not session.accepted_diameters:
        return None
    return guidance.window_for_diameter(float(np.median(list(session.accepted_diameters.values()))))


def first_window(session: "Session", key, pts: np.ndarray) -> int:
    """The engine's first-window side. With ``"auto"``: four times the median diameter of the
    objects accepted in this session, or, before the first one, of the blob under the prompt
    (``Session.first_peak``: its smallest strong scale; remembered: the object's later windows
    follow it)."""
    size = session.engine.first_window
    if size != "auto":
        return size
    known = object_window(session)
    if known is not None:
        return known
    src, share = session.source, guidance.BLOB_PEAK_SHARE if session.first_peak else None
    diameter = guidance.diameter_at(lambda w: src.crop(key, w), pts, src.plane_shape, share)
    size = min(guidance.AUTO_MAX_WINDOW, guidance.window_for_diameter(diameter))
    session.first_sizes = {session.object_id: size}
    return size


def follow_window(session: "Session", size: int) -> None:
    """The object in progress measured its scale as a window of side ``size``: its later windows
    follow it (with ``"auto"``)."""
    session.first_sizes[session.object_id] = int(size)
