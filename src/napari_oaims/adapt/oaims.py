"""OAIMS: Mid-Interaction and Post-Interaction adaptation (seed 000 algorithm 1, GUIDE 3.3).

The model learns while the user annotates, from two kinds of update, each one guarded step
(:class:`~napari_oaims.adapt.guard.GuardedOptimizer`: a harmful step is refused or rolled back).

* **MI**, after each prompt ``c_t`` from the second on: ``P_init = f(I, C_t)`` without gradient
  is the pseudo label, ``P_prev = f(I, C_{t-1})`` the prediction (recomputed with gradient on the
  same window); one Adam step (rate ``mi_lr``) on ``L_DF(P_prev, P_init) + beta L_CCG(P_prev,
  P_init, c_t)``. The session then shows ``P_t = f(I, C_t)`` with the updated weights. MI learns
  from *corrections* only (``mi_gate``): a click that agrees everywhere with the mask it would
  correct (a positive click inside it, a negative one outside; what a wrong-label click looks
  like) carries no error signal and is not learnt from. While such a click is among the object's
  prompts MI also skips every later one (``mi_stop``: they are made around a mask the suspect
  click shaped; undo or clear lifts this), and the suspect click undoes the MI steps already
  taken on its object (``mi_rewind``, logged as an ``mi_rewind`` update). MI learns from an
  object's first ``mi_max_prompts`` prompts only.
* **PI**, on accept, per annotated plane: stage 1 predicts from the localisation prompt only and
  takes one step on ``L_DF(P_1, P_final)``; stage 2 makes one click per error component of
  ``P_1`` against ``P_final`` (largest first, up to ``max_clicks``, at the component centre),
  predicts from the localisation prompt plus those clicks and takes one step on
  ``L_DF + beta L_CCG`` against ``P_final`` (Adam, rate ``lr``). Stage 2 runs only when a prompt
  of the plane corrected the mask: for a preview accepted untouched the errors of ``P_1`` are
  slivers of the model's own answer, and clicks there teach it to cut its masks (logged as a
  ``pi_stage2_skip`` record). Where the object's prompts hold a click that corrected nothing,
  ``L_DF`` leaves out the pixels of that click's label within ``pi_ignore`` object diameters of
  it and stage 2 makes no click there; when that is more than half the mask, PI skips the plane
  (a ``pi_skip`` record).
* **Replay** (seed 003): the last ``replay_size`` stage-2 samples (one per accepted object and
  plane); ``replay_k`` of them, drawn with the adapter's ``seed``, join each stage-2 batch.

Boxes and scribbles feed the same machinery: for CCG, a scribble's pixels act as clicks of its
polarity and a box's outline pixels as negative clicks (they lie outside the object).

Settings (:class:`~napari_oaims.adapt.settings.OAIMSSettings`, defaults in brackets)
-------------------------------------------------------------------------------------
``lr``, ``mi_lr`` [1e-4, 1e-4]
    Adam rates of PI and of MI, over all parameters. MI and PI keep separate Adam moments: MI's
    frequent pseudo-label steps would otherwise inflate the second moments that scale PI's
    steps, which learn from the user's final mask.
``beta`` [200]
    Weight of the CCG loss, the pretraining value, so that adaptation keeps the objective the
    model was trained with.
``max_clicks`` [10]
    Most generated clicks in PI's stage 2 (one per error component, largest first).
``replay_size``, ``replay_k`` [16, 2]
    Replay against forgetting: without it, an object that took many clicks pulls the model
    towards itself and makes the next objects' first clicks worse. ``replay_size=0`` turns it off.
``seed`` [0]
    Seed of the replay draws (runs are reproducible).
``mi_gate``, ``mi_stop``, ``mi_rewind`` [on]
    Protection against wrong-label clicks. Correcting clicks never trigger them, so they change
    nothing for a careful user.
``mi_max_prompts`` [10]
    The method's interaction budget (its T): later clicks only polish the boundary, and many MI
    steps on them drift the model. PI still learns from the accepted mask (0: no limit).
``pi_ignore`` [0.5]
    How far (in object diameters) around a doubtful click PI distrusts the accepted mask (0: PI
    trusts all of it). Like the MI guards it never acts when every click corrected the mask.

Each PI stage takes exactly one step on one view of the plane (the localisation prompt's
window), stage 1 before stage 2, with one learning rate for all parameters and no pull towards
the pretrained weights: variants of these measured no better and are not offered (see
:data:`~napari_oaims.adapt.settings.RETIRED` for how logs naming them are read).
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from napari_oaims.adapt.base import AcceptedObject, Adapter, AdapterReply, PlaneView, PromptUpdate
from napari_oaims.adapt.guard import GuardedOptimizer
from napari_oaims.adapt.settings import OAIMSSettings
from napari_oaims.core import guidance
from napari_oaims.core.prompts import Prompt
from napari_oaims.model.losses import dice_focal, total_loss
from napari_oaims.simulate.robot import correction_clicks

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.engine import Engine

MAX_CCG_POINTS = 16
#: PI skips an object's plane when less than this share of its mask is left to learn from.
PI_IGNORE_KEEP = 0.5


def ccg_points(prompt: "Prompt", window: guidance.Window) -> list[tuple[float, float, bool]]:
    """The CCG 'clicks' (working coordinates, polarity) that stand for one prompt."""
    if prompt.kind == "click":
        y, x = window.to_work(prompt.points[0])
        return [(float(y), float(x), prompt.positive)]
    if prompt.kind == "scribble":
        pts = prompt.points[:: max(1, len(prompt.points) // MAX_CCG_POINTS)]
        return [(float(y), float(x), prompt.positive) for y, x in window.to_work(pts)]
    if prompt.kind == "box":
        y0, x0, y1, x1 = prompt.box
        outline = guidance.rasterise_path(np.array([[y0, x0], [y0, x1 - 1], [y1 - 1, x1 - 1], [y1 - 1, x0], [y0, x0]]))
        pts = outline[:: max(1, len(outline) // MAX_CCG_POINTS)]
        return [(float(y), float(x), False) for y, x in window.to_work(pts)]
    return []


def work_target(mask: np.ndarray, window: guidance.Window) -> np.ndarray:
    """A plane mask cropped to ``window`` and resized (nearest) to the working size (bool)."""
    crop = guidance.crop_plane(mask, window)
    idx = np.clip(((np.arange(guidance.WORK_SIZE) + 0.5) / window.scale).astype(int), 0, window.size - 1)
    return crop[np.ix_(idx, idx)] > 0.5


def _t(a: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(device)


class OAIMSAdapter(Adapter):
    """OAIMS with Mid-Interaction and/or Post-Interaction updates (settings: :class:`OAIMSSettings`)."""

    def __init__(self, settings: OAIMSSettings | None = None, **overrides):
        self.config = replace(settings or OAIMSSettings(), **overrides)
        c = self.config
        self.name = "oaims" if (c.mi and c.pi) else "mi" if c.mi else "pi"
        self.optimizer = GuardedOptimizer(c.lr)
        self.mi_optimizer = GuardedOptimizer(c.mi_lr)
        self.buffer: deque = deque(maxlen=max(c.replay_size, 1))
        self._rng = random.Random(c.seed)
        self._object_start: tuple | None = None  # (first prompt, weights before its MI steps)
        self._suspect: Prompt | None = None  # the last prompt that corrected nothing (mi_stop)

    def __getattr__(self, name: str):
        config = self.__dict__.get("config")
        if config is not None and name in OAIMSSettings.__dataclass_fields__:
            return getattr(config, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "optimizer": "Adam", **asdict(self.config)}

    def reset(self) -> None:
        self.optimizer.reset()
        self.mi_optimizer.reset()
        self.buffer.clear()
        self._suspect = None
        self._object_start = None

    # -- Mid-Interaction ----------------------------------------------------------------------
    def on_prompt(self, engine: "Engine", ctx: PromptUpdate) -> AdapterReply:
        if not self.mi or not any(p.positive or p.kind in ("box", "prior") for p in ctx.previous):
            return AdapterReply()  # MI starts with the second prompt (t >= 2)
        if self.mi_max_prompts and len(ctx.prompts) > self.mi_max_prompts:
            return AdapterReply()  # past the object's first mi_max_prompts prompts: PI still learns from it
        if self._suspect is not None and any(p is self._suspect for p in ctx.previous):
            return AdapterReply()  # a suspect prompt is still in place (mi_stop); undo or clear lifts this
        if self.mi_gate and ctx.new.corrected is False:
            if self.mi_stop:
                self._suspect = ctx.new
            if self.mi_rewind and self._object_start is not None and self._object_start[0] is ctx.previous[0]:
                return AdapterReply([self._rewind(engine)])
            return AdapterReply()  # nothing for P_prev to learn from this prompt
        if self.mi_rewind and (self._object_start is None or self._object_start[0] is not ctx.previous[0]):
            self._object_start = (
                ctx.previous[0],
                {k: v.detach().clone() for k, v in engine.model.state_dict().items()},
            )
        x_prev = ctx.view.encode(ctx.previous, ctx.window)[None]
        x_new = ctx.view.encode(ctx.prompts, ctx.window)[None]
        pseudo = engine.predict(x_new) > 0  # P_init, no gradient
        clicks = [ccg_points(ctx.new, ctx.window)]
        target = _t(pseudo[:, None], engine.device)

        def loss_fn(model):
            return total_loss(model(_t(x_prev, engine.device)), target, clicks, beta=self.beta)

        opt = self.mi_optimizer
        record = engine_step(self, engine, "mi", loss_fn, x_new, pseudo, optimizer=opt)
        # The collapse check already predicted P_t = f(I, C_t) with the new weights: show that.
        return AdapterReply([record], None if opt.last_logits is None else opt.last_logits[0])

    def _rewind(self, engine: "Engine") -> dict:
        """Put back the weights from before this object's MI steps (``mi_rewind``), as an update record."""
        t0 = time.perf_counter()
        with engine.lock:
            record = {
                "method": "mi_rewind",
                "weights_before": engine.weights_hash,
                "loss": None,
                "rolled_back": False,
                "reason": "a click that corrected nothing: this object's MI steps undone",
            }
            engine.model.load_state_dict(self._object_start[1])
            engine.weights_changed()
            record["weights_after"] = engine.weights_hash
        self._object_start = None
        record["adaptation"] = self.name
        record["latency_ms"] = (time.perf_counter() - t0) * 1e3
        return record

    # -- Post-Interaction ---------------------------------------------------------------------
    def on_accept(self, engine: "Engine", accepted: AcceptedObject) -> list[dict]:
        if not self.pi:
            return []
        records = []
        for s, prompts, final in accepted.planes:
            first = next((p for p in prompts if p.positive), None)
            if first is None or not final.any():
                continue
            views = [self._view(s, first, final)]
            doubtful = [p for p in prompts if p.corrected is False]
            if self.pi_ignore and doubtful:
                skip = self._leave_out(views, doubtful, final)
                if skip is not None:
                    records.append(self._skip_record(engine, skip))
                    continue
            x1 = np.stack([v["x1"] for v in views])
            targets_np = np.stack([v["target"] for v in views])
            target = _t(targets_np[:, None], engine.device)
            weight = _weights([v.get("weight") for v in views], engine.device)
            p1 = {}

            def stage1(model):
                logits = model(_t(x1, engine.device))
                p1.setdefault("mask", (logits.detach()[:, 0] > 0).cpu().numpy())  # P1 before the update
                return dice_focal(logits, target, weight=weight)

            records.append(engine_step(self, engine, "pi_stage1", stage1, x1, targets_np))
            if not any(p.corrected for p in prompts):
                # An accepted preview nobody corrected: the errors of P_1 against it are slivers of
                # the model's own answer, and clicks made there teach the model to cut its masks.
                records.append(
                    self._skip_record(engine, "no correction: stage 2 has no user errors to learn", "pi_stage2_skip")
                )
                continue
            batch_x, batch_t, batch_c, batch_w = [], [], [], []
            for view, mask in zip(views, p1["mask"]):
                if view.get("weight") is not None:  # no generated clicks where PI does not learn
                    mask = np.where(view["weight"] > 0, mask, view["target"])
                x2, clicks2 = self._corrected_view(s, view, mask)
                batch_x.append(x2)
                batch_t.append(view["target"])
                batch_c.append(clicks2)
                batch_w.append(view.get("weight"))
            own = (batch_x[0], batch_t[0], batch_c[0], batch_w[0])  # the user's own click: what replay keeps
            if self.replay_size and self.buffer:
                for bx, bt, bc, bw in self._rng.sample(list(self.buffer), min(self.replay_k, len(self.buffer))):
                    batch_x.append(bx)
                    batch_t.append(bt)
                    batch_c.append(bc)
                    batch_w.append(bw)
            bx_np, bt_np = np.stack(batch_x), np.stack(batch_t)
            weight2 = _weights(batch_w, engine.device)

            def stage2(model):
                return total_loss(
                    model(_t(bx_np, engine.device)),
                    _t(bt_np[:, None], engine.device),
                    batch_c,
                    beta=self.beta,
                    weight=weight2,
                )

            check_x, check_t = np.stack(batch_x[: len(views)]), np.stack(batch_t[: len(views)])
            records.append(engine_step(self, engine, "pi_stage2", stage2, check_x, check_t))
            if self.replay_size:
                self.buffer.append(own)
        return records

    def _leave_out(self, views: list[dict], doubtful: list[Prompt], final: np.ndarray) -> str | None:
        """Give each view a ``weight`` (working size, 0 where PI does not learn): the pixels of a
        doubtful prompt's label within ``pi_ignore`` object diameters of its points. Returns why
        the plane is skipped instead, when too little of the mask is left (``PI_IGNORE_KEEP``)."""
        diameter = 2.0 * np.sqrt(np.count_nonzero(final) / np.pi)
        yy, xx = np.mgrid[: guidance.WORK_SIZE, : guidance.WORK_SIZE]
        for view in views:
            window, target = view["window"], view["target"]
            radius = self.pi_ignore * diameter * window.scale
            weight = np.ones(target.shape, np.float32)
            for prompt in doubtful:
                pts = prompt.points[:: max(1, len(prompt.points) // MAX_CCG_POINTS)]
                for y, x in window.to_work(pts):
                    weight[((yy - y) ** 2 + (xx - x) ** 2 <= radius * radius) & (target == prompt.positive)] = 0
            view["weight"] = weight
        kept = float((views[0]["weight"] * views[0]["target"]).sum()) / max(int(views[0]["target"].sum()), 1)
        if kept < PI_IGNORE_KEEP:
            return f"clicks that corrected nothing vouch for {1 - kept:.0%} of the object's mask: not learnt from"
        return None

    def _skip_record(self, engine: "Engine", reason: str, method: str = "pi_skip") -> dict:
        """An update record for a PI step left out (the weights do not change)."""
        return {
            "method": method,
            "weights_before": engine.weights_hash,
            "weights_after": engine.weights_hash,
            "loss": None,
            "rolled_back": False,
            "reason": reason,
            "adaptation": self.name,
            "latency_ms": 0.0,
        }

    def _view(self, s: PlaneView, click: Prompt, final: np.ndarray) -> dict:
        """Window, working-size target, stage-1 input and CCG points for one localisation click."""
        bbox = _mask_bbox(final)
        window = s.window([click], bbox)
        return {
            "click": click,
            "window": window,
            "target": work_target(final, window),
            "x1": s.encode([click], window),
            "ccg": ccg_points(click, window),
        }

    def _corrected_view(self, s: PlaneView, view: dict, p1: np.ndarray) -> tuple[np.ndarray, list]:
        """Stage-2 input and CCG points: the localisation click plus one click per error of ``p1``."""
        window = view["window"]
        generated = correction_clicks(p1, view["target"], self.max_clicks, mode="center")
        # Generated clicks are in working coordinates; map them back to plane pixels.
        extra = []
        for c in generated:
            yx = (np.array([c.y, c.x]) + 0.5) / window.scale - 0.5 + np.array([window.y0, window.x0])
            extra.append(Prompt("click", c.positive, np.rint(yx).astype(int)[None]))
        x2 = s.encode([view["click"]] + extra, window)
        return x2, view["ccg"] + [(float(c.y), float(c.x), c.positive) for c in generated]


def _weights(per_sample: list, device) -> torch.Tensor | None:
    """A (B, 1, S, S) loss weight from per-sample weights (None: every pixel counts), or None if all are None."""
    if all(w is None for w in per_sample):
        return None
    size = (guidance.WORK_SIZE, guidance.WORK_SIZE)
    return _t(np.stack([np.ones(size, np.float32) if w is None else w for w in per_sample])[:, None], device)


def _mask_bbox(mask: np.ndarray):
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)


def engine_step(
    adapter, engine, method, loss_fn, check_x, check_target, optimizer: GuardedOptimizer | None = None
) -> dict:
    """One guarded step with ``optimizer`` (default ``adapter.optimizer``), tagged with the adapter's name."""
    record = (optimizer or adapter.optimizer).step(engine, method, loss_fn, check_x, check_target)
    record["adaptation"] = adapter.name
    return record
