"""One guarded gradient step on the engine's weights, with rollback of harmful updates.

A step is refused (weights unchanged) when the loss is NaN/inf or spikes above ``spike_factor``
times the median of recent losses; it is rolled back when the weights become non-finite or the
prediction on the same input collapses to empty or full while the target is neither. Every
step returns a record that the session logs as an ``update`` event.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.engine import Engine

from napari_oaims.adapt.settings import LR

#: Adam's moment decay rates for online adaptation (all parameters, one step per update).
BETAS = (0.9, 0.999)


class GuardedOptimizer:
    """Adam over all parameters of ``engine.model`` with a harmful-update guard."""

    def __init__(self, lr: float = LR, spike_factor: float = 10.0, history: int = 20):
        self.lr = lr
        self.spike_factor = spike_factor
        self._losses: dict[str, deque] = {}
        self._history = history
        self._opt: torch.optim.Optimizer | None = None
        self._model_id: int | None = None
        #: Logits (B, S, S) of the collapse check of the last kept step (None if rolled back).
        self.last_logits: np.ndarray | None = None

    def reset(self) -> None:
        """Forget optimiser state and loss history (after ``engine.reset()``)."""
        self._opt = None
        self._losses.clear()

    def to(self, device) -> None:
        """After the model's parameters moved: move the optimiser's moments with them."""
        if self._opt is not None:
            self._opt.load_state_dict(self._opt.state_dict())  # casts the state to the params' device

    def _optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        if self._opt is None or self._model_id != id(model):
            self._opt = torch.optim.Adam(model.parameters(), lr=self.lr, betas=BETAS)
            self._model_id = id(model)
        return self._opt

    def step(
        self,
        engine: "Engine",
        method: str,
        loss_fn: Callable[[torch.nn.Module], torch.Tensor],
        check_x: np.ndarray | None = None,
        check_target: np.ndarray | None = None,
    ) -> dict:
        """Compute ``loss_fn(model)``, take one step, and keep it only if it is not harmful.

        ``check_x`` (B, 4, S, S) and ``check_target`` (B, S, S) bool enable the collapse check.
        """
        t0 = time.perf_counter()
        self.last_logits = None
        model = engine.model
        record = {"method": method, "weights_before": engine.weights_hash, "rolled_back": False, "reason": None}
        if engine.device.type == "cpu":
            torch.set_flush_denormal(True)  # per thread, see Engine.predict
        with engine.lock:
            opt = self._optimizer(model)
            model.train()
            snapshot = {k: v.detach().clone() for k, v in model.state_dict().items()}
            opt_state = {
                k: {n: (t.clone() if torch.is_tensor(t) else t) for n, t in v.items()} for k, v in opt.state.items()
            }
            try:
                loss = loss_fn(model)
            finally:
                model.eval()
            value = float(loss.detach())
            record["loss"] = round(value, 6) if np.isfinite(value) else None
            hist = self._losses.setdefault(method, deque(maxlen=self._history))
            reason = None
            if not np.isfinite(value):
                reason = "non-finite loss"
            elif len(hist) >= 5 and value > self.spike_factor * max(float(np.median(hist)), 1e-3):
                reason = f"loss spike ({value:.3g} > {self.spike_factor} x median {np.median(hist):.3g})"
            if reason is None:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                reason = self._harm(engine, check_x, check_target)
                if reason is not None:
                    self.last_logits = None
                    model.load_state_dict(snapshot)
                    opt.state.clear()
                    opt.state.update(opt_state)
                else:
                    hist.append(value)
                    engine.updates += 1
                    engine.weights_changed()
            else:
                opt.zero_grad(set_to_none=True)
        record["rolled_back"] = reason is not None
        record["reason"] = reason
        record["weights_after"] = engine.weights_hash
        record["latency_ms"] = (time.perf_counter() - t0) * 1e3
        return record

    def _harm(self, engine: "Engine", check_x, check_target) -> str | None:
        if not all(torch.isfinite(p).all() for p in engine.model.parameters()):
            return "non-finite weights"
        if check_x is None or check_target is None:
            return None
        self.last_logits = engine.predict(check_x)
        pred = self.last_logits > 0
        for p, t in zip(pred, np.asarray(check_target, bool)):
            tf, pf = t.mean(), p.mean()
            if 0.0 < tf < 0.9 and (pf == 0.0 or pf > 0.98):
                return "prediction collapsed to " + ("empty" if pf == 0.0 else "full")
        return None
