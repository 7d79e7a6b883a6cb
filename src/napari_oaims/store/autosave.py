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

import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from napari_oaims.core.events import normalise_event
from napari_oaims.core.results import Accepted
from napari_oaims.store.layout import FORMAT_VERSION, FolderAttrs, written_with

if TYPE_CHECKING:  # pragma: no cover
    import zarr

    from napari_oaims.engine import Engine
    from napari_oaims.session import Session
    from napari_oaims.store.journal import Journal
    from napari_oaims.store.labels import LabelImage

#: While updates go on, adapted weights are written at most this often (seconds).
MODEL_SAVE_INTERVAL_S = 5.0


class Priors:
    """The masks saved beside the log, by event seq: the prior masks given with ``prior`` events
    (``priors/<seq>``) and the voxels a ``propagate`` event's barrier kept out (``barriers/<seq>``).

    Parameters
    ----------
    root : zarr.Group
        The session folder's root group; only its ``priors`` and ``barriers`` groups are read or
        written.
    """

    def __init__(self, root: "zarr.Group"):
        self._root = root
        self._saved = {int(k) for k in root["priors"].array_keys()} if "priors" in root else set()
        self._barriers = {int(k) for k in root["barriers"].array_keys()} if "barriers" in root else set()

    def barrier(self, seq: int):
        """The voxels the barrier of ``propagate`` event ``seq`` kept out (a bool Zarr array of the
        image's spatial shape, read lazily), or None if none were saved."""
        if seq not in self._barriers:
            return None
        return self._root[f"barriers/{seq}"]

    def save_barriers(self, session: "Session") -> None:
        """Write the session's barriers (``Session.barrier_masks``) not written yet."""
        from napari_oaims.propagate.anchors import write_blocked

        for seq, blocked in list(session.barrier_masks.items()):
            if seq in self._barriers:
                continue
            if "barriers" not in self._root:
                self._root.create_group("barriers")
            shape = tuple(session.spatial_shape)
            axes = session.source.plane_axes
            chunks = tuple(min(n, 512) if a in axes else 1 for a, n in enumerate(shape))
            out = self._root["barriers"].create_array(
                str(seq), shape=shape, dtype=bool, chunks=chunks, fill_value=False, overwrite=True
            )
            write_blocked(session.source, blocked, out)
            self._barriers.add(seq)

    def mask(self, seq: int) -> np.ndarray | None:
        """The prior mask given with the ``prior`` event ``seq`` (None if it was not saved)."""
        if seq not in self._saved:
            return None
        return np.asarray(self._root[f"priors/{seq}"][...], bool)

    def save(self, masks: dict[int, np.ndarray]) -> None:
        """Write the masks (by event seq) not written yet."""
        for seq, mask in list(masks.items()):
            if seq not in self._saved:
                m = np.asarray(mask, bool)
                self._root["priors"].create_array(
                    str(seq), data=m, chunks=tuple(min(s, 512) for s in m.shape), overwrite=True
                )
                self._saved.add(seq)


