"""One guarded gradient step on the engine's weights, with rollback of harmful updates.

A step is refused (weights unchanged) when the loss is NaN/inf or spikes above ``spike_factor``
times the median of recent losses; it is rolled back when the weights become non-finite or the
prediction on the same input collapses to empty or full while the target is neither. Every
step returns a record that the session logs as an ``update`` event.

With ``anchor > 0`` every kept step also pulls each weight back toward the engine's pretrained
weights by that share of the difference (a decoupled L2-SP penalty, like AdamW's weight decay
but toward the start point): what was learnt on a shifted image stays, while slow drift away
from the pretrained refinement behaviour is bounded.
"""

from __future__ import annotations

import re
import time
from collections import deque
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.engine import Engine

#: Default optimiser settings for online adaptation (all parameters, one step per update).
LR = 1e-4
BETAS = (0.9, 0.999)


class GuardedOptimizer:
    """Adam over all parameters of ``engine.model`` with a harmful-update guard."""

    def __init__(self, lr: float = LR, spike_factor: float = 10.0, history: int = 20, anchor: float = 0.0,
                 lr_scales: dict[str, float] | None = None):
        if not 0.0 <= anchor < 1.0:
            raise ValueError(f"anchor must lie in [0, 1), got {anchor}")
        for prefix, scale in (lr_scales or {}).items():
            if not (np.isfinite(scale) and scale >= 0):
                raise ValueError(f"learning-rate scale for {prefix!r} must be a number >= 0, got {scale}")
        #: Learning-rate multipliers by regular expression, searched in ``"<parameter name>
        #: (<module class>)"``, e.g. ``{"^encoders\\.0\\.": 3}`` (first encoder block) or
        #: ``{"GroupNorm": 10}`` (every norm layer's affine); the first match applies, other
        #: parameters use the plain rate.
        self.lr_scales = dict(lr_scales or {})
        self.lr = lr
        self.anchor = float(anchor)
        self._anchor_state: dict[str, torch.Tensor] | None = None
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
        self._anchor_state = None
        self._losses.clear()

    def to(self, device) -> None:
        """After the model's parameters moved: move the optimiser's moments with them."""
        if self._opt is not None:
            self._opt.load_state_dict(self._opt.state_dict())  # casts the state to the params' device
        self._anchor_state = None  # rebuilt on the new device at the next step

    def _optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        if self._opt is None or self._model_id != id(model):
            groups: dict[float, list] = {}
            matched = False
            for name, param in model.named_parameters():
                owner = model.get_submodule(name.rpartition(".")[0])
                label = f"{name} ({type(owner).__name__})"
                pattern = next((k for k in self.lr_scales if re.search(k, label)), None)
                matched |= pattern is not None
                groups.setdefault(float(self.lr_scales.get(pattern, 1.0)), []).append(param)
            if self.lr_scales and not matched:
                raise ValueError(f"no parameter matches any of {sorted(self.lr_scales)}")
            self._opt = torch.optim.Adam([{"params": ps, "scale": sc} for sc, ps in groups.items()], lr=self.lr,
                                         betas=BETAS)
            self._model_id = id(model)
            self._anchor_state = None
        return self._opt

    def _pull_to_anchor(self, engine: "Engine") -> None:
        if self._anchor_state is None:
            self._anchor_state = {k: v.to(engine.device) for k, v in engine.base_state().items()}
        with torch.no_grad():
            for name, p in engine.model.named_parameters():
                p.lerp_(self._anchor_state[name], self.anchor)

    def step(
        self,
        engine: "Engine",
        method: str,
        loss_fn: Callable[[torch.nn.Module], torch.Tensor],
        check_x: np.ndarray | None = None,
        check_target: np.ndarray | None = None,
        lr: float | None = None,
    ) -> dict:
        """Compute ``loss_fn(model)``, take one step, and keep it only if it is not harmful.

        ``check_x`` (B, 4, S, S) and ``check_target`` (B, S, S) bool enable the collapse check;
        ``lr`` overrides the learning rate for this step.
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
            opt_state = {k: {n: (t.clone() if torch.is_tensor(t) else t) for n, t in v.items()} for k, v in opt.state.items()}
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
                for group in opt.param_groups:
                    group["lr"] = (self.lr if lr is None else lr) * group["scale"]
                opt.step()
                if self.anchor > 0:
                    self._pull_to_anchor(engine)
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
