"""Baselines behind the adapter interface, sharing the same base model (the baselines of Xu et al.,
*You Point, I Learn*, sections 3 and A.10).

* ``ia_sa`` (Kontogianni et al. 2020): after each click, one step on a sparse loss at the
  clicked pixels of this object, ``f(I, C_t)`` vs the click labels (image adaptation); the weights
  carry over to later objects (sequence adaptation), and on accept one more step on all of the
  object's clicks.
* ``tsca`` (Atanyan et al. 2024): a student and a teacher. The student takes the sparse click
  step plus a consistency term to the teacher's prediction; the teacher, whose weights are the
  ones shown to the user, follows the student by EMA (``ema`` per update).
* ``ce``: cross-entropy of ``f(I, C_t)`` to its own hard prediction, after each click and on accept.
* ``entropy``: entropy minimisation of ``f(I, C_t)``, after each click and on accept.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.nn import functional as F

from napari_oaims.adapt.base import AcceptedObject, Adapter, AdapterReply, PlaneView, PromptUpdate
from napari_oaims.adapt.guard import GuardedOptimizer, engine_step
from napari_oaims.adapt.oaims import ccg_points
from napari_oaims.adapt.settings import BaselineSettings, TSCASettings
from napari_oaims.core.progress import check_cancel
from napari_oaims.model.device import as_tensor

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.engine import Engine


def sparse_click_loss(logits: torch.Tensor, clicks: list[tuple[float, float, bool]]) -> torch.Tensor:
    """Binary cross-entropy at the clicked pixels only (a 3x3 neighbourhood per click)."""
    s = logits.shape[-1]
    losses = []
    for y, x, positive in clicks:
        yi, xi = int(round(y)), int(round(x))
        if not (0 <= yi < s and 0 <= xi < s):
            continue
        patch = logits[0, 0, max(yi - 1, 0) : yi + 2, max(xi - 1, 0) : xi + 2]
        losses.append(F.binary_cross_entropy_with_logits(patch, torch.full_like(patch, float(positive))))
    return torch.stack(losses).mean() if losses else logits.sum() * 0.0


class _PerClick(Adapter):
    """Shared plumbing: a loss on ``f(I, C_t)`` after each prompt and on all prompts at accept."""

    settings_class = BaselineSettings

    def __init__(self, settings: BaselineSettings | None = None, **overrides):
        self.config = replace(settings or self.settings_class(), **overrides)
        self.optimizer = GuardedOptimizer(self.config.lr)

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "optimizer": "Adam", **asdict(self.config)}

    def reset(self) -> None:
        self.optimizer.reset()

    def loss(self, model, x: torch.Tensor, clicks) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _update(self, engine, view: PlaneView, prompts, window, method) -> dict:
        x = view.encode(prompts, window)[None]
        clicks = [c for p in prompts for c in ccg_points(p, window)]
        xt = as_tensor(x, engine.device)
        return engine_step(self, engine, method, lambda model: self.loss(model, xt, clicks), None, None)

    def on_prompt(self, engine: "Engine", update: PromptUpdate) -> AdapterReply:
        return AdapterReply([self._update(engine, update.view, update.prompts, update.window, "click")])

    def on_accept(self, engine: "Engine", accepted: AcceptedObject) -> list[dict]:
        check_cancel(accepted.cancel)  # one step per plane: cancelled before the first, or not at all
        out = []
        for view, prompts, _final in accepted.planes:
            window = view.window(prompts, None)
            if window is not None:
                out.append(self._update(engine, view, prompts, window, "accept"))
        return out


class IASA(_PerClick):
    name = "ia_sa"

    def loss(self, model, x, clicks):
        return sparse_click_loss(model(x), clicks)


class CrossEntropySelf(_PerClick):
    name = "ce"

    def loss(self, model, x, clicks):
        logits = model(x)
        return F.binary_cross_entropy_with_logits(logits, (logits.detach() > 0).float())


class EntropyMin(_PerClick):
    name = "entropy"

    def loss(self, model, x, clicks):
        p = torch.sigmoid(model(x)).clamp(1e-6, 1 - 1e-6)
        return -(p * p.log() + (1 - p) * (1 - p).log()).mean()


class TSCA(_PerClick):
    """Teacher (engine.model, shown) and student (a copy that takes the gradient steps)."""

    name = "tsca"

    settings_class = TSCASettings

    def __init__(self, settings: TSCASettings | None = None, **overrides):
        super().__init__(settings, **overrides)
        self.ema, self.consistency = self.config.ema, self.config.consistency
        self.student: torch.nn.Module | None = None

    def reset(self) -> None:
        super().reset()
        self.student = None

    def _update(self, engine, view: PlaneView, prompts, window, method) -> dict:
        if self.student is None:
            self.student = copy.deepcopy(engine.model)
        x = view.encode(prompts, window)[None]
        clicks = [c for p in prompts for c in ccg_points(p, window)]
        xt = as_tensor(x, engine.device)
        teacher_pred = torch.from_numpy(engine.predict(x) > 0).float().to(engine.device)[:, None]

        def loss_fn(_model):
            logits = self.student(xt)
            return sparse_click_loss(logits, clicks) + self.consistency * F.binary_cross_entropy_with_logits(
                logits, teacher_pred
            )

        # The guarded optimiser steps the student: point it at a stand-in engine view.
        record = self.optimizer.step(_StudentView(engine, self.student), method, loss_fn, None, None)
        if not record["rolled_back"]:
            with engine.lock, torch.no_grad():
                for pt, ps in zip(engine.model.parameters(), self.student.parameters()):
                    pt.mul_(self.ema).add_(ps, alpha=1 - self.ema)
                engine.updates += 1
                engine.weights_changed()
        record["weights_after"] = engine.weights_hash
        record["adaptation"] = self.name
        return record


class _StudentView:
    """Just enough of an engine for :class:`GuardedOptimizer` to step the TSCA student."""

    def __init__(self, engine: "Engine", student: torch.nn.Module):
        self.model, self.lock, self.device = student, engine.lock, engine.device
        self.compute = engine.compute  # the lock and the thread count for the student's steps
        self.updates = 0
        self._engine = engine

    @property
    def weights_hash(self) -> str:
        return self._engine.weights_hash

    def weights_changed(self) -> None:
        pass

    def rolled_back(self, method: str, reason: str) -> None:
        self._engine.rolled_back(method, reason)

    def predict(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model.eval()(as_tensor(x, self.device))[:, 0].cpu().numpy()
