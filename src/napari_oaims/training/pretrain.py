"""Pretraining of the click model on procedural data (seed 000 algorithm 2, GUIDE 3.2).

For each synthetic sample: a localisation click (or, sometimes, a short scribble) inside the
target, a prediction without gradient, one click per error component ranked by size, optionally
a second such round (iterative simulation), ``K ~ U{1..10}`` clicks in total, then one gradient
step on Dice-Focal + beta CCG. A prior mask (perturbed ground truth, or a soft box) is given to
some samples. Checkpoints every ``checkpoint_every`` steps; ``resume`` continues bit-exactly
from the last one.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from napari_oaims.core import guidance
from napari_oaims.core.progress import Cancelled, CancelLike, Progress, cancel_requested, emit
from napari_oaims.model import ClickUNet, save_weights
from napari_oaims.model.losses import ALPHA, BETA, CCG_SIGMA, total_loss
from napari_oaims.simulate.clicks import click_in_region, correction_clicks
from napari_oaims.training import synth


@dataclass
class TrainConfig:
    """Everything that defines a training run (recorded in the exported weights config)."""

    steps: int = 2000
    batch_size: int = 8
    lr: float = 2e-3
    seed: int = 0
    channels: tuple[int, ...] = (16, 32, 64, 128)
    max_clicks: int = 10
    p_prior_mask: float = 0.2
    p_box: float = 0.15
    p_scribble: float = 0.1
    p_second_round: float = 0.5
    #: Extra share of samples trained with the localisation click alone (budget 1). With
    #: ``K ~ U{1..max_clicks}`` only 1 in ``max_clicks`` samples teaches the first-click answer.
    p_single_click: float = 0.0
    #: Decay of an exponential moving average of the weights (Polyak averaging); 0 turns it off.
    #: When on, the averaged weights are what ``train`` returns and ``export`` writes.
    ema: float = 0.0
    #: Share of batches whose corrections follow the benchmark robot instead of algorithm 2's
    #: rounds: one click per round at the centre (distance-transform maximum) of the largest error
    #: component, predicting after each, so clicks land on rims, near boundaries and in thin
    #: error strips of an already good mask, up to ``robot_rounds`` rounds. 0 (default): none,
    #: and no extra random draw.
    p_robot_rounds: float = 0.0
    robot_rounds: int = 4
    #: Share of samples (with room for a second click) whose first correction is the robot's
    #: click on a thin rim: the target grown (more often) or shrunk by 1-3 px stands in for the
    #: first answer, so the click lies just outside or inside the boundary and the target says the
    #: boundary moves there, not that the object is carved. 0 (default): none, and no extra draw.
    p_rim_click: float = 0.0
    checkpoint_every: int = 100
    threads: int = 2
    init: str | None = None  # start from these weights (a fine-tuning stage) instead of random
    synth: synth.SynthSettings = field(default_factory=synth.SynthSettings)

    def __post_init__(self) -> None:
        if not 0.0 <= self.p_single_click <= 1.0:
            raise ValueError(f"p_single_click must lie in [0, 1], got {self.p_single_click}")
        if not 0.0 <= self.p_robot_rounds <= 1.0:
            raise ValueError(f"p_robot_rounds must lie in [0, 1], got {self.p_robot_rounds}")
        if not 0.0 <= self.p_rim_click <= 1.0:
            raise ValueError(f"p_rim_click must lie in [0, 1], got {self.p_rim_click}")
        if self.robot_rounds < 1:
            raise ValueError(f"robot_rounds must be >= 1, got {self.robot_rounds}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must lie in [0, 1), got {self.ema}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d


def _perturbed_prior(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """Ground truth made wrong: shifted, dilated or eroded, elastically deformed."""
    m = ndimage.shift(mask.astype(np.float32), rng.normal(0, 3, size=2), order=0) > 0.5
    k = int(rng.integers(-3, 4))
    if k > 0:
        m = ndimage.binary_dilation(m, iterations=k)
    elif k < 0:
        m = ndimage.binary_erosion(m, iterations=-k)
    if rng.random() < 0.5:
        m = synth._elastic(rng, m, strength=rng.uniform(1, 4))
    return m.astype(np.float32)


def _box_prior(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    jit = rng.uniform(-0.1, 0.15, size=4) * np.array([h, w, h, w])
    box = (ys.min() - jit[0], xs.min() - jit[1], ys.max() + 1 + jit[2], xs.max() + 1 + jit[3])
    return guidance.box_prior(box, mask.shape[0])


def _scribble(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """A short piece of the target's skeleton, as (N, 2) pixels."""
    from skimage.morphology import skeletonize

    skel = np.argwhere(skeletonize(mask))
    if len(skel) == 0:
        return np.argwhere(mask)[:1]
    centre = skel[int(rng.integers(len(skel)))]
    radius = rng.uniform(3, 15)
    return skel[np.hypot(*(skel - centre).T) <= radius]