class ModelFiles:
    """The saved weights (``model/``): the adapted weights and snapshots a session started from.

    Parameters
    ----------
    folder : Path
        The session folder; only its ``model`` folder is read or written.
    attrs : FolderAttrs
        The session's attributes: ``base_hash`` is read, and recorded at the first save if unset.
    lock : threading.RLock
        The store's lock, held while weights are written.
    """

    def __init__(self, folder: Path, attrs: FolderAttrs, lock):
        self._folder = folder
        self._attrs = attrs
        self._lock = lock
        self._hash: str | None = None  # weights hash of model/current (None: not saved)
        current = folder / "model" / "current.json"
        if current.is_file():
            try:
                self._hash = json.loads(current.read_text()).get("weights_hash")
            except ValueError as err:
                raise ValueError(f"session {folder} is damaged: {current} is not valid JSON") from err

    def save(self, engine: "Engine", name: str = "current") -> Path:
        """Save the engine's (adapted) weights with their metadata in ``model/NAME``."""
        with self._lock:
            if self._attrs.meta.get("base_hash") is None:
                self._attrs.update(base_hash=engine.base_hash)
            target = self._folder / "model" / name
            exists = target.with_suffix(".json").is_file()
            with engine.lock:  # the hash recorded is the hash of the weights written (updates may run in a worker)
                current = engine.weights_hash
                if name == "current" and (self._hash == current if exists else current == engine.base_hash):
                    return target.with_suffix(".safetensors")  # nothing new to save
                out = engine.save(target)
            if name == "current":
                self._hash = current
            return out

    def path(self, weights: str | None = None) -> Path | None:
        """The saved current weights (or the snapshot of weights hash ``weights``), None if absent."""
        p = self._folder / "model" / f"{weights or 'current'}.safetensors"
        return p if p.is_file() and p.with_suffix(".json").is_file() else None

    def load_engine(self, device="auto") -> "Engine":
        """An engine with the saved adapted weights (the shipped weights if none were saved)."""
        from napari_oaims.engine import Engine

        p = self.path()
        if p is not None:
            try:
                return Engine.load(p, device=device)
            except (FileNotFoundError, ValueError) as err:
                raise ValueError(
                    f"session {self._folder} is damaged: its saved weights cannot be loaded ({err})"
                ) from err
        base = self._attrs.meta.get("base_hash")
        try:
            return Engine.for_base(base, device=device)
        except ValueError as err:
            raise ValueError(
                f"session {self._folder} was made with base weights {base} and saved no adapted weights: {err}"
            ) from err


