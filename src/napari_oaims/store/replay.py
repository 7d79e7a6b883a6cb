"""Replay a saved session from the base weights and check that every mask comes out the same.

:func:`replay` re-runs the log of a ``*.oaims.zarr`` session (see :mod:`napari_oaims.store.layout`) on a
fresh engine with the shipped weights: every prompt is given again in order, with the adapter
whose settings the log recorded (``extra["adapter"]`` of the session event and of the first prompt
after a switch; older format version 1 logs may hold only its name, ``extra["adaptation"]``, and
replay with today's defaults for it), propagations through a stack are re-run with the call their
``propagate`` event recorded (``extra["call"]``; seeded, so the masks come out the same), exact
masks (``Session.set_mask``, a ``prior`` event with ``extra["exact"]``) are set again,
accepted objects are accepted again and their
weights updates run at the point of the log where they were recorded (deferred updates included).
A session that started from other weights (a resumed session, an engine adapted on earlier
images) restarts from the snapshot ``model/<hash>`` saved for it.

The replayed log is compared event by event with the recorded one (kind, object, plane, coords,
label, weights hash, the window and area of every prediction, and the call, anchors and changed
slices of every propagation), and the replayed label image (painted like the stored one, with
the overwrite rule each accept event recorded) is compared per object with the stored labels
(Dice, identical or not). On a CPU the replay is bit-identical.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_oaims.answer import RULES
from napari_oaims.core.edges import check_candidates
from napari_oaims.core.events import PROMPT_KINDS, normalise_event
from napari_oaims.core.geometry import bbox_nd
from napari_oaims.core.labels import paint
from napari_oaims.core.overlap import dice
from napari_oaims.propagate.settings import as_logged
from napari_oaims.store.layout import LEARNING_RULES_SINCE, written_with
from napari_oaims.store.session_store import SessionStore

_COMPARED = ("kind", "object", "plane", "coords", "label", "weights")
#: Details compared per event kind: a prediction's window and area, a propagation's call, anchors and slices.
_COMPARED_EXTRA = {"predict": ("window", "area"), "propagate": ("call", "anchors", "slices_changed")}
_MAX_MISMATCHES = 20


@dataclass
class ObjectResult:
    """One object: Dice between replayed and stored masks, and whether they are identical."""

    object: int
    dice: float
    identical: bool
    stored_area: int
    replayed_area: int
    status: str  # "ok", "differs", "not in log" (stored, but its accept event was in flight), "not stored"


@dataclass
class ReplayReport:
    """The outcome of :func:`replay`."""

    path: str
    device: str
    base_hash: str
    events: int
    prompts: int
    objects: list[ObjectResult] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def identical(self) -> bool:
        """No event differs and every object of the log is reproduced exactly."""
        return not self.mismatches and all(o.identical for o in self.objects if o.status != "not in log")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "identical": self.identical}

    def table(self) -> str:
        """A printable summary."""
        lines = [
            (
                f"replay of {self.path} on {self.device} (base weights {self.base_hash}): {self.events} events, "
                f"{self.prompts} prompts, {len(self.objects)} objects, {self.seconds:.1f} s"
            ),
            f"{'object':>6}  {'dice':>7}  {'identical':>9}  {'stored px':>9}  {'replayed px':>11}  status",
        ]
        lines += [
            f"{o.object:>6}  {o.dice:>7.4f}  {str(o.identical):>9}  {o.stored_area:>9}  {o.replayed_area:>11}  "
            f"{o.status}"
            for o in self.objects
        ]
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"mismatch: {m}" for m in self.mismatches]
        lines.append("IDENTICAL" if self.identical else "DIFFERS")
        return "\n".join(lines)


def _compare(recorded: list[dict], replayed: list[dict], report: ReplayReport) -> None:
    for rec, rep in zip(recorded, replayed):
        diffs = [k for k in _COMPARED if rec.get(k) != rep.get(k)]
        if rec["kind"] == rep["kind"] and rec["kind"] in _COMPARED_EXTRA:
            diffs += [f"extra.{k}" for k in _COMPARED_EXTRA[rec["kind"]] if rec["extra"].get(k) != rep["extra"].get(k)]
        if diffs and len(report.mismatches) < _MAX_MISMATCHES:
            report.mismatches.append(
                f"event seq {rec['seq']} ({rec['kind']}): {', '.join(diffs)} differ (recorded "
                f"{ {k: rec.get(k) for k in _COMPARED} }, replayed "
                f"{ {k: rep.get(k) for k in _COMPARED} })"
            )
    if len(replayed) < len(recorded):
        report.mismatches.append(f"replay produced {len(replayed)} events where the log has {len(recorded)}")
    elif len(replayed) > len(recorded):
        report.notes.append(
            f"the log ends {len(replayed) - len(recorded)} event(s) early (the last action was in "
            "flight when the session stopped)"
        )


def _follow_adapter(engine, event: dict, switched: bool = False) -> None:
    """Give ``engine`` the adapter the log recorded. A prompt's settings mean the user switched
    adapters there (``switched``: a fresh one, as then); a session's are kept when the engine's
    adapter has the same settings (rebuilding it would drop its optimiser moments and replay buffer)."""
    from napari_oaims.adapt import adapter_from_settings

    settings = event["extra"].get("adapter")
    if settings is not None and (switched or settings != engine.adapter.settings()):
        try:
            engine.adaptation = adapter_from_settings(settings)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"event seq {event['seq']} ({event['kind']}) holds adapter settings that cannot be used: {err}"
            ) from None


def replay(
    path: str | Path, device: str = "cpu", image_path: str | Path | None = None, weights: str | Path | None = None
) -> ReplayReport:
    """Re-run the session at ``path`` from its base weights (the packaged ones with the session's
    base hash, or the ``.safetensors`` file ``weights``, whose hash must be it); see the module docstring.
    ``image_path`` is the new location of a referenced image that moved."""
    from napari_oaims.engine import Engine

    t0 = time.perf_counter()
    store = SessionStore.open(path, image_path=image_path, read_only=True)
    events = store.events()
    base = store.meta.get("base_hash")
    if weights is None:
        try:
            engine = Engine.for_base(base, device=device)
        except ValueError as err:
            raise ValueError(f"session {store.path} was recorded with base weights {base}: {err}") from err
    else:
        engine = Engine.pretrained(device=device, weights=weights)
    if base is not None and base != engine.base_hash:
        raise ValueError(
            f"session {store.path} was recorded with base weights {base}, but {weights} holds "
            f"{engine.base_hash}: replay needs the same base weights"
        )
    report = ReplayReport(
        str(store.path), device, engine.base_hash, len(events), sum(e["kind"] in PROMPT_KINDS for e in events)
    )
    if written_with(store.meta) < LEARNING_RULES_SINCE and any(e["kind"] == "update" for e in events):
        report.notes.append(
            f"recorded with format version {written_with(store.meta)}, before the learning rules of version "
            f"{LEARNING_RULES_SINCE} (the answer-checking guard, no learning from uncorrected accepts): objects "
            "after the first update may differ"
        )
    image = store.image()
    params = store.session_params()
    state = _State(store, np.zeros(tuple(store.meta["spatial_shape"]), np.uint32))
    sessions = []
    s = None
    for e in events:
        kind = e["kind"]
        if kind == "session":
            if engine.weights_hash != e["weights"]:
                snapshot = store.model_path(e["weights"])
                if snapshot is None:
                    msg = (
                        f"the session at seq {e['seq']} started from weights {e['weights']}, which are neither the "
                        f"replay's weights ({engine.weights_hash}) nor a snapshot in {store.path / 'model'}"
                    )
                    if s is None:
                        raise ValueError(msg)
                    report.mismatches.append(msg)
                else:
                    engine = Engine.load(snapshot, device=device)
                    report.notes.append(f"seq {e['seq']}: restarted from the saved weights {e['weights']}")
            # a resumed session started with a fresh adapter (no optimiser moments, no replay buffer)
            _follow_adapter(engine, e, switched=bool(e["extra"].get("resumed")))
            try:  # answers follow image edges as the session logged (older logs: never)
                engine.edges = e["extra"].get("edges", "never")
            except ValueError as err:
                raise _damaged(state, e, err) from None
            previous, s = s, engine.session(image, **params)
            s.object_id = e["object"]
            s.accepted_diameters = _start_values(e, "accepted_diameters", previous and previous.accepted_diameters)
            s.edge_evidence.gains = _start_values(e, "edge_gains", previous and previous.edge_evidence.gains)
            s.edge_evidence.snap_gains = _start_values(e, "snap_gains", previous and previous.edge_evidence.snap_gains)
            try:  # the candidate answers the session judged (older logs: growing along edges alone)
                s.edge_evidence.candidates = check_candidates(e["extra"].get("edge_candidates", ["edges"]))
            except ValueError as err:
                raise _damaged(state, e, err) from None
            for rule in RULES:  # older logs: answered as recorded, without the rules they do not name
                setattr(s, rule, bool(e["extra"].get(rule, False)))
            sessions.append(s)
            continue
        if s is None:
            raise ValueError(f"session {store.path} is damaged: its log does not start with a 'session' event")
        if kind in PROMPT_KINDS + ("accept",):
            if "edges" in e["extra"]:  # the edges mode changed during the session
                try:
                    engine.edges = e["extra"]["edges"]
                except ValueError as err:
                    raise _damaged(state, e, err) from None
            if "adapter" in e["extra"]:
                _follow_adapter(engine, e, switched=True)
            elif e["extra"].get("adaptation") and e["extra"]["adaptation"] != engine.adaptation:
                engine.adaptation = e["extra"]["adaptation"]  # a log without adapter settings (older version 1 logs)
        if kind in PROMPT_KINDS and s.pending_updates and e["weights"] != engine.weights_hash:
            s.run_pending_updates()  # the recorded update left no event (an adapter that logs nothing)
        try:
            _REPLAY.get(kind, _nothing)(s, e, state)
        except _Stop as stop:
            report.mismatches.append(str(stop))
            break
    if s is not None:
        s.run_pending_updates()
    recorded = [e for e in events if e["kind"] != "session"]
    replayed = [normalise_event(e) for r in sessions for e in r.events if e["kind"] != "session"]
    _compare(recorded, replayed, report)
    stored = np.asarray(store.labels()[...])
    logged = {e["object"] for e in events if e["kind"] == "accept"}
    for oid in sorted(logged | {o["id"] for o in store.objects()}):
        a, b = state.labels == oid, stored == oid
        d = dice(a, b)
        same = bool(np.array_equal(a, b))
        status = "ok" if same else ("not in log" if oid not in logged else "not stored" if not b.any() else "differs")
        report.objects.append(ObjectResult(oid, round(d, 6), same, int(b.sum()), int(a.sum()), status))
    store.close()
    report.seconds = round(time.perf_counter() - t0, 3)
    return report


class _Stop(Exception):
    """An event the replay cannot re-run: the replay stops there (the message is a mismatch)."""


@dataclass
class _State:
    """What the event handlers share: the store, the replayed labels (painted like the stored
    ones: later objects win) and, per accepted object, its region, mask there and the labels
    there before it (for a withdraw)."""

    store: SessionStore
    labels: np.ndarray
    undone: dict[int, tuple] = field(default_factory=dict)


def _damaged(state: _State, e: dict, err: Exception) -> ValueError:
    return ValueError(f"session {state.store.path} is damaged: event seq {e['seq']} ({e['kind']}): {err}")


def _prior(s, e: dict, state: _State) -> None:
    mask = state.store.prior_mask(e["seq"])
    if mask is None:
        raise _Stop(f"the prior mask of event seq {e['seq']} was not saved; replay stopped there")
    if e["extra"].get("exact"):
        s.set_mask(mask, plane=e["plane"])
    else:
        s.prior(mask, plane=e["plane"])


def _propagate(s, e: dict, state: _State) -> None:
    call = e["extra"].get("call")
    if not isinstance(call, dict):
        raise _Stop(f"the propagate event seq {e['seq']} does not record its call; replay stopped there")
    if isinstance(call.get("settings"), dict):
        call = {**call, "settings": as_logged(call["settings"])}
    barrier = state.store.barrier_mask(e["seq"])  # the voxels its barrier kept out (format version 5)
    try:
        s.propagate(**call, **({} if barrier is None else {"barrier": barrier}))
    except (TypeError, ValueError) as err:
        raise _damaged(state, e, err) from None


def _accept(s, e: dict, state: _State) -> None:
    # Painted with the rule the log recorded; a log without it painted with the new object winning.
    overwrite = bool(e["extra"].get("overwrite", True))
    mask = s.accept(defer_update=True, overwrite=overwrite).mask
    index = bbox_nd(mask)
    if index is not None:
        _, _, before = paint(state.labels, index, mask[index], e["object"], overwrite=overwrite)
        state.undone[e["object"]] = (index, mask[index], before, overwrite)


def _withdraw(s, e: dict, state: _State) -> None:
    """An accept undone in the viewer: its pixels go back to what was there."""
    s.withdraw(e["object"])
    if e["object"] in state.undone:
        index, crop, before, _ = state.undone[e["object"]]
        state.labels[index] = np.where(crop, before, state.labels[index])


def _reinstate(s, e: dict, state: _State) -> None:
    """A withdrawn accept redone."""
    try:
        s.reinstate(e["object"], e["extra"].get("diameter"))
    except (TypeError, ValueError) as err:
        raise _damaged(state, e, err) from None
    if e["object"] in state.undone:
        index, crop, _, overwrite = state.undone[e["object"]]
        paint(state.labels, index, crop, e["object"], overwrite=overwrite)


def _update(s, e: dict, state: _State) -> None:
    """A recorded weights update of an earlier object: run the deferred ones now, as the session did."""
    if e["object"] < s.object_id and s.pending_updates:
        s.run_pending_updates()


def _nothing(s, e: dict, state: _State) -> None:
    """Events that are records only (a save, an error note, ...)."""


#: Event kind -> the Session call that re-runs it. A new event kind that changes the session
#: needs one row here.
_REPLAY = {
    "click": lambda s, e, state: s.click(s.full_coords(e["plane"], e["coords"]), positive=bool(e["label"])),
    "box": lambda s, e, state: s.box(e["coords"], plane=e["plane"]),
    "scribble": lambda s, e, state: s.scribble(
        [s.full_coords(e["plane"], yx) for yx in e["coords"]], positive=bool(e["label"])
    ),
    "prior": _prior,
    "propagate": _propagate,
    "undo": lambda s, e, state: s.undo(),
    "redo": lambda s, e, state: s.redo(),
    "clear": lambda s, e, state: s.clear(),
    "accept": _accept,
    "withdraw": _withdraw,
    "reinstate": _reinstate,
    "update": _update,
}


def _start_values(event: dict[str, Any], name: str, previous: dict | None) -> dict[int, float]:
    """Per accepted object, what a (resumed) session started with, logged at its start as ``name``
    (``accepted_diameters``: their sizes, for object size "auto"; ``edge_gains``, ``snap_gains``:
    see :mod:`napari_oaims.core.edges`), or, in logs without it, ``previous`` (the session before it)."""
    logged = event["extra"].get(name)
    if isinstance(logged, dict):
        return {int(k): float(v) for k, v in logged.items()}
    if event["extra"].get("resumed") and previous is not None:
        return dict(previous)
    return {}
