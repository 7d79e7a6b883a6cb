"""Resuming a saved session, and what a log implies (object sizes, prompt layers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_oaims.core import geometry

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.engine import Engine
    from napari_oaims.session import Session
    from napari_oaims.store.session_store import SessionStore


@dataclass
class Prompts:
    """Prompt layers: points (N, ndim) with a positive flag each, shapes (vertices per shape) with types."""

    points: np.ndarray
    positive: np.ndarray
    shapes: list[np.ndarray]
    shape_types: list[str]


@dataclass
class ResumeState:
    """What :meth:`SessionStore.resume` restores."""

    store: "SessionStore"
    engine: "Engine"
    session: "Session"
    image: Any
    labels: Any
    prompts: Prompts
    objects: list[dict[str, Any]]
    events: list[dict[str, Any]] = field(repr=False)
    #: Hash of the weights the resumed engine started from.
    weights: str = ""
    #: Weights updates recorded in the log after the saved weights (lost in a crash; 0 normally).
    lost_updates: int = 0

    @property
    def weights_note(self) -> str:
        """One line on which weights were loaded (for a status line or a log)."""
        if self.lost_updates:
            return (f"resumed with weights {self.weights}, the last ones saved; the {self.lost_updates} update(s) "
                    "logged after them were lost (the session was not closed)")
        return f"resumed with weights {self.weights}, as the log left them"


class ResumeMixin:
    """:meth:`resume` of a :class:`~napari_oaims.store.SessionStore`."""

    def resume(self, engine: "Engine | None" = None, device="auto") -> ResumeState:
        """Continue the saved session: restores the adapted weights (into ``engine`` if given, which
        must have the same base weights), and returns a new autosaved Session whose log continues
        the stored one (``seq`` and object ids go on), with the image, labels and prompt layers."""
        self._writable()
        from napari_oaims.model import load_weights

        events = self.events()
        if [e["seq"] for e in events] != list(range(len(events))):
            raise ValueError(f"session {self.path} is damaged: its log has gaps in seq")
        if engine is None:
            engine = self.load_engine(device)
        elif self.model_path() is not None:
            base = self.meta.get("base_hash")
            if base is not None and engine.base_hash != base:
                raise ValueError(f"session {self.path} was adapted from base weights {base}; the given engine's base "
                                 f"weights are {engine.base_hash}")
            model, config = load_weights(self.model_path())
            with engine.lock:
                engine.model.load_state_dict(model.state_dict())
                engine.weights_changed()
                engine.updates = int(config.get("adapted_from", {}).get("updates", 0))
        image = self.image()
        session = engine.session(image, **self.session_params())
        objects = self.objects()
        accepted = [e["object"] for e in events if e["kind"] == "accept"] + [o["id"] for o in objects]
        session.object_id = max(accepted, default=0) + 1
        session.accepted_diameters = accepted_diameters(events, objects)
        start = session.events[-1]
        start.update(seq=len(events), object=session.object_id)
        start["extra"]["resumed"] = True
        # What object size "auto" starts from here, so that a replay starts from it too.
        start["extra"]["accepted_diameters"] = {str(k): v for k, v in session.accepted_diameters.items()}
        session.events = list(events) + [start]
        self.attach(session)
        return ResumeState(self, engine, session, image, self.labels(), self.prompts(), objects, session.events,
                           weights=engine.weights_hash, lost_updates=lost_updates(events, engine.weights_hash))


def accepted_diameters(events: list[dict[str, Any]], objects: list[dict[str, Any]]) -> dict[int, float]:
    """Diameters of the objects still in the labels, for ``first_window="auto"`` in a resumed
    session: the one logged at accept, or, for objects without one (older logs, labels written
    directly), the equivalent diameter of their mean area per plane."""
    logged = {}
    for e in events:
        if e["kind"] == "accept":
            value = (e.get("extra") or {}).get("diameter")
            if isinstance(value, (int, float)) and np.isfinite(value) and value > 0:  # a damaged value: use the area
                logged[int(e["object"])] = float(value)
    out = {}
    for o in objects:
        if o["area"] > 0:
            area = o["area"] / max(len(o["planes"]), 1)
            out[int(o["id"])] = logged.get(int(o["id"]), round(float(2.0 * np.sqrt(area / np.pi)), 2))
    return out


def prompts_from_events(events: list[dict[str, Any]], plane_axes, ndim: int) -> Prompts:
    """Prompt layers implied by a log: the prompts in force at each accept (undo/redo/clear applied)
    plus those of the object in progress. Priors are masks, not drawn shapes, and are left out."""
    kept: list[dict] = []
    cur: list[dict] = []
    undo: list[tuple[list, list]] = []
    redo: list[tuple[list, list]] = []
    touched = False
    for e in events:
        k = e["kind"]
        if k in ("click", "box", "scribble", "prior"):
            undo.append((cur, cur + [e]))
            redo.clear()
            cur, touched = cur + [e], True
        elif k == "undo" and undo:
            before, after = undo.pop()
            redo.append((before, after))
            cur = before
        elif k == "redo" and redo:
            before, after = redo.pop()
            undo.append((before, after))
            cur = after
        elif k == "clear":
            if touched:
                undo.append((cur, []))
                redo.clear()
            cur = []
        elif k in ("accept", "session"):
            if k == "accept":
                kept.extend(cur)
            cur, undo, redo, touched = [], [], [], False
    kept.extend(cur)
    pts, pos, shapes, types = [], [], [], []
    for e in kept:
        plane, c = e["plane"], e["coords"]
        if e["kind"] == "click":
            pts.append(_full(plane_axes, ndim, plane, c))
            pos.append(bool(e["label"]))
        elif e["kind"] == "box":
            y0, x0, y1, x1 = c
            shapes.append(np.array([_full(plane_axes, ndim, plane, yx)
                                    for yx in ((y0, x0), (y0, x1), (y1, x1), (y1, x0))]))
            types.append("rectangle")
        elif e["kind"] == "scribble":
            shapes.append(np.array([_full(plane_axes, ndim, plane, yx) for yx in c]))
            types.append("path")
    return Prompts(np.array(pts, np.float64).reshape(-1, ndim), np.array(pos, bool), shapes, types)


def _full(plane_axes, ndim: int, plane, yx) -> list[float]:
    return [float(v) for v in geometry.full_coords(plane_axes, ndim, plane, yx)]


def lost_updates(events: list[dict[str, Any]], weights: str) -> int:
    """Update events logged after the last event made with ``weights`` (none when the weights
    are the log's last; all when no event has them)."""
    last = max((i for i, e in enumerate(events) if e.get("weights") == weights), default=-1)
    return sum(1 for e in events[last + 1:] if e["kind"] == "update" and not (e.get("extra") or {}).get("rolled_back"))