@dataclass
class _Sample:
    image: np.ndarray
    target: np.ndarray
    prior: np.ndarray | None
    pos: list = field(default_factory=list)  # working coords (y, x)
    neg: list = field(default_factory=list)
    scribble: np.ndarray | None = None

    def channels(self) -> np.ndarray:
        pos = np.asarray(self.pos, float).reshape(-1, 2)
        if self.scribble is not None:
            pos = np.concatenate([pos, self.scribble])
        return guidance.encode(self.image, pos, np.asarray(self.neg, float).reshape(-1, 2), self.prior)

    def ccg_clicks(self) -> list[tuple[float, float, bool]]:
        clicks = [(y, x, True) for y, x in self.pos] + [(y, x, False) for y, x in self.neg]
        if self.scribble is not None:
            clicks += [(y, x, True) for y, x in self.scribble[:: max(1, len(self.scribble) // 4)]]
        return clicks


def _new_sample(rng: np.random.Generator, cfg: TrainConfig) -> _Sample:
    while True:
        image, labels = synth.sample(rng, cfg.synth)
        if labels.max() > 0:
            break
    target = labels == int(rng.integers(1, labels.max() + 1))
    lo, hi = guidance.robust_range(image)
    norm = guidance.normalise(image, lo, hi)
    # Windows at inference are normalised with whole-image statistics: vary contrast and offset.
    norm = norm * rng.uniform(0.6, 1.4) + rng.uniform(-0.15, 0.15)
    r = rng.random()
    prior = None
    if r < cfg.p_prior_mask:
        prior = _perturbed_prior(rng, target)
    elif r < cfg.p_prior_mask + cfg.p_box:
        prior = _box_prior(rng, target)
    s = _Sample(norm.astype(np.float32), target, prior)
    if rng.random() < cfg.p_scribble:
        s.scribble = _scribble(rng, target).astype(float)
    else:
        s.pos.append(click_in_region(target, rng, "random" if rng.random() < 0.5 else "edt"))
    return s


def _predict(model: torch.nn.Module, samples: list[_Sample]) -> np.ndarray:
    x = torch.from_numpy(np.stack([s.channels() for s in samples]))
    with torch.no_grad():
        return (model(x)[:, 0] > 0).numpy()


def make_batch(model: torch.nn.Module, rng: np.random.Generator, cfg: TrainConfig) -> list[_Sample]:
    """Samples with iteratively simulated clicks (one or two rounds of error clicks)."""
    samples = [_new_sample(rng, cfg) for _ in range(cfg.batch_size)]
    budgets = rng.integers(1, cfg.max_clicks + 1, size=len(samples))
    if cfg.p_single_click > 0:
        budgets[rng.random(len(samples)) < cfg.p_single_click] = 1
    if cfg.p_rim_click > 0:
        for s, budget in zip(samples, budgets):
            if budget >= 2 and rng.random() < cfg.p_rim_click:
                _rim_click(rng, s)
    if cfg.p_robot_rounds > 0 and rng.random() < cfg.p_robot_rounds:
        _robot_rounds(model, samples, budgets, cfg.robot_rounds)
        return samples
    rounds = 2 if rng.random() < cfg.p_second_round else 1
    for _ in range(rounds):
        active = [i for i, s in enumerate(samples) if len(s.pos) + len(s.neg) < budgets[i]]
        if not active:
            break
        preds = _predict(model, [samples[i] for i in active])
        for i, pred in zip(active, preds):
            s = samples[i]
            room = int(budgets[i]) - len(s.pos) - len(s.neg)
            clicks = correction_clicks(pred, s.target, room, rng, mode="random" if rng.random() < 0.5 else "edt")
            for c in clicks:
                (s.pos if c.positive else s.neg).append((c.y, c.x))
    return samples


def _rim_click(rng: np.random.Generator, s: _Sample) -> None:
    """Add a click on a thin rim error (the target grown or shrunk by 1-3 px), deep in the rim."""
    k = int(rng.integers(1, 4))
    if rng.random() < 0.7:
        wrong = ndimage.binary_dilation(s.target, iterations=k)
    else:
        wrong = ndimage.binary_erosion(s.target, iterations=k)
        if not wrong.any():
            return
    for c in correction_clicks(wrong, s.target, 1, rng, mode="edt"):
        (s.pos if c.positive else s.neg).append((c.y, c.x))


def _robot_rounds(model: torch.nn.Module, samples: list[_Sample], budgets: np.ndarray, rounds: int) -> None:
    """Corrections as the benchmark robot makes them: per round one click at the centre of the
    largest error component of the current prediction, then a new prediction."""
    for _ in range(rounds):
        active = [i for i, s in enumerate(samples) if len(s.pos) + len(s.neg) + (s.scribble is not None) < budgets[i]]
        if not active:
            break
        for i, pred in zip(active, _predict(model, [samples[i] for i in active])):
            clicks = correction_clicks(pred, samples[i].target, 1, mode="center")
            for c in clicks:
                (samples[i].pos if c.positive else samples[i].neg).append((c.y, c.x))


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    resume: bool = True,
    progress: Progress | None = None,
    cancel: CancelLike = None,
    stop_after: int | None = None,
) -> ClickUNet:
    """Train (or resume) into ``out_dir``; checkpoints ``last.pt`` and logs ``log.jsonl`` there.

    ``stop_after`` ends the run at that step of the ``cfg.steps`` schedule (the learning-rate
    schedule is still the one of ``cfg.steps``). ``progress(step, steps, "loss 0.123")`` after each
    step; ``cancel`` is checked before each: the run writes its checkpoint (a later call resumes
    there) and raises :class:`~napari_oaims.core.progress.Cancelled`.
    With ``cfg.ema`` the returned model holds the moving average of the weights.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)  # denormal floats make CPU convolutions several times slower
    torch.manual_seed(cfg.seed)
    model = ClickUNet(4, cfg.channels)
    if cfg.init:
        from napari_oaims.model import load_weights

        init_model, _ = load_weights(cfg.init)
        model.load_state_dict(init_model.state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.05)
    averaged = None
    if cfg.ema > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema))
    rng = np.random.default_rng(cfg.seed)
    step, wall = 0, 0.0
    ckpt = out / "last.pt"
    if resume and ckpt.is_file():
        state = torch.load(ckpt, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        if averaged is not None:
            averaged.load_state_dict(state["ema"])
        torch.set_rng_state(state["torch_rng"])
        meta = json.loads((out / "last.json").read_text())
        rng.bit_generator.state = meta["numpy_rng"]
        step, wall = meta["step"], meta["wall_s"]
    log = (out / "log.jsonl").open("a")

    def checkpoint() -> None:
        log.flush()
        tmp = out / "last.pt.tmp"
        state = {
            "model": model.state_dict(),
            "opt": opt.state_dict(),
            "sched": sched.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        if averaged is not None:
            state["ema"] = averaged.state_dict()
        torch.save(state, tmp)
        tmp.replace(ckpt)
        (out / "last.json").write_text(
            json.dumps({"step": step, "wall_s": wall, "numpy_rng": rng.bit_generator.state, "config": cfg.to_dict()})
        )

    model.train()
    last = min(cfg.steps, stop_after or cfg.steps)
    while step < last:
        if cancel_requested(cancel):
            checkpoint()
            log.close()
            raise Cancelled(f"training cancelled at step {step}; the checkpoint in {out} resumes it")
        t0 = time.perf_counter()
        samples = make_batch(model, rng, cfg)
        x = torch.from_numpy(np.stack([s.channels() for s in samples]))
        y = torch.from_numpy(np.stack([s.target for s in samples]).astype(np.float32))[:, None]
        logits = model(x)
        loss = total_loss(logits, y, [s.ccg_clicks() for s in samples], ALPHA, BETA, CCG_SIGMA)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if averaged is not None:
            averaged.update_parameters(model)
        step += 1
        wall += time.perf_counter() - t0
        log.write(json.dumps({"step": step, "loss": loss.item(), "wall_s": round(wall, 2)}) + "\n")
        emit(progress, step, cfg.steps, f"loss {loss.item():.3f}")
        if step % cfg.checkpoint_every == 0 or step == last:
            checkpoint()
    log.close()
    if averaged is not None:
        model.load_state_dict(averaged.module.state_dict())
    model.eval()
    return model


def final_loss(out_dir: str | Path, last: int = 100) -> float:
    """Mean training loss over the last ``last`` logged steps."""
    rows = [json.loads(line) for line in (Path(out_dir) / "log.jsonl").read_text().splitlines() if line]
    return float(np.mean([r["loss"] for r in rows[-last:]])) if rows else float("nan")


def export(model: ClickUNet, out_dir: str | Path, cfg: TrainConfig, dest: str | Path, command: str) -> Path:
    """Write the shipped weights with the full recipe in their JSON config."""
    meta = json.loads((Path(out_dir) / "last.json").read_text())
    stages = []
    if cfg.init:
        from napari_oaims.model import read_config

        init_cfg = read_config(cfg.init)
        stages = init_cfg.get("training", {}).get("stages", []) or [init_cfg.get("training", {})]
    extra = {
        "version": 1,
        "normalisation": {"percentiles": list(guidance.NORM_PERCENTILES), "scope": "whole image or volume"},
        "guidance": {"sigma_work_px": guidance.GUIDANCE_SIGMA, "work_size": guidance.WORK_SIZE},
        "window": {"min_size": guidance.MIN_WINDOW, "context": guidance.CONTEXT, "first_size": guidance.FIRST_WINDOW},
        "training": {
            "command": command,
            "recipe": "seed 000 algorithm 2: iterative simulated clicks, Dice-Focal + beta CCG",
            "alpha": ALPHA,
            "beta": BETA,
            "ccg_sigma": CCG_SIGMA,
            "steps_done": meta["step"],
            "wall_time_s": round(meta["wall_s"], 1),
            "final_loss_last100": round(final_loss(out_dir), 4),
            "config": cfg.to_dict(),
            "data": "procedural only (napari_oaims.training.synth); no real images",
        },
    }
    if stages:  # a fine-tuning stage: keep the recipe of every earlier stage
        extra["training"]["init_weights_hash"] = read_config(cfg.init).get("weights_hash")
        extra["training"]["stages"] = [*stages, {k: v for k, v in extra["training"].items() if k != "stages"}]
    return save_weights(model, dest, extra)