class Autosave:
    """Following a live session: each of its events is saved as it happens.

    Parameters
    ----------
    folder : Path
        The session folder (named in messages).
    journal : Journal
        The log: where saving continues (``next_seq``) and the objects-table rows.
    labels : LabelImage
        Where accepted objects are painted.
    priors : Priors
        Where prior masks and propagation barriers go.
    attrs : FolderAttrs
        The session's attributes: base weights, and the format version (an older folder is marked
        as today's once autosave writes into it).
    lock : threading.RLock
        The store's lock, held while an event is saved.
    model_path : callable
        ``model_path(weights)``: the saved snapshot of weights hash ``weights``, or None.
    append_event, save_model : callable
        The store's ``append_event(event)`` and ``save_model(engine, name="current")``: every event
        and every weights file autosave writes goes through them, so that a wrapper around them (a
        benchmark timing appends) sees it.
    """

    def __init__(
        self,
        folder: Path,
        journal: "Journal",
        labels: "LabelImage",
        priors: Priors,
        attrs: FolderAttrs,
        lock,
        model_path: Callable[[str | None], Path | None],
        append_event: Callable[[dict], None],
        save_model: Callable[..., Path],
    ):
        self._folder = folder
        self._journal = journal
        self._labels = labels
        self._priors = priors
        self._attrs = attrs
        self._lock = lock
        self._model_path = model_path
        self._append_event = append_event
        self._save_model = save_model
        #: While updates go on, adapted weights are written at most this often (seconds).
        self.interval_s = MODEL_SAVE_INTERVAL_S
        self.session: "Session | None" = None  #: the session followed (None: none)
        self.error: BaseException | None = None  #: the last autosave failure (None when all is saved)
        #: called with the error when autosave starts failing, and with None when it works again
        self.on_error: Callable[[BaseException | None], None] | None = None
        self._unpainted: dict[int, Accepted] = {}  # accepted objects (by event seq) not yet in the labels
        self._model_pending: set[int] = set()  # objects whose weights updates are not in model/current yet
        self._model_saved_at = 0.0

    def attach(self, session: "Session") -> None:
        """Start following ``session`` (checked against the saved log and base weights); the caller
        subscribes to its events and catches up."""
        next_seq = self._journal.next_seq
        if next_seq > 0:
            known = [e for e in session.events if e["seq"] == next_seq - 1]
            last = self._journal.events()[-1]
            if not known or normalise_event(known[0])["time"] != last["time"] or known[0]["kind"] != last["kind"]:
                raise ValueError(
                    f"this session's log does not continue the log stored in {self._folder}; use "
                    "SessionStore.open(path).resume() to continue a saved session"
                )
        base = self._attrs.meta.get("base_hash")
        if base is not None and session.engine.base_hash != base:
            raise ValueError(
                f"session {self._folder} was recorded with base weights {base}; this engine's base "
                f"weights are {session.engine.base_hash}"
            )
        start = next((e for e in session.events if e["seq"] >= next_seq and e["kind"] == "session"), None)
        if (
            start is not None
            and start["weights"] != session.engine.base_hash
            and self._model_path(start["weights"]) is None
            and start["weights"] == session.engine.weights_hash
        ):
            self._save_model(session.engine, name=start["weights"])  # the snapshot replay restarts from
        if self._attrs.meta.get("format_version") != FORMAT_VERSION:  # an older folder: written as today's from now on
            self._attrs.update(upgraded_from=written_with(self._attrs.meta), format_version=FORMAT_VERSION)
        self.session = session
        self._model_saved_at = time.monotonic()

    def detach(self) -> None:
        """Save what a failed autosave left unsaved and the weights of pending updates, then stop
        following the session."""
        session = self.session
        if session is None:
            return
        self.autosave(session, None)  # events left unsaved by a failed autosave
        self.session = None
        if self._model_pending:
            self._save_model(session.engine)
            self._model_pending.clear()

    def autosave(self, session: "Session", event: dict | None, result=None) -> None:
        """Save ``event`` and any earlier unsaved ones; see :meth:`SessionStore.autosave
        <napari_oaims.store.SessionStore.autosave>`."""
        with self._lock:
            if event is not None and event.get("kind") == "accept" and isinstance(result, Accepted):
                self._unpainted[int(event["seq"])] = result  # painted when its event is saved
            try:
                self.catch_up(session)
                if self.error is not None and self.on_error is not None:
                    self.on_error(None)
                self.error = None
            except (OSError, ValueError) as err:
                if self.error is None:
                    if self.on_error is not None:
                        self.on_error(err)
                    else:
                        warnings.warn(
                            f"autosave to {self._folder} failed ({err}); the session goes on in memory and "
                            "saving is retried at the next event",
                            RuntimeWarning,
                            stacklevel=4,
                        )
                self.error = err

    def catch_up(self, session: "Session") -> None:
        """Save the session's events not saved yet, in order, painting every accepted object among
        them into the labels (also those accepted while saving failed)."""
        self._priors.save(session.prior_masks)  # a prior's mask is in the session from the event after its own
        self._priors.save_barriers(session)
        for ev in session.events[self._journal.next_seq :]:
            if ev["seq"] < self._journal.next_seq:
                continue
            accepted = self._unpainted.get(ev["seq"]) if ev["kind"] == "accept" else None
            if accepted is not None:
                self._commit_accepted(accepted, ev)
            self._append_event(ev)
            self._save_model_if_due(session.engine, ev)

    def _save_model_if_due(self, engine: "Engine", event: dict) -> None:
        """Write adapted weights at an accept, at the first prompt after the updates of an accepted
        object (Post-Interaction), and at most every :attr:`interval_s` seconds while the current
        object's updates go on."""
        if event["kind"] == "update":
            self._model_pending.add(event["object"])
            if time.monotonic() - self._model_saved_at < self.interval_s:
                return
        elif not (event["kind"] == "accept" or self._model_pending - {event["object"]}):
            return
        self._save_model(engine)
        self._model_pending.clear()
        self._model_saved_at = time.monotonic()

    def _commit_accepted(self, accepted: Accepted, event: dict) -> None:
        """Paint an accepted object into the labels and journal its objects-table row (once: a
        retry after a failure paints again only if the row was not journaled)."""
        extra = event.get("extra") or {}
        self._labels.commit_accepted(accepted, int(extra.get("class_id", 1)), str(extra.get("class_name", "object")))
        self._unpainted.pop(int(event["seq"]), None)
        self._journal.compact_if_due()
