"""What the annotators (the napari widget and the notebook widget) share: key bindings, the
stack axis rule, status-line phrases and what they say when answers start or stop following the
image's edges."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Actions and their keys (napari key names; the notebook widget takes the same keys).
KEYS = {"toggle": "N", "accept": "K", "next": "J", "undo": "U", "redo": "Shift-U", "clear": "Q"}


#: What an annotator says when answers start (True) or stop (False) following the image's edges.
SWITCH_NOTES = {
    "edges": "answers now grow along the image's edges where the model is unsure: that matched your last "
    "accepted objects better",
    "snap": "first answers now snap to the image's edges where the model is unsure: that matched your last "
    "accepted objects better",
    None: "answers no longer follow the image's edges: the model's own matched your last accepted objects better",
}


def edges_switch(before: str | None, session: Any) -> str | None:
    """What to tell the user after an accept when answers started, changed or stopped following the
    image's edges (``engine.edges == "auto"``; :mod:`napari_oaims.core.edges`), else None.
    ``before``: ``session.edge_evidence.choice()`` before the accept."""
    now = session.edge_evidence.choice()
    if session.engine.edges != "auto" or now == before:
        return None
    return SWITCH_NOTES[now]


def model_state(engine: Any, latency_ms: float | None, timed: str = "latency", adaptation: str | None = None) -> list:
    """The status line's parts about the model: the last prompt's time (named ``timed``), the
    adaptation (``adaptation`` when there is no engine yet), the updates so far and, when the
    guard undid any, :func:`rollback_text`."""
    if engine is not None:
        adaptation = engine.adaptation
    parts = [
        f"{timed} {latency_ms:.0f} ms" if latency_ms is not None else f"{timed} –",
        f"adaptation {adaptation or '–'}",
        f"updates {engine.updates if engine else 0}",
    ]
    rolled = rollback_text(engine)
    return parts + ([rolled] if rolled else [])


def rollback_text(engine: Any) -> str | None:
    """``rolled back N (why the last one was)``, or None when the guard has undone nothing."""
    if engine is None or not getattr(engine, "rollbacks", 0):
        return None
    why = (engine.last_rollback or "").split(" (")[0].replace("answer check: ", "")
    return f"rolled back {engine.rollbacks} (last: {why})"


def stack_axis(shape: Sequence[int], plane_axes: Sequence[int], last_moved: int | None) -> int | None:
    """The image axis to propagate along: the one axis that is neither a plane axis nor a single
    slice; with more of them (t, z, y, x) the one whose slider was moved last, else the innermost.
    None: the image is no stack."""
    choices = [a for a in range(len(shape)) if a not in plane_axes and shape[a] > 1]
    if not choices:
        return None
    return last_moved if last_moved in choices else choices[-1]
