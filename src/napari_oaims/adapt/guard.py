"""One guarded gradient step on the engine's weights, with rollback of harmful updates.

A step is refused (weights unchanged) when the loss is NaN/inf or spikes above ``spike_factor``
times the median of recent losses; it is rolled back when the weights become non-finite, when
the prediction on the same input collapses to empty or full while the target is neither, or when
the adapted model answers worse (:func:`answer_violation`): the questions of an update are
predicted after the step in the same forward pass as the collapse check. After a refusal or a
rollback the step size is halved (down to :data:`MIN_SCALE` of the rate) and each kept step
brings it back by a factor :data:`RECOVER`. Every step returns a record that the session logs
as an ``update`` event (``rolled_back``, ``reason`` and the ``lr`` it stepped with).

What the answer check asks (:class:`Probe`): the current object's clicks must be answered right
(positive inside, negative outside) at least as often as before the update; each of the
:data:`PROBES` most recently accepted objects, asked with its first prompt alone, must keep its
Dice against its accepted mask within :data:`MARGIN` of the Dice it had when it was accepted; and
no positive click may be answered with an empty mask where the answer before was not empty.
Which questions an update asks is the adapter's choice (:mod:`napari_oaims.adapt.oaims`).
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.engine import Engine

from napari_oaims.adapt.settings import LR
from napari_oaims.core.overlap import dice
from napari_oaims.model.device import flush_denormals

#: Adam's moment decay rates for online adaptation (all parameters, one step per update).
BETAS = (0.9, 0.999)
#: How many recently accepted objects the answer check keeps (asked with their first prompt alone).
PROBES = 3
#: How far an accepted object's Dice (first prompt alone vs its accepted mask) may fall below its
#: Dice when it was accepted. Ordinary learning moves it by about -0.02 (median: the answers
#: improve) and at most 0.06 on the shipped nuclei, 0.12 on the hollow "edges" nuclei; a collapse
#: takes all of it. (At 0.1 the check undid 9 of oaims' updates on "edges" and took 5 of its 8
#: points of Dice@1 gain.) The reference is the Dice at acceptance, not after the previous step,
#: so a slow drift is caught once it adds up to the margin.
MARGIN = 0.15
#: Smallest share of the learning rate left after rollbacks, and the factor by which each kept
#: step brings the step size back (8 kept steps undo one halving).
MIN_SCALE = 1.0 / 64
RECOVER = 2.0 ** (1 / 8)


class Check(enum.Enum):
    """The check that refused or undid a step."""

    NON_FINITE_LOSS = "non-finite loss"
    LOSS_SPIKE = "loss spike"
    NON_FINITE_WEIGHTS = "non-finite weights"
    COLLAPSE = "prediction collapsed"
    ANSWER = "answer check"

    @property
    def refused(self) -> bool:
        """The step was refused before it was taken (the weights never changed)."""
        return self in (Check.NON_FINITE_LOSS, Check.LOSS_SPIKE)


@dataclass(frozen=True)
class Rollback:
    """Why a step was refused or undone: the ``check``, and the ``message`` the log and the
    status line show (the update record's ``reason``)."""

    check: Check
    message: str

    @property
    def undone(self) -> bool:
        """The step was taken and then undone (not refused before it was taken)."""
        return not self.check.refused


#: One click of a question: working-size ``(y, x, positive)``.
ClickPoint = tuple[float, float, bool]


@dataclass(frozen=True)
class Probe:
    """A question the adapted model must keep answering: the network input ``x`` (4, S, S; None:
    the next input of the step's collapse check, so it is not predicted twice) and the clicks it
    holds. For the current object ``before`` is the answer (S, S) bool before the update; for an
    accepted object ``target`` is its accepted mask and ``dice`` the Dice of its answer when it was
    accepted (``before`` then is that answer)."""

    x: np.ndarray | None
    clicks: tuple[ClickPoint, ...]
    before: np.ndarray
    target: np.ndarray | None = None
    dice: float = 0.0


def clicks_right(mask: np.ndarray, clicks) -> int:
    """How many of ``clicks`` ((y, x, positive), working coordinates) ``mask`` answers right."""
    s = mask.shape[-1]
    return sum(
        bool(mask[min(max(int(round(y)), 0), s - 1), min(max(int(round(x)), 0), s - 1)]) == bool(p)
        for y, x, p in clicks
    )


def answer_violation(after: np.ndarray, probes: list[Probe], margin: float = MARGIN) -> Rollback | None:
    """Why the answers ``after`` (B, S, S) bool to ``probes`` are worse than before (None: they are not).

    Checked in this order: an empty answer to a positive click where the answer before was not
    empty; fewer of the current object's clicks answered right; an accepted object's Dice more
    than ``margin`` below its Dice when it was accepted.
    """
    for a, p in zip(after, probes):
        if any(c[2] for c in p.clicks) and p.before.any() and not a.any():
            what = "the current object's" if p.target is None else "an accepted object's"
            return Rollback(
                Check.ANSWER, f"answer check: a positive click of {what} prompts answered with an empty mask"
            )
    for a, p in zip(after, probes):
        if p.target is None:
            now, then = clicks_right(a, p.clicks), clicks_right(p.before, p.clicks)
            if now < then:
                right = f"{now} of {len(p.clicks)} right, {then} before"
                return Rollback(Check.ANSWER, f"answer check: the current object's clicks answered worse ({right})")
    for a, p in zip(after, probes):
        if p.target is not None:
            d = dice(a, p.target)
            if d < p.dice - margin:
                why = f"answer check: an accepted object answered worse (Dice {d:.2f}, {p.dice:.2f} when accepted)"
                return Rollback(Check.ANSWER, why)
    return None


def dice_with(engine: "Engine", probes: list[Probe], other: dict) -> tuple[np.ndarray, np.ndarray]:
    """Dice of each accepted object of ``probes`` against its accepted mask, answered with the
    weights now and with the state dict ``other`` (the weights are left as they were)."""
    x = np.stack([p.x for p in probes])
    with engine.lock:
        now = engine.predict(x) > 0
        kept = {k: v.detach().clone() for k, v in engine.model.state_dict().items()}
        engine.model.load_state_dict(other)
        try:
            then = engine.predict(x) > 0
        finally:
            engine.model.load_state_dict(kept)
    return tuple(np.array([dice(a, p.target) for a, p in zip(m, probes)]) for m in (now, then))


#: With a ``mi_check_se`` above 0, fewer accepted objects than this cannot say "surely better".
SURE_FROM = 3


def better(gains: np.ndarray, se: float) -> bool:
    """Whether per-object Dice gains say "better": their mean at least ``se`` standard errors above
    zero, from at least :data:`SURE_FROM` objects (``se`` 0: a mean of at least zero, ties
    included, from any number)."""
    mean = float(gains.mean())
    if se == 0:
        return mean >= 0
    if len(gains) < SURE_FROM:
        return False
    return mean > 0 and mean >= se * float(gains.std(ddof=1)) / np.sqrt(len(gains))


class GuardedOptimizer:
    """Adam over all parameters of ``engine.model`` with a harmful-update guard."""

    def __init__(self, lr: float = LR, spike_factor: float = 10.0, history: int = 20):
        self.lr = lr
        self.spike_factor = spike_factor
        self._losses: dict[str, deque] = {}
        self._history = history
        self._opt: torch.optim.Optimizer | None = None
        self._model_id: int | None = None
        #: Share of ``lr`` the next step takes (halved by a rollback, recovers by ``RECOVER`` per kept step).
        self.scale = 1.0
        #: Logits (B, S, S) of the collapse check of the last kept step (None if rolled back).
        self.last_logits: np.ndarray | None = None
        #: Logits (B, S, S) of the last step's answer check (kept or not; None without probes).
        self.probe_logits: np.ndarray | None = None
        #: The largest fall of an accepted object's Dice in the last answer check (None: none asked).
        self.dice_drop: float | None = None
        #: Why the last step was refused or undone (None: it was kept).
        self.last_rollback: Rollback | None = None

    def reset(self) -> None:
        """Forget optimiser state, loss history and step-size back-off (after ``engine.reset()``)."""
        self._opt = None
        self._losses.clear()
        self.scale = 1.0

    def to(self, device) -> None:
        """After the model's parameters moved: move the optimiser's moments with them."""
        if self._opt is not None:
            self._opt.load_state_dict(self._opt.state_dict())  # casts the state to the params' device

    def _optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        if self._opt is None or self._model_id != id(model):
            self._opt = torch.optim.Adam(model.parameters(), lr=self.lr, betas=BETAS)
            self._model_id = id(model)
        return self._opt

    def snapshot(self, engine: "Engine") -> dict:
        """The weights, Adam moments and update count now: what :meth:`restore` puts back."""
        opt = self._optimizer(engine.model)
        return {
            "weights": {k: v.detach().clone() for k, v in engine.model.state_dict().items()},
            "adam": {
                k: {n: (t.clone() if torch.is_tensor(t) else t) for n, t in v.items()} for k, v in opt.state.items()
            },
            "updates": engine.updates,
        }

    def restore(self, engine: "Engine", snap: dict) -> None:
        """Put back a :meth:`snapshot` exactly (weights, Adam moments, update count)."""
        opt = self._optimizer(engine.model)
        engine.model.load_state_dict(snap["weights"])
        opt.state.clear()
        opt.state.update(snap["adam"])
        if engine.updates != snap["updates"]:
            engine.updates = snap["updates"]
            engine.weights_changed()

    def state(self, engine: "Engine") -> dict:
        """Everything a step changes: a :meth:`snapshot`, the step size and the loss history."""
        return {
            "snapshot": self.snapshot(engine),
            "scale": self.scale,
            "losses": {k: deque(v, maxlen=v.maxlen) for k, v in self._losses.items()},
        }

    def set_state(self, engine: "Engine", state: dict) -> None:
        """Put back a :meth:`state`."""
        with engine.lock:
            self.restore(engine, state["snapshot"])
            engine.weights_changed()
        self.scale = state["scale"]
        self._losses = state["losses"]

    def step(
        self,
        engine: "Engine",
        method: str,
        loss_fn: Callable[[torch.nn.Module], torch.Tensor],
        check_x: np.ndarray | None = None,
        check_target: np.ndarray | None = None,
        probes: list[Probe] | Callable[[], list[Probe]] | None = None,
        restore: dict | None = None,
    ) -> dict:
        """Compute ``loss_fn(model)``, take one step, and keep it only if it is not harmful.

        ``check_x`` (B, 4, S, S) and ``check_target`` (B, S, S) bool enable the collapse check;
        ``probes`` (or a function that makes them once the loss was computed) the answer check,
        predicted in the same forward pass. A step that fails a check
        is undone back to ``restore`` (a :meth:`snapshot`; default: the weights before this step).
        The step's rate is ``lr * scale``.
        """
        t0 = time.perf_counter()
        self.last_logits = self.probe_logits = self.dice_drop = self.last_rollback = None
        model = engine.model
        record = {"method": method, "weights_before": engine.weights_hash, "rolled_back": False, "reason": None}
        flush_denormals(engine.device)
        with engine.compute():  # the lock, and torch threads for a few windows
            opt = self._optimizer(model)
            lr = self.lr * self.scale
            for group in opt.param_groups:
                group["lr"] = lr
            record["lr"] = float(f"{lr:.4g}")
            model.train()
            own = self.snapshot(engine)
            try:
                loss = loss_fn(model)
            finally:
                model.eval()
            value = float(loss.detach())
            record["loss"] = round(value, 6) if np.isfinite(value) else None
            hist = self._losses.setdefault(method, deque(maxlen=self._history))
            reason = None
            if not np.isfinite(value):
                reason = Rollback(Check.NON_FINITE_LOSS, "non-finite loss")
            elif len(hist) >= 5 and value > self.spike_factor * max(float(np.median(hist)), 1e-3):
                spike = f"loss spike ({value:.3g} > {self.spike_factor} x median {np.median(hist):.3g})"
                reason = Rollback(Check.LOSS_SPIKE, spike)
            if reason is None:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                engine.updates += 1
                reason = self._harm(engine, check_x, check_target, (probes() if callable(probes) else probes) or [])
                if reason is not None:
                    self.last_logits = None
                    self.restore(engine, restore if restore is not None else own)
                else:
                    hist.append(value)
                    self.scale = min(1.0, self.scale * RECOVER)
                engine.weights_changed()
            else:
                opt.zero_grad(set_to_none=True)
            if reason is not None:
                self.scale = max(MIN_SCALE, self.scale / 2)
                engine.rolled_back(method, reason.message)
        self.last_rollback = reason
        record["rolled_back"] = reason is not None
        record["reason"] = None if reason is None else reason.message
        if self.dice_drop is not None:
            record["dice_drop"] = self.dice_drop  # the largest fall of an accepted object's Dice
        record["weights_after"] = engine.weights_hash
        record["latency_ms"] = (time.perf_counter() - t0) * 1e3
        return record

    def _harm(self, engine: "Engine", check_x, check_target, probes: list[Probe]) -> Rollback | None:
        if not all(torch.isfinite(p).all() for p in engine.model.parameters()):
            return Rollback(Check.NON_FINITE_WEIGHTS, "non-finite weights")
        n = 0 if check_x is None or check_target is None else len(check_x)
        if n == 0 and not probes:
            return None
        extra = [p.x for p in probes if p.x is not None]
        inputs = ([check_x] if n else []) + ([np.stack(extra)] if extra else [])
        logits = engine.predict(np.concatenate(inputs))  # one forward pass for both checks
        if n:
            self.last_logits = logits[:n]
            pred = self.last_logits > 0
            for p, t in zip(pred, np.asarray(check_target, bool)):
                tf, pf = t.mean(), p.mean()
                if 0.0 < tf < 0.9 and (pf == 0.0 or pf > 0.98):
                    return Rollback(Check.COLLAPSE, "prediction collapsed to " + ("empty" if pf == 0.0 else "full"))
        if probes:
            same, other = iter(range(n)), iter(range(n, len(logits)))
            self.probe_logits = np.stack([logits[next(same if p.x is None else other)] for p in probes])
            drops = [p.dice - dice(a, p.target) for a, p in zip(self.probe_logits > 0, probes) if p.target is not None]
            self.dice_drop = round(max(drops), 4) if drops else None
            return answer_violation(self.probe_logits > 0, probes)
        return None


def engine_step(
    adapter, engine, method, loss_fn, check_x, check_target, optimizer: GuardedOptimizer | None = None, **guard
) -> dict:
    """One guarded step with ``optimizer`` (default ``adapter.optimizer``), tagged with the adapter's
    name; ``guard``: the answer check's ``probes`` and ``restore`` of
    :meth:`GuardedOptimizer.step`."""
    record = (optimizer or adapter.optimizer).step(engine, method, loss_fn, check_x, check_target, **guard)
    record["adaptation"] = adapter.name
    return record


def skip_record(adapter, engine: "Engine", reason: str, method: str = "pi_skip") -> dict:
    """An update record of ``adapter`` for a step left out (the weights do not change)."""
    return {
        "method": method,
        "weights_before": engine.weights_hash,
        "weights_after": engine.weights_hash,
        "loss": None,
        "rolled_back": False,
        "reason": reason,
        "adaptation": adapter.name,
        "latency_ms": 0.0,
    }
