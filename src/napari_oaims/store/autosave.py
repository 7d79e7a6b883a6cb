"""Autosave: a store subscribes to a session's events and writes each as it happens.

Every event goes to the journal; an accepted object is painted into the labels at once (a region
write) and its objects-table row is journaled as ``{"object_row": {...}}`` (with the new absolute
areas of the objects it painted over, so applying a row twice is harmless). Adapted weights are
written to ``model/current.*`` when an object is accepted, at the first event of the next object
after an accepted object's (Post-Interaction) updates, at most every :data:`MODEL_SAVE_INTERVAL_S`
seconds while updates go on, and on close; not after every update (format version 2; version 1
wrote them after every update). After ``kill -9`` only the updates since the last write are lost,
and :meth:`~napari_oaims.store.SessionStore.resume` says which weights it loaded.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from napari_oaims.core.events import normalise_event
from napari_oaims.core.labels import paint_planes
from napari_oaims.core.results import Accepted
from napari_oaims.store.layout import ATTRS_KEY, FORMAT_VERSION, written_with

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.engine import Engine
    from napari_oaims.session import Session

#: While updates go on, adapted weights are written at most this often (seconds).
MODEL_SAVE_INTERVAL_S = 5.0


class AutosaveMixin:
    """Autosave, prior masks and model files of a :class:`~napari_oaims.store.SessionStore`."""

    #: While updates go on, adapted weights are written at most this often (seconds).
    model_save_interval_s: float = MODEL_SAVE_INTERVAL_S

    def prior_mask(self, seq: int) -> np.ndarray | None:
        """The prior mask given with the ``prior`` event ``seq`` (None if it was not saved)."""
        if seq not in self._saved_priors:
            return None
        return np.asarray(self.root[f"priors/{seq}"][...], bool)

    def _save_priors(self, session: "Session") -> None:
        for seq, mask in list(session.prior_masks.items()):
            if seq not in self._saved_priors:
                m = np.asarray(mask, bool)
                self.root["priors"].create_array(
                    str(seq), data=m, chunks=tuple(min(s, 512) for s in m.shape), overwrite=True
                )
                self._saved_priors.add(seq)

    # -- model -----------------------------------------------------------------------------------
    def save_model(self, engine: "Engine", name: str = "current") -> Path:
        """Save the engine's (adapted) weights with their metadata in ``model/NAME``."""
        self._writable()
        with self._lock:
            if self.meta.get("base_hash") is None:
                self.meta["base_hash"] = engine.base_hash
                self.root.attrs[ATTRS_KEY] = self.meta
            target = self.path / "model" / name
            exists = target.with_suffix(".json").is_file()
            with engine.lock:  # the hash recorded is the hash of the weights written (updates may run in a worker)
                current = engine.weights_hash
                if name == "current" and (self._model_hash == current if exists else current == engine.base_hash):
                    return target.with_suffix(".safetensors")  # nothing new to save
                out = engine.save(target)
            if name == "current":
                self._model_hash = current
            return out

    def model_path(self, weights: str | None = None) -> Path | None:
        """The saved current weights (or the snapshot of weights hash ``weights``), None if absent."""
        p = self.path / "model" / f"{weights or 'current'}.safetensors"
        return p if p.is_file() and p.with_suffix(".json").is_file() else None

    def load_engine(self, device="auto") -> "Engine":
        """An engine with the saved adapted weights (the shipped weights if none were saved)."""
        from napari_oaims.engine import Engine

        p = self.model_path()
        if p is not None:
            try:
                return Engine.load(p, device=device)
            except (FileNotFoundError, ValueError) as err:
                raise ValueError(f"session {self.path} is damaged: its saved weights cannot be loaded ({err})") from err
        base = self.meta.get("base_hash")
        try:
            return Engine.for_base(base, device=device)
        except ValueError as err:
            raise ValueError(
                f"session {self.path} was made with base weights {base} and saved no adapted weights: {err}"
            ) from err

    # -- autosave and resume ---------------------------------------------------------------------
    def attach(self, session: "Session") -> None:
        """Autosave ``session``: every event it records from now on (and those not yet saved) is
        written as it happens, accepted objects go into the labels, weights updates into ``model/``."""
        self._writable()
        with self._lock:
            if self._next_seq > 0:
                known = [e for e in session.events if e["seq"] == self._next_seq - 1]
                last = self.events()[-1]
                if not known or normalise_event(known[0])["time"] != last["time"] or known[0]["kind"] != last["kind"]:
                    raise ValueError(
                        f"this session's log does not continue the log stored in {self.path}; use "
                        "SessionStore.open(path).resume() to continue a saved session"
                    )
            base = self.meta.get("base_hash")
            if base is not None and session.engine.base_hash != base:
                raise ValueError(
                    f"session {self.path} was recorded with base weights {base}; this engine's base "
                    f"weights are {session.engine.base_hash}"
                )
            start = next((e for e in session.events if e["seq"] >= self._next_seq and e["kind"] == "session"), None)
            if (
                start is not None
                and start["weights"] != session.engine.base_hash
                and self.model_path(start["weights"]) is None
                and start["weights"] == session.engine.weights_hash
            ):
                self.save_model(session.engine, name=start["weights"])  # the snapshot replay restarts from
            if self.meta.get("format_version") != FORMAT_VERSION:  # an older folder: written as today's from now on
                self.meta["upgraded_from"] = written_with(self.meta)
                self.meta["format_version"] = FORMAT_VERSION
                self.root.attrs[ATTRS_KEY] = self.meta
            self._session = session
            self._model_saved_at = time.monotonic()
            session.subscribe(self._listener(session))
            self._catch_up(session)

    def _listener(self, session: "Session"):
        def listener(event: dict, result=None) -> None:
            if self._session is session:
                self.autosave(session, event, result)

        return listener

    def autosave(self, session: "Session", event: dict, result=None) -> None:
        """What :meth:`attach` does for each event. Errors are not raised (the session must go on):
        they are kept in :attr:`error` and reported once (to :attr:`on_error` if set, else as a
        RuntimeWarning), and saving is retried at the next event; ``on_error(None)`` is called
        when saving works again."""
        with self._lock:
            try:
                self._catch_up(session, event, result)
                if self.error is not None and self.on_error is not None:
                    self.on_error(None)
                self.error = None
            except (OSError, ValueError) as err:
                if self.error is None:
                    if self.on_error is not None:
                        self.on_error(err)
                    else:
                        warnings.warn(
                            f"autosave to {self.path} failed ({err}); the session goes on in memory and "
                            "saving is retried at the next event",
                            RuntimeWarning,
                            stacklevel=3,
                        )
                self.error = err

    def _catch_up(self, session: "Session", event: dict | None = None, result=None) -> None:
        self._save_priors(session)  # a prior's mask is in the session from the event after its own
        for ev in session.events[self._next_seq :]:
            if ev["seq"] < self._next_seq:
                continue
            if ev["kind"] == "accept" and ev is event and isinstance(result, Accepted):
                self._commit_accepted(result, ev)
            self.append_event(ev)
            self._save_model_if_due(session.engine, ev)

    def _save_model_if_due(self, engine: "Engine", event: dict) -> None:
        """Write adapted weights at an accept, at the first prompt after the updates of an accepted
        object (Post-Interaction), and at most every :attr:`model_save_interval_s` seconds while
        the current object's updates go on."""
        if event["kind"] == "update":
            self._model_pending.add(event["object"])
            if time.monotonic() - self._model_saved_at < self.model_save_interval_s:
                return
        elif not (event["kind"] == "accept" or self._model_pending - {event["object"]}):
            return
        self.save_model(engine)
        self._model_pending.clear()
        self._model_saved_at = time.monotonic()

    def _commit_accepted(self, accepted: Accepted, event: dict) -> None:
        """Paint an accepted object into the labels and journal its objects-table row."""
        area, overwritten, _ = paint_planes(
            self._labels, accepted.plane_axes, accepted.planes, accepted.object_id, accepted.overwrite
        )
        extra = event.get("extra") or {}
        self._record_object(
            accepted.object_id,
            area,
            [list(k) for k in accepted.planes],
            overwritten,
            int(extra.get("class_id", 1)),
            str(extra.get("class_name", "object")),
        )
