"""OAIMS: Mid-Interaction and Post-Interaction adaptation (Xu et al., *You Point, I Learn*, algorithm 1).

The model learns while the user annotates, from two kinds of update, each one guarded step
(:class:`~napari_oaims.adapt.guard.GuardedOptimizer`: a harmful step is refused or rolled back).
After every update the guard asks the adapted model what it now answers (see
:mod:`napari_oaims.adapt.guard`): the current object's clicks, its first click alone, and the
:data:`~napari_oaims.adapt.guard.PROBES` most recently accepted objects from their first prompt.
An MI step is checked on the current object with all its prompts (the forward pass that makes
the mask shown anyway) and on one more image: in turn the object's first prompt alone and one of
the accepted objects. A PI update is checked on the current object and all accepted objects,
once, after its last stage (a violation undoes both stages).

What the user told the model, and how much each part weighs:

* a correction click is certain: its pixel and neighbourhood carry the CCG loss (beta = 200);
* what a correction changed in the mask (pixels where the accepted mask differs from the model's
  first-click answer ``P_1``, and :data:`VOUCHED_RADIUS` working pixels around them and around the
  user's clicks) is certain: weight 1 in PI's ``L_DF``;
* what the user accepted untouched is weak evidence ("good enough"): weight :data:`UNVOUCHED` in
  PI's ``L_DF``; an object accepted with no correction at all is the model's own answer and is
  not learnt from (a ``pi_skip`` record), though it joins the guard's questions;
* MI's pseudo label is the model's own answer: MI learns from it only next to a click that
  corrected the mask (``mi_gate``), and not at all when it answers one of the user's positive
  clicks as background (an ``mi_skip`` record): a negative click that wipes out a flooded mask
  would otherwise teach that a positive click means nothing, the way MI learns "background
  everywhere".

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
  ``L_DF + beta L_CCG`` against ``P_final`` (Adam, rate ``lr``), both weighted by what the user
  vouched for (above). PI runs only when a prompt of the plane corrected the mask: for a preview
  accepted untouched the errors of ``P_1`` are slivers of the model's own answer, and clicks there
  teach it to cut its masks (a ``pi_skip`` record). Where the object's prompts hold a click that corrected nothing,
  ``L_DF`` leaves out the pixels of that click's label within ``pi_ignore`` object diameters of
  it and stage 2 makes no click there; when that is more than half the mask, PI skips the plane
  (a ``pi_skip`` record).
* **Replay** (the replay buffer of Tian, Chen and Gao, *A Dynamic Interactive Learning Framework
  for Automated 3D Medical Image Segmentation*): the last ``replay_size`` stage-2 samples (one per accepted object and
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
``mi_check`` [on], ``mi_check_se`` [None: 2 for MI alone, 0 with PI]
    At accept, the object's MI steps are kept only if the :data:`HELD` most recently accepted
    objects (their first prompt alone) are answered better with them: a mean Dice gain at least
    ``mi_check_se`` standard errors of the per-object gains above zero (0: no worse on average).
    Else they are undone (an ``mi_rewind`` update) before PI learns from the object.
``mi_check_first`` [None: on for MI alone, off with PI]
    The session's first object has no accepted objects to ask: its MI steps are undone.

    Without PI, steps that pass a check of eight objects by chance (or the first object's, which
    nothing checks), kept object after object, lowered the first answers of later objects on
    shifted images. With PI, which learns from the accepted mask after them, the stricter rules
    cost OAIMS: 1.3 points of its first-click gain on edges under one standard error.
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
from napari_oaims.adapt.guard import (
    PROBES,
    GuardedOptimizer,
    Probe,
    better,
    clicks_right,
    dice_with,
    engine_step,
    skip_record,
)
from napari_oaims.adapt.settings import OAIMSSettings
from napari_oaims.adapt.targets import PlaneTarget, ccg_points, leave_out, loss_weights, near_clicks, work_target
from napari_oaims.core import geometry
from napari_oaims.core.clicks import correction_clicks
from napari_oaims.core.overlap import dice
from napari_oaims.core.progress import Cancelled, CancelLike, check_cancel
from napari_oaims.core.prompts import Prompt
from napari_oaims.model.device import as_tensor
from napari_oaims.model.losses import dice_focal, total_loss

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.engine import Engine

#: Weight of what the user accepted without correcting it, against 1 for what a correction fixed:
#: PI's loss weight on pixels its first-click answer already had right, far from the user's clicks.
UNVOUCHED = 0.25
#: Around a pixel a correction changed, and around each of the user's clicks, this many working
#: pixels count as vouched for (the CCG Gaussian's 3 sigma).
VOUCHED_RADIUS = 9
#: How many recently accepted objects ``mi_check`` asks before it keeps an object's MI steps.
HELD = 8


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
        #: Recently accepted objects every update is checked on (see :mod:`napari_oaims.adapt.guard`).
        self.probes: deque[Probe] = deque(maxlen=PROBES)
        #: Recently accepted objects ``mi_check`` asks (a longer memory than the per-step check's).
        self.held: deque[Probe] = deque(maxlen=HELD)
        self._turn = 0  # which accepted object the next MI step is checked on
        self._first: tuple | None = None  # (first prompt, its Probe before any MI step, window)

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "optimizer": "Adam", **asdict(self.config)}

    def reset(self) -> None:
        self.optimizer.reset()
        self.mi_optimizer.reset()
        self.buffer.clear()
        self.probes.clear()
        self.held.clear()
        self._turn = 0
        self._first = None
        self._suspect = None
        self._object_start = None

    # -- Mid-Interaction ----------------------------------------------------------------------
    def on_prompt(self, engine: "Engine", ctx: PromptUpdate) -> AdapterReply:
        if not self.config.mi or not any(p.positive or p.kind in ("box", "prior") for p in ctx.previous):
            return AdapterReply()  # MI starts with the second prompt (t >= 2)
        if self.config.mi_max_prompts and len(ctx.prompts) > self.config.mi_max_prompts:
            return AdapterReply()  # past the object's first mi_max_prompts prompts: PI still learns from it
        if self._suspect is not None and any(p is self._suspect for p in ctx.previous):
            return AdapterReply()  # a suspect prompt is still in place (mi_stop); undo or clear lifts this
        if self.config.mi_gate and ctx.new.corrected is False:
            if self.config.mi_stop:
                self._suspect = ctx.new
            if self.config.mi_rewind and self._object_start is not None and self._object_start[0] is ctx.previous[0]:
                return AdapterReply([self._rewind(engine)])
            return AdapterReply()  # nothing for P_prev to learn from this prompt
        keeps_start = self.config.mi_rewind or self.config.mi_check
        if keeps_start and (self._object_start is None or self._object_start[0] is not ctx.previous[0]):
            self._object_start = (
                ctx.previous[0],
                {k: v.detach().clone() for k, v in engine.model.state_dict().items()},
            )
        x_prev = ctx.view.encode(ctx.previous, ctx.window)[None]
        x_new = ctx.view.encode(ctx.prompts, ctx.window)[None]
        pseudo = engine.predict(x_new) > 0  # P_init, no gradient
        own = [c for p in ctx.prompts for c in ccg_points(p, ctx.window)]
        positive = [c for p in ctx.prompts if p.kind == "click" and p.positive for c in ccg_points(p, ctx.window)]
        if clicks_right(pseudo[0], positive) < len(positive):
            # The pseudo label answers a positive click of the user as background: learning it
            # would teach that the object's own clicks mean nothing (how MI learns "background
            # everywhere" from negative clicks that wipe out a flooded mask).
            return AdapterReply([skip_record(self, engine, "the pseudo label drops a positive click", "mi_skip")])
        clicks = [ccg_points(ctx.new, ctx.window)]
        target = as_tensor(pseudo[:, None], engine.device)

        starts = len(ctx.previous) == 1 and (self._first is None or self._first[0] is not ctx.previous[0])
        answered: dict = {}

        def loss_fn(model):
            logits = model(as_tensor(x_prev, engine.device))
            answered.setdefault("first", (logits.detach()[0, 0] > 0).cpu().numpy())  # f(I, C_{t-1}) before
            return total_loss(logits, target, clicks, beta=self.config.beta)

        if starts:  # the object's first MI step: its first prompt alone, as answered before any learning
            self._first = (ctx.previous[0], None, ctx.window)
        opt = self.mi_optimizer

        def questions() -> list[Probe]:
            """The current object with all its prompts, then its first prompt alone or an accepted object."""
            if starts:
                first = tuple(ccg_points(ctx.previous[0], ctx.window))
                self._first = (ctx.previous[0], Probe(x_prev[0], first, answered["first"]), ctx.window)
            extra = []  # one more image in the check pass: the first prompt and accepted objects in turn
            if self._first is not None and self._first[0] is ctx.prompts[0] and self._first[1] is not None:
                extra.append(self._first[1])
            if self.probes:
                extra.append(self.probes[(self._turn // 2) % len(self.probes)])
            out = [Probe(None, tuple(own), pseudo[0])]  # x_new, answered before the step
            if extra:
                out.append(extra[self._turn % len(extra)])
                self._turn += 1
            return out

        record = engine_step(self, engine, "mi", loss_fn, x_new, pseudo, optimizer=opt, probes=questions)
        # The collapse check already predicted P_t = f(I, C_t) with the new weights: show that.
        return AdapterReply([record], None if opt.last_logits is None else opt.last_logits[0])

    def _rewind(self, engine: "Engine", reason: str = "a click that corrected nothing") -> dict:
        """Put back the weights from before this object's MI steps, as an ``mi_rewind`` update record."""
        t0 = time.perf_counter()
        with engine.lock:
            record = {
                "method": "mi_rewind",
                "weights_before": engine.weights_hash,
                "loss": None,
                "rolled_back": False,
                "reason": f"{reason}: this object's MI steps undone",
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
        """PI on each plane of ``accepted``. ``accepted.cancel`` is checked before each plane and
        between the two stages; a cancelled update puts back the weights, Adam moments, replay
        buffer and questions it changed, and raises :class:`~napari_oaims.core.progress.Cancelled`."""
        undo = self._accept_state(engine) if accepted.cancel is not None else None
        try:
            return self._accept(engine, accepted)
        except Cancelled:
            if undo is not None:
                self._restore_accept_state(engine, undo)
            raise

    def _accept_state(self, engine: "Engine") -> dict:
        """What an accept update changes: the optimiser's snapshot and step size, the buffers."""
        return {
            "optimizer": self.optimizer.state(engine),
            "buffer": list(self.buffer),
            "probes": list(self.probes),
            "held": list(self.held),
            "first": self._first,
            "object_start": self._object_start,
            "rng": self._rng.getstate(),
        }

    def _restore_accept_state(self, engine: "Engine", state: dict) -> None:
        self.optimizer.set_state(engine, state["optimizer"])
        self.buffer.clear()
        self.buffer.extend(state["buffer"])
        self.probes.clear()
        self.probes.extend(state["probes"])
        self.held.clear()
        self.held.extend(state["held"])
        self._first = state["first"]
        self._object_start = state["object_start"]
        self._rng.setstate(state["rng"])

    def _check_mi(self, engine: "Engine", accepted: AcceptedObject) -> list[dict]:
        """``mi_check``: keep the accepted object's MI steps only if the recently accepted objects,
        asked with their first prompt alone, are answered better with them than without: their
        mean Dice gain (against their accepted masks) at least ``mi_check_se`` standard errors of
        the per-object gains above zero (0: no worse on average). Else put back the weights from
        before them. With no accepted object to ask (the session's first), the steps cannot be
        checked and are not kept (``mi_check_first``)."""
        start = self._object_start
        if not self.config.mi_check or start is None:
            return []
        if not any(prompts and prompts[0] is start[0] for _, prompts, _ in accepted.planes):
            return []
        if not self.held:
            return [self._rewind(engine, "no accepted object to check them on")] if self.config.check_first else []
        after, before = dice_with(engine, list(self.held), start[1])
        if better(after - before, self.config.check_se):
            self._object_start = None
            return []
        why = (
            f"the accepted objects' first answers were not better with them (mean Dice {after.mean():.3f} "
            f"against {before.mean():.3f})"
        )
        return [self._rewind(engine, why)]

    def _accept(self, engine: "Engine", accepted: AcceptedObject) -> list[dict]:
        records = self._check_mi(engine, accepted)
        for s, prompts, final in accepted.planes:
            check_cancel(accepted.cancel)
            first = next((p for p in prompts if p.positive), None)
            if first is None or not final.any():
                continue
            views = [self._view(s, first, final)]
            if not self.config.pi:  # MI only: the object joins the guard's questions
                if not self._remember_first(prompts, final):
                    self._remember(views[0], engine.predict(views[0].x1[None])[0] > 0)
                continue
            doubtful = [p for p in prompts if p.corrected is False]
            if self.config.pi_ignore and doubtful:
                skip = leave_out(views, doubtful, final, self.config.pi_ignore)
                if skip is not None:
                    records.append(skip_record(self, engine, skip))
                    continue
            records += self._pi_plane(engine, s, prompts, views, final, accepted.cancel)
        return records

    def _pi_plane(
        self,
        engine: "Engine",
        s: PlaneView,
        prompts: list[Prompt],
        views: list[PlaneTarget],
        final: np.ndarray,
        cancel: CancelLike = None,
    ) -> list[dict]:
        """PI on one plane of an accepted object: nothing when no prompt corrected the mask, else
        stage 1, stage 2 and the answer check on stage 2 (a violation undoes both); then the object
        joins the guard's questions."""
        view = views[0]
        corrected = any(p.corrected for p in prompts)
        x1 = np.stack([v.x1 for v in views])
        targets_np = np.stack([v.target for v in views])
        target = as_tensor(targets_np[:, None], engine.device)
        ignore = loss_weights([v.weight for v in views], engine.device)
        points = [c for p in prompts for c in ccg_points(p, view.window)]
        near = as_tensor(near_clicks(points, VOUCHED_RADIUS)[None, None], engine.device)
        p1: dict = {}

        def stage1(model):
            logits = model(as_tensor(x1, engine.device))
            first = logits.detach() > 0
            p1.setdefault("mask", first[:, 0].cpu().numpy())  # P1 before the update
            # What the corrections changed, and the user's clicks, count fully; the rest is what the
            # user accepted untouched.
            changed = torch.nn.functional.max_pool2d(
                (first != (target > 0.5)).float(), 2 * VOUCHED_RADIUS + 1, stride=1, padding=VOUCHED_RADIUS
            )
            vouched = torch.where((changed > 0) | (near > 0), 1.0, UNVOUCHED)
            p1.setdefault("vouched", vouched[:, 0].cpu().numpy())
            return dice_focal(logits, target, weight=vouched if ignore is None else vouched * ignore)

        def questions() -> list[Probe]:
            """The current object (its first click alone, all its prompts) and the accepted objects."""
            mine = [Probe(view.x1, tuple(view.ccg), p1["mask"][0])]
            if len(prompts) > 1:
                x_all = s.encode(prompts, view.window)
                pts = tuple(c for p in prompts for c in ccg_points(p, view.window))
                mine.append(Probe(x_all, pts, view.target))
            return mine + list(self.probes)

        if not corrected:
            # An accepted preview nobody corrected is the model's own answer, "good enough": it is
            # not learnt from (learning it feeds the model its own errors: stage 2's clicks on the
            # slivers between two of its answers teach it to cut its masks, and stage 1 alone lost
            # 1-3 points of Dice@1 on shifted images). It still joins the guard's questions.
            if not self._remember_first(prompts, final):
                self._remember(view, engine.predict(x1[:1])[0] > 0)
            return [skip_record(self, engine, "no correction: an accepted preview is the model's own answer")]
        snap = self.optimizer.snapshot(engine)
        first_record = engine_step(self, engine, "pi_stage1", stage1, x1, targets_np)
        check_cancel(cancel)
        batch_x, batch_t, batch_c, batch_w = [], [], [], []
        for v, mask, vouched in zip(views, p1["mask"], p1["vouched"]):
            if v.weight is not None:  # no generated clicks where PI does not learn
                mask = np.where(v.weight > 0, mask, v.target)
            x2, clicks2 = self._corrected_view(s, v, mask)
            batch_x.append(x2)
            batch_t.append(v.target)
            batch_c.append(clicks2)
            batch_w.append(vouched if v.weight is None else vouched * v.weight)
        own = (batch_x[0], batch_t[0], batch_c[0], batch_w[0])  # the user's own click: what replay keeps
        if self.config.replay_size and self.buffer:
            for bx, bt, bc, bw in self._rng.sample(list(self.buffer), min(self.config.replay_k, len(self.buffer))):
                batch_x.append(bx)
                batch_t.append(bt)
                batch_c.append(bc)
                batch_w.append(bw)
        bx_np, bt_np = np.stack(batch_x), np.stack(batch_t)
        weight2 = loss_weights(batch_w, engine.device)

        def stage2(model):
            return total_loss(
                model(as_tensor(bx_np, engine.device)),
                as_tensor(bt_np[:, None], engine.device),
                batch_c,
                beta=self.config.beta,
                weight=weight2,
            )

        check_x, check_t = np.stack(batch_x[: len(views)]), np.stack(batch_t[: len(views)])
        last = engine_step(self, engine, "pi_stage2", stage2, check_x, check_t, probes=questions, restore=snap)
        why = self.optimizer.last_rollback
        undone = why is not None and why.undone
        if undone and not first_record["rolled_back"]:
            first_record["undone_by"] = "pi_stage2"  # the check undid stage 1 too
        if self.config.replay_size and not last["rolled_back"]:
            self.buffer.append(own)
        if not self._remember_first(prompts, final):
            self._remember(view, self._answer(engine, last, view, p1, undone))
        return [first_record, last]

    def _answer(self, engine: "Engine", record: dict, view: PlaneTarget, p1: dict, undone: bool) -> np.ndarray:
        """The answer (S, S) bool to the object's first click alone with the weights now (``undone``:
        stage 2 was taken and undone, back to the weights before stage 1)."""
        logits = self.optimizer.probe_logits
        if not record["rolled_back"] and logits is not None:
            return logits[0] > 0
        if undone:
            return p1["mask"][0]  # back to the weights before stage 1, which answered P_1
        return engine.predict(view.x1[None])[0] > 0

    def _remember_first(self, prompts: list[Prompt], final: np.ndarray) -> bool:
        """Add the accepted object to the guard's questions as MI first saw it (its first prompt
        alone, answered before this object's MI steps); False when MI took no step on it."""
        if self._first is None or self._first[1] is None or not prompts or self._first[0] is not prompts[0]:
            return False
        probe, window = self._first[1], self._first[2]
        target = work_target(final, window)
        self._ask(Probe(probe.x, probe.clicks, probe.before, target, dice(probe.before, target)))
        self._first = None
        return True

    def _remember(self, view: PlaneTarget, answer: np.ndarray) -> None:
        """Add an accepted object to the guard's questions: its first click, accepted mask, and the
        Dice of the answer the weights give it now."""
        self._ask(Probe(view.x1, tuple(view.ccg), answer, view.target, dice(answer, view.target)))

    def _ask(self, probe: Probe) -> None:
        """An accepted object joins the guard's questions and those of ``mi_check``."""
        self.probes.append(probe)
        self.held.append(probe)

    def _view(self, s: PlaneView, click: Prompt, final: np.ndarray) -> PlaneTarget:
        """Window, working-size target, stage-1 input and CCG points for one localisation click."""
        bbox = geometry.bbox(final)
        window = s.window([click], bbox)
        return PlaneTarget(
            click, window, work_target(final, window), s.encode([click], window), ccg_points(click, window)
        )

    def _corrected_view(self, s: PlaneView, view: PlaneTarget, p1: np.ndarray) -> tuple[np.ndarray, list]:
        """Stage-2 input and CCG points: the localisation click plus one click per error of ``p1``."""
        window = view.window
        generated = correction_clicks(p1, view.target, self.config.max_clicks, mode="center")
        # Generated clicks are in working coordinates; map them back to plane pixels.
        extra = []
        for c in generated:
            yx = (np.array([c.y, c.x]) + 0.5) / window.scale - 0.5 + np.array([window.y0, window.x0])
            extra.append(Prompt("click", c.positive, np.rint(yx).astype(int)[None]))
        x2 = s.encode([view.click] + extra, window)
        return x2, view.ccg + [(float(c.y), float(c.x), c.positive) for c in generated]
