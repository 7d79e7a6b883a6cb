"""The interaction log: one dict per event, in order, with one schema for every consumer.

========== ==================================================================================
key        meaning
========== ==================================================================================
seq        0, 1, 2, ... within the session
time       Unix time (s) when the event was recorded
kind       one of :data:`KINDS`: ``session`` (first event), the prompts ``click``, ``box``,
           ``scribble``, ``prior``; ``predict`` (the answer to a prompt), ``undo``, ``redo``,
           ``clear``, ``accept``, ``update`` (a weights update by the adapter), ``withdraw`` /
           ``reinstate`` (an accepted object taken back / brought back, e.g. by the widget's
           undo / redo; ``extra.diameter`` is its size for object size "auto"), ``propagate``
           (the object carried through a stack: ``extra`` holds method, settings, anchors, slices
           changed, time and the weights hash)
object     id of the object the event belongs to (1, 2, ... in accept order)
plane      coordinates on the non-plane axes (``[]`` for a 2D image)
coords     click ``[y, x]``; box ``[y0, x0, y1, x1]``; scribble ``[[y, x], ...]`` (plane
           coordinates); ``None`` otherwise
label      1 positive / 0 negative prompt; ``None`` for other kinds
latency_ms time from the call to the result (``predict``, ``accept``, ``update``)
weights    short hash of the weights that made the prediction (or after an update)
extra      kind-specific details (window, area, loss, ...; an ``accept`` holds ``area``,
           ``planes``, ``adaptation``, ``class_id``, ``class_name``, ``diameter`` and
           ``overwrite``, whether it may take accepted objects' pixels (absent: it did); prompts and
           accepts hold ``adaptation``, the adapter's name; ``adapter``, its full settings, is in
           the ``session`` event and in the first prompt or accept after the adapter changed;
           an ``update`` holds ``method``, ``loss``, ``rolled_back``, ``reason``)
========== ==================================================================================
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Event kinds, with the code each has in a saved log (new kinds get the next free code).
KIND_CODES = {
    "session": 0,
    "click": 1,
    "box": 2,
    "scribble": 3,
    "prior": 4,
    "predict": 5,
    "undo": 6,
    "redo": 7,
    "clear": 8,
    "accept": 9,
    "update": 10,
    "withdraw": 11,
    "reinstate": 12,
    "propagate": 13,
}
KINDS = tuple(KIND_CODES)
PROMPT_KINDS = ("click", "box", "scribble", "prior")


def make_event(
    seq: int,
    kind: str,
    object_id: int,
    weights: str,
    plane=None,
    coords=None,
    label=None,
    latency_ms: float | None = None,
    extra: dict | None = None,
) -> dict[str, Any]:
    """A new event dict with every key of the schema."""
    if kind not in KIND_CODES:
        raise ValueError(f"unknown event kind {kind!r}; the log knows {sorted(KIND_CODES)}")
    return {
        "seq": int(seq),
        "time": time.time(),
        "kind": kind,
        "object": int(object_id),
        "plane": list(plane) if plane is not None else [],
        "coords": coords,
        "label": label,
        "latency_ms": None if latency_ms is None else round(float(latency_ms), 3),
        "weights": weights,
        "extra": extra or {},
    }


def json_default(obj: Any) -> Any:
    """``json.dumps`` default for the NumPy scalars, arrays, tuples and paths found in events."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store a {type(obj).__name__} in the session log")


def dumps(obj: Any) -> str:
    """Compact JSON of an event (or any part of one)."""
    return json.dumps(obj, default=json_default, separators=(",", ":"))


def normalise_event(event: dict[str, Any]) -> dict[str, Any]:
    """The event as it reads back from disk (plain Python types)."""
    return json.loads(dumps(event))
