"""Resuming a saved session: weights, object ids, object sizes and the log go on.

Adapted weights are written at accept and at most every few seconds while updates go on (format
version 2), so after ``kill -9`` the saved weights may be older than the log's last ones:
:class:`ResumeState` says which weights were loaded and how many logged updates they lack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_oaims.core import geometry
from napari_oaims.store.prompts import Prompts

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.engine import Engine
    from napari_oaims.session import Session
    from napari_oaims.store.session_store import SessionStore


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
    #: Whether they are the weights the log's last event names (False after a crash lost updates).
    weights_match: bool = True
    #: Hash of the weights the log's last event names.
    logged_weights: str = ""
    #: Weights updates recorded in the log after the saved weights (lost in a crash; 0 normally).
    lost_updates: int = 0

    @property
    def weights_note(self) -> str:
        """One line on which weights were loaded (for a status line or a log)."""
        if self.weights_match:
            return f"resumed with weights {self.weights}, as the log left them"
        if self.lost_updates:
            return (
                f"resumed with weights {self.weights}, the last ones saved; the {self.lost_updates} update(s) "
                f"logged after them were lost (the session was not closed; the log ends with weights "
                f"{self.logged_weights})"
            )
        return (
            f"resumed with the saved weights {self.weights}; the log ends with weights {self.logged_weights} "
            "(the saved weights were replaced outside the log)"
        )


def resume(store: "SessionStore", engine: "Engine | None" = None, device="auto") -> ResumeState:
    """Continue the session saved in ``store`` (open for writing), through its public calls only;
    see :meth:`SessionStore.resume <napari_oaims.store.SessionStore.resume>`."""
    from napari_oaims.model import load_weights

    events = store.events()
    if [e["seq"] for e in events] != list(range(len(events))):
        raise ValueError(f"session {store.path} is damaged: its log has gaps in seq")
    if engine is None:
        engine = store.load_engine(device)
        if store.model_path() is None:  # no adapted weights yet: the adapter the log last used
            logged = [e["extra"]["adapter"] for e in events if isinstance((e.get("extra") or {}).get("adapter"), dict)]
            if logged:
                from napari_oaims.adapt import adapter_from_settings

                engine.adaptation = adapter_from_settings(logged[-1])
    elif store.model_path() is not None:
        base = store.meta.get("base_hash")
        if base is not None and engine.base_hash != base:
            raise ValueError(
                f"session {store.path} was adapted from base weights {base}; the given engine's base "
                f"weights are {engine.base_hash}"
            )
        try:
            model, config = load_weights(store.model_path())
        except (FileNotFoundError, ValueError) as err:
            raise ValueError(f"session {store.path} is damaged: its saved weights cannot be loaded ({err})") from err
        with engine.lock:
            engine.model.load_state_dict(model.state_dict())
            engine.weights_changed()
            engine.updates = int(config.get("adapted_from", {}).get("updates", 0))
    image = store.image()
    session = engine.session(image, **store.session_params())
    objects = store.objects()
    accepted = [e["object"] for e in events if e["kind"] == "accept"] + [o["id"] for o in objects]
    session.object_id = max(accepted, default=0) + 1
    session.accepted_diameters = accepted_diameters(events, objects)
    session.edge_evidence.gains = edge_gains(events, objects)
    session.edge_evidence.snap_gains = edge_gains(events, objects, "snap_gain")
    start = session.events[-1]
    start.update(seq=len(events), object=session.object_id)
    start["extra"]["resumed"] = True
    # What object size "auto" starts from here, so that a replay starts from it too.
    start["extra"]["accepted_diameters"] = {str(k): v for k, v in session.accepted_diameters.items()}
    start["extra"]["edge_gains"] = {str(k): v for k, v in session.edge_evidence.gains.items()}
    start["extra"]["snap_gains"] = {str(k): v for k, v in session.edge_evidence.snap_gains.items()}
    session.events = list(events) + [start]
    store.attach(session)
    logged = next((e["weights"] for e in reversed(events) if e.get("weights")), engine.weights_hash)
    return ResumeState(
        store,
        engine,
        session,
        image,
        store.labels(),
        store.prompts(),
        objects,
        session.events,
        weights=engine.weights_hash,
        weights_match=engine.weights_hash == logged,
        logged_weights=logged,
        lost_updates=lost_updates(events, engine.weights_hash),
    )


def edge_gains(
    events: list[dict[str, Any]], objects: list[dict[str, Any]], name: str = "edge_gain"
) -> dict[int, float]:
    """The gains ``name`` (``edge_gain``, ``snap_gain``) logged at accept
    (:mod:`napari_oaims.core.edges`) of the objects still in the labels, in accept order, for a
    resumed session."""
    ids = {int(o["id"]) for o in objects if o["area"] > 0}
    out = {}
    for e in events:
        value = (e.get("extra") or {}).get(name) if e["kind"] == "accept" else None
        if int(e["object"]) in ids and isinstance(value, (int, float)) and np.isfinite(value):
            out[int(e["object"])] = float(value)
    return out


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
            out[int(o["id"])] = logged.get(int(o["id"]), round(geometry.diameter(area), 2))
    return out


def lost_updates(events: list[dict[str, Any]], weights: str) -> int:
    """Update events logged after the last event made with ``weights`` (none when the weights
    are the log's last; all when no event has them)."""
    last = max((i for i, e in enumerate(events) if e.get("weights") == weights), default=-1)
    return sum(1 for e in events[last + 1 :] if e["kind"] == "update" and not (e.get("extra") or {}).get("rolled_back"))
