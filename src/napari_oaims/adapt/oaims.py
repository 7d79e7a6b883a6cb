"""OAIMS: Mid-Interaction and Post-Interaction adaptation (seed 000 algorithm 1, GUIDE 3.3).

* MI, after each prompt ``c_t`` (from the second on): ``P_init = f(I, C_t)`` without gradient is
  the pseudo label, ``P_prev = f(I, C_{t-1})`` the prediction (recomputed with gradient on the
  same window); one step (its own Adam, ``mi_lr`` default 1e-4) on
  ``L_DF(P_prev, P_init) + beta L_CCG(P_prev, P_init, c_t)``. The session then predicts
  ``P_t = f(I, C_t)`` with the updated weights and shows it. MI learns from *corrections*:
  a click (or scribble) that agrees everywhere with the mask it would correct (a positive
  click inside it, a negative one outside) carries no error signal for ``P_prev`` and is not
  learned from (``mi_gate``, on by default). Every click of the seed 000 robot lies on an error,
  so there this is algorithm 1 exactly; it keeps MI from learning wrong-label clicks, which
  agree with the current mask by construction. While such a click is among the object's prompts
  MI also skips every later one (``mi_stop``, on by default): they are made around a mask that
  the suspect click shaped. Undo or clear lifts this; PI still learns from the accepted object.
  The suspect click also undoes the MI steps already taken on its object (``mi_rewind``, on by
  default; logged as an ``mi_rewind`` update): they were made before the user's clicks went
  wrong, but are what PI would otherwise have to repair (docs/NOTES.md, "Session 4").
  MI learns from an object's first ``mi_max_prompts`` prompts only (default 10, seed 000's T):
  later clicks polish the boundary and MI steps on them drift the model (docs/NOTES.md,
  "Session 8"); PI still learns from the accepted mask.
* PI, on ``accept()`` (per annotated plane): stage 1, predict from the localisation prompt only
  and take one step on ``L_DF(P_1, P_final)``; stage 2, one click per error component of
  ``P_1`` vs ``P_final`` (largest first, up to ``max_clicks``, at the component centre), predict
  from the localisation prompt plus those clicks and take one step on
  ``L_DF + beta L_CCG`` against ``P_final`` (Adam, ``lr`` default 1e-4). Where the object's
  prompts hold a click that corrected nothing (``Prompt.corrected`` False, what a wrong-label
  click looks like), ``L_DF`` leaves out the pixels of that click's label within ``pi_ignore``
  object diameters of it (default 0.5), and stage 2 makes no click there; when that is more than
  half the mask, PI skips the plane (a ``pi_skip`` record).
* Replay buffer (seed 003; on by default since session 18): the last ``replay_size`` (16)
  stage-2 samples (one per accepted object and plane); ``replay_k`` (2) of them, drawn from the
  adapter's seed, join each stage-2 batch against forgetting. ``replay_size=0`` turns it off.
* Ablations, off by default (docs/NOTES.md, sessions 3 and 6): ``pi_stage1=0`` / ``pi_stage2=0``
  skip a stage; ``pi_refresh=1`` makes stage-2 clicks from the model after the stage-1 step;
  ``pi_click_window=1`` trains stage 1 on the window a first click alone gets; ``pi_stage1_steps``
  takes more than one stage-1 step; ``early_objects=N:early_steps=K`` makes each PI stage take
  ``K`` steps on each of the first ``N`` objects accepted since the last reset (front-loads the
  learning of a new domain, docs/NOTES.md, "Session 10"); ``first_lr_scale=K`` multiplies PI's
  learning rate for the first encoder block (the low-level features that intensity shifts act on),
  ``norm_lr_scale=K`` for every GroupNorm's affine parameters (as TENT adapts norm layers only;
  the norm rate applies where both match);
  ``pi_views=V`` trains both stages on a batch of V views of the accepted object: the user's
  localisation click and V - 1 positive clicks drawn in the mask's inner half, each with its own
  window and generated corrections (still one step per stage, on a less noisy gradient);
  ``pi_sample_k=1`` gives stage 2 only the K largest error components' clicks, K ~ U{1..max_clicks}
  drawn from the adapter's seed, as pretraining does (seed 000 A.2 says PI simulates clicks "similar
  to training"; its algorithm 1, the default, takes one per component up to T). Off: it closed the
  50-click gap on edges only by making the 10-click run worse (docs/NOTES.md, "Session 18").

Boxes and scribbles feed the same machinery: for CCG, a scribble's pixels act as clicks of its
polarity and a box's outline pixels as negative clicks (they lie outside the object).
"""

from __future__ import annotations

import random
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from napari_oaims.core import guidance
from napari_oaims.model.losses import BETA, dice_focal, total_loss
from napari_oaims.simulate.robot import correction_clicks
from napari_oaims.core.prompts import Prompt
from napari_oaims.adapt.base import AcceptedObject, Adapter, AdapterReply, PlaneView, PromptUpdate
from napari_oaims.adapt.guard import LR, GuardedOptimizer

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.engine import Engine

MAX_CCG_POINTS = 16
#: Learning rate of the Mid-Interaction steps (the same as PI's by default, as in seed 000).
MI_LR = LR
#: MI learns from an object's first prompts only (seed 000's protocol has T = 10 clicks); later
#: clicks polish the boundary, and MI steps on 40 more of them per object drifted the model
#: (docs/NOTES.md, "Session 8"). PI still learns from the accepted mask. 0: no limit.
MI_MAX_PROMPTS = 10
#: PI does not learn the part of an accepted mask that a doubtful click vouches for: pixels of that
#: click's label within this many object diameters of it. A click is doubtful when it corrected
#: nothing (``Prompt.corrected`` is False), as a wrong-label click always does; the mask near it is
#: where the user's labels may be wrong. With 40% wrong-label clicks this lifted OAIMS from below the
#: frozen model at some clicks to above it at every click (docs/NOTES.md, "Sessions 15 and 16").
#: 0 turns it off. Only doubtful clicks trigger it, so with correcting clicks nothing changes.
PI_IGNORE = 0.5
#: PI skips an object's plane when less than this share of its mask is left to learn from.
PI_IGNORE_KEEP = 0.5
#: Stage-2 samples of the last objects kept for replay (seed 003). With 16 (two replayed per step)
#: later objects' first clicks no longer got worse when earlier objects took 50 clicks each, and
#: Dice@10 and NoC@0.85 improved on most shifts (docs/NOTES.md, "Session 18"). 0 turns it off.
REPLAY_SIZE = 16


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
    """OAIMS with Mid-Interaction (``mi``) and/or Post-Interaction (``pi``) updates."""

    def __init__(self, mi: bool = True, pi: bool = True, lr: float = LR, beta: float = BETA, max_clicks: int = 10,
                 replay_size: int = REPLAY_SIZE, replay_k: int = 2, seed: int = 0, mi_lr: float = MI_LR,
                 mi_own_optimizer: bool = True, anchor: float = 0.0, pi_stage1: bool = True,
                 pi_stage2: bool = True, pi_refresh: bool = False, mi_gate: bool = True,
                 mi_stop: bool = True, mi_rewind: bool = True, pi_click_window: bool = False,
                 pi_stage1_steps: int = 1, mi_max_prompts: int = MI_MAX_PROMPTS, early_objects: int = 0,
                 early_steps: int = 1, first_lr_scale: float = 1.0, norm_lr_scale: float = 1.0,
                 pi_views: int = 1, pi_ignore: float = PI_IGNORE, pi_sample_k: bool = False):
        self.mi, self.pi = mi, pi
        if pi_sample_k not in (0, 1):  # False / True
            raise ValueError(f"pi_sample_k must be 0 or 1, got {pi_sample_k}")
        self.pi_sample_k = bool(pi_sample_k)
        if not (np.isfinite(pi_ignore) and pi_ignore >= 0):
            raise ValueError(f"pi_ignore must be a number of object diameters >= 0, got {pi_ignore}")
        self.pi_ignore = float(pi_ignore)
        self.pi_views = _whole("pi_views", pi_views, 1)
        self.early_objects = _whole("early_objects", early_objects, 0)
        self.early_steps = _whole("early_steps", early_steps, 1)
        self._accepted = 0  # objects accepted since the last reset (for early_objects)
        self.mi_max_prompts = _whole("mi_max_prompts", mi_max_prompts, 0, " (0: no limit)")
        # Ablation: train PI on the window a first click alone gets at inference (when the final
        # mask fits in it) instead of one fitted around the final mask.
        self.pi_click_window = bool(pi_click_window)
        self.pi_stage1_steps = _whole("pi_stage1_steps", pi_stage1_steps, 1)  # ablation: seed 000 takes one step
        self.mi_rewind = bool(mi_rewind)
        self._object_start: tuple | None = None  # (first prompt, weights before its MI steps)
        self.mi_gate = bool(mi_gate)
        self.mi_stop = bool(mi_stop) and self.mi_gate
        self._suspect: Prompt | None = None  # the last prompt that corrected nothing (mi_stop)
        self.mi_lr = mi_lr
        self.mi_own_optimizer = bool(mi_own_optimizer)
        # MI and PI keep separate Adam moments by default: MI's frequent pseudo-label steps
        # otherwise inflate the second moments that scale PI's steps (docs/NOTES.md, "MI and PI").
        self.anchor = anchor
        self.pi_stage1, self.pi_stage2 = bool(pi_stage1), bool(pi_stage2)  # for ablations
        # Ablation: generate stage-2 clicks from P1 predicted *after* the stage-1 step (seed 000
        # uses P1 from before it), so that they point at the errors the model still makes.
        self.pi_refresh = bool(pi_refresh)
        self.mi_optimizer = GuardedOptimizer(mi_lr, anchor=anchor) if self.mi_own_optimizer else None
        self.name = "oaims" if (mi and pi) else "mi" if mi else "pi"
        self.beta = beta
        self.max_clicks = max_clicks
        self.first_lr_scale, self.norm_lr_scale = float(first_lr_scale), float(norm_lr_scale)
        scales = {}
        if self.norm_lr_scale != 1.0:
            scales["GroupNorm"] = self.norm_lr_scale
        if self.first_lr_scale != 1.0:
            scales[r"^encoders\.0\."] = self.first_lr_scale
        self.optimizer = GuardedOptimizer(lr, anchor=anchor, lr_scales=scales or None)
        self.replay_size, self.replay_k = replay_size, replay_k
        self.buffer: deque = deque(maxlen=max(replay_size, 1))
        self.seed = seed
        self._rng = random.Random(seed)

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "optimizer": "Adam", "lr": self.optimizer.lr, "mi_lr": self.mi_lr,
                "mi_own_optimizer": self.mi_own_optimizer, "anchor": self.anchor,
                "pi_stage1": self.pi_stage1, "pi_stage2": self.pi_stage2, "pi_refresh": self.pi_refresh,
                "pi_click_window": self.pi_click_window, "pi_stage1_steps": self.pi_stage1_steps,
                "mi_gate": self.mi_gate, "mi_stop": self.mi_stop, "mi_rewind": self.mi_rewind,
                "mi_max_prompts": self.mi_max_prompts, "early_objects": self.early_objects,
                "early_steps": self.early_steps, "first_lr_scale": self.first_lr_scale,
                "norm_lr_scale": self.norm_lr_scale, "pi_views": self.pi_views, "pi_ignore": self.pi_ignore,
                "pi_sample_k": self.pi_sample_k,
                "beta": self.beta,
                "max_clicks": self.max_clicks, "replay_size": self.replay_size, "replay_k": self.replay_k,
                "seed": self.seed}

    def reset(self) -> None:
        self.optimizer.reset()
        if self.mi_optimizer is not None:
            self.mi_optimizer.reset()
        self.buffer.clear()
        self._accepted = 0
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
            self._object_start = (ctx.previous[0], {k: v.detach().clone() for k, v in engine.model.state_dict().items()})
        x_prev = ctx.view.encode(ctx.previous, ctx.window)[None]
        x_new = ctx.view.encode(ctx.prompts, ctx.window)[None]
        pseudo = engine.predict(x_new) > 0  # P_init, no gradient
        clicks = [ccg_points(ctx.new, ctx.window)]
        target = _t(pseudo[:, None], engine.device)

        def loss_fn(model):
            return total_loss(model(_t(x_prev, engine.device)), target, clicks, beta=self.beta)

        opt = self.mi_optimizer or self.optimizer
        record = engine_step(self, engine, "mi", loss_fn, x_new, pseudo, lr=self.mi_lr, optimizer=opt)
        # The collapse check already predicted P_t = f(I, C_t) with the new weights: show that.
        return AdapterReply([record], None if opt.last_logits is None else opt.last_logits[0])

    def _rewind(self, engine: "Engine") -> dict:
        """Put back the weights from before this object's MI steps (``mi_rewind``), as an update record."""
        t0 = time.perf_counter()
        with engine.lock:
            record = {"method": "mi_rewind", "weights_before": engine.weights_hash, "loss": None,
                      "rolled_back": False, "reason": "a click that corrected nothing: this object's MI steps undone"}
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
        steps = self.early_steps if self._accepted < self.early_objects else 1
        self._accepted += 1
        for s, prompts, final in accepted.planes:
            first = next((p for p in prompts if p.positive), None)
            if first is None or not final.any():
                continue
            views = [self._view(s, click, final) for click in [first] + self._extra_views(final)]
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

            if self.pi_stage1:
                for _ in range(max(self.pi_stage1_steps, steps)):
                    records.append(engine_step(self, engine, "pi_stage1", stage1, x1, targets_np))
            if not self.pi_stage2:
                continue
            if self.pi_refresh or not self.pi_stage1:  # P1 from the current weights
                p1["mask"] = engine.predict(x1) > 0
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
                return total_loss(model(_t(bx_np, engine.device)), _t(bt_np[:, None], engine.device), batch_c,
                                  beta=self.beta, weight=weight2)

            check_x, check_t = np.stack(batch_x[: len(views)]), np.stack(batch_t[: len(views)])
            for _ in range(steps):
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
            return (f"clicks that corrected nothing vouch for {1 - kept:.0%} of the object's mask: "
                    "not learnt from")
        return None

    def _skip_record(self, engine: "Engine", reason: str) -> dict:
        """An update record for an object PI leaves alone (the weights do not change)."""
        return {"method": "pi_skip", "weights_before": engine.weights_hash, "weights_after": engine.weights_hash,
                "loss": None, "rolled_back": False, "reason": reason, "adaptation": self.name, "latency_ms": 0.0}

    def _extra_views(self, final: np.ndarray) -> list[Prompt]:
        """``pi_views - 1`` more localisation clicks, drawn in the inner half of the accepted mask."""
        if self.pi_views <= 1:
            return []
        from scipy import ndimage

        dist = ndimage.distance_transform_edt(np.pad(final, 1))[1:-1, 1:-1]
        inner = np.argwhere(dist >= 0.5 * dist.max())
        picks = [inner[self._rng.randrange(len(inner))] for _ in range(self.pi_views - 1)]
        return [Prompt("click", True, np.asarray(yx, int)[None]) for yx in picks]

    def _view(self, s: PlaneView, click: Prompt, final: np.ndarray) -> dict:
        """Window, working-size target, stage-1 input and CCG points for one localisation click."""
        bbox = _mask_bbox(final)
        window = s.window([click], bbox)
        return {"click": click, "window": window, "target": work_target(final, window),
                "x1": s.encode([click], window), "ccg": ccg_points(click, window)}

    def _corrected_view(self, s: PlaneView, view: dict, p1: np.ndarray) -> tuple[np.ndarray, list]:
        """Stage-2 input and CCG points: the localisation click plus one click per error of ``p1``."""
        window = view["window"]
        n = self.max_clicks
        if self.pi_sample_k and n >= 1:  # K ~ U{1..max_clicks}, as in pretraining (seed 000 A.2)
            n = self._rng.randint(1, n)
        generated = correction_clicks(p1, view["target"], n, mode="center")
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


def _whole(name: str, value, low: int, note: str = "") -> int:
    """``value`` as an int, or a ValueError naming the setting unless it is a whole number >= ``low``."""
    if not (np.isfinite(value) and value == int(value) and value >= low):
        raise ValueError(f"{name} must be a whole number >= {low}{note}, got {value}")
    return int(value)


def _mask_bbox(mask: np.ndarray):
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)


def engine_step(adapter, engine, method, loss_fn, check_x, check_target, lr: float | None = None,
                optimizer: GuardedOptimizer | None = None) -> dict:
    """One guarded step with ``optimizer`` (default ``adapter.optimizer``), tagged with the adapter's name."""
    record = (optimizer or adapter.optimizer).step(engine, method, loss_fn, check_x, check_target, lr=lr)
    record["adaptation"] = adapter.name
    return record
