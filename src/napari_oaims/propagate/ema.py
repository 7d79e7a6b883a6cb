"""The student-teacher EMA adapter, on temporary copies of the engine's model (from a thesis on
continual test-time adaptation of interactive segmentation with user scribbles; see the README).

Student and teacher start from the engine's current weights (copied under ``engine.lock``; the
engine's own weights are never touched) and are not reset between slices. For each slice the
teacher predicts the network input under N intensity-only augmentations (Gaussian noise, blur,
gamma, inversion; N = ``n_low``, or ``n_high`` when the share of uncertain pixels is above
``ratio_cut``); the mean probability (teacher logits over ``temperature``) is the pseudo-label,
kept where it is confident and the augmentations agree. The student takes ``steps`` Adam steps
on the consistency cross-entropy to it plus ``lam`` times the interactive loss (click-centred
cross-entropy) on the user's prompts of the nearest anchors; the teacher follows by EMA with
momentum ``alpha``, and the teacher's prediction is the slice's mask.
"""

from __future__ import annotations

import copy
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch.nn import functional as F

from napari_oaims.core.clicks import deepest_point
from napari_oaims.core.guidance import sigmoid
from napari_oaims.model.device import as_tensor, intra_op_threads, predict_logits, torch_threads
from napari_oaims.model.losses import ccg_weights
from napari_oaims.propagate.settings import PropagateSettings


@dataclass
class AnchorSample:
    """The network input (4, S, S) of an anchor's own prompts, its working-size mask and the
    CCG points (working coordinates, polarity) of its prompts."""

    x: np.ndarray
    target: np.ndarray
    points: list[tuple[float, float, bool]]


def propagation_input(sample: AnchorSample, rng: np.random.Generator) -> np.ndarray:
    """The anchor as a propagation step sees a slice: its image, a perturbed copy of its mask as
    the prior (shifted, eroded or dilated by up to 2 working pixels) and a positive click at the
    prior's deepest point; the anchor's mask is the target (``anchor_mask`` loss)."""
    from napari_oaims.core import guidance

    m = ndimage.shift(sample.target.astype(np.float32), rng.normal(0, 1.5, 2), order=0) > 0.5
    k = int(rng.integers(-2, 3))
    if k > 0:
        m = ndimage.binary_dilation(m, iterations=k)
    elif k < 0:
        m = ndimage.binary_erosion(m, iterations=-k)
    if not m.any():
        m = sample.target
    click = np.array([deepest_point(m)], float)
    return guidance.encode(sample.x[0], click, np.zeros((0, 2)), m.astype(np.float32))


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An intensity-only augmentation of the image channel of ``x`` (4, S, S); the prompt and
    prior channels are kept."""
    out = x.copy()
    img = out[0]
    if rng.random() < 0.2:  # inversion within the normalised range
        img = 1.0 - img
    if rng.random() < 0.5:
        img = np.sign(img) * np.abs(img) ** rng.uniform(0.7, 1.4)
    if rng.random() < 0.5:
        img = ndimage.gaussian_filter(img, rng.uniform(0.5, 1.5))
    img = img + rng.normal(0.0, rng.uniform(0.02, 0.08), img.shape)
    out[0] = np.clip(img, -0.5, 1.5)
    return out.astype(np.float32)


class StudentTeacher:
    """Temporary student and teacher copies of ``engine.model`` (see the module docstring)."""

    def __init__(self, engine, settings: PropagateSettings, adapt: bool = True):
        self.settings = settings
        self.device = engine.device
        self.adapt_enabled = adapt
        with engine.lock:
            self.teacher = copy.deepcopy(engine.model).eval()
            self.student = copy.deepcopy(engine.model).train() if adapt else None
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.student.parameters(), lr=settings.lr) if adapt else None
        self.steps_taken = 0

    def _t(self, a: np.ndarray) -> torch.Tensor:
        return as_tensor(a, self.device)

    def _threads(self, x) -> AbstractContextManager:
        """torch's intra-op threads for a pass over the batch ``x`` (B, C, S, S): the engine's
        rule (:func:`~napari_oaims.model.device.intra_op_threads`), restored afterwards."""
        pixels = int(np.prod(tuple(x.shape))) // max(1, int(x.shape[1]))
        n = intra_op_threads(pixels) if self.device.type == "cpu" else torch.get_num_threads()
        return torch_threads(n)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Teacher logits (B, S, S) for inputs ``x`` (B, 4, S, S)."""
        with self._threads(x):
            return predict_logits(self.teacher, x, self.device)

    def adapt(
        self, x: np.ndarray, clean_logits: np.ndarray, rng: np.random.Generator, anchors: list[AnchorSample]
    ) -> dict:
        """One slice of adaptation on input ``x`` (4, S, S), whose clean teacher logits (S, S) are
        ``clean_logits``; returns what it did (for the log)."""
        s = self.settings
        T = s.temperature
        probs = [sigmoid(clean_logits / T)]

        def more(n):
            if n <= 0:
                return
            batch = np.stack([augment(x, rng) for _ in range(n)])
            logits = self.predict(batch)
            probs.extend(sigmoid(logits / T))

        more(s.n_low - 1)
        mean = np.mean(probs, axis=0)
        fg = int(np.count_nonzero(mean > 0.5))
        uncertain = int(np.count_nonzero((mean >= s.band[0]) & (mean <= s.band[1])))
        ratio = uncertain / max(fg, 1)
        if ratio > s.ratio_cut and s.n_high > s.n_low:
            more(s.n_high - s.n_low)
            mean = np.mean(probs, axis=0)
        std = np.std(probs, axis=0)
        pseudo = mean > 0.5
        keep = (np.abs(mean - 0.5) >= s.confident) & (std <= s.max_std)
        info = {"n_aug": len(probs), "uncertain": round(float(ratio), 4), "kept": round(float(keep.mean()), 4)}
        if not self.adapt_enabled or s.steps == 0 or s.lr == 0 or not keep.any():
            return info
        xt = self._t(x[None])
        target = self._t(pseudo[None, None].astype(np.float32))
        weight = self._t(keep[None, None].astype(np.float32))
        used = [a for a in anchors[: s.max_anchors] if a.points] if s.lam else []
        dense = list(anchors[: s.max_anchors]) if s.anchor_mask else []
        if used or dense:  # one batch: the slice, the anchors' own inputs, the anchors as propagation steps
            xt = torch.cat([xt, self._t(np.stack([a.x for a in used] + [propagation_input(a, rng) for a in dense]))])
        if used:
            at = self._t(np.stack([a.target for a in used])[:, None].astype(np.float32))
            aw = ccg_weights([a.points for a in used], at)
        if dense:
            dt = self._t(np.stack([a.target for a in dense])[:, None].astype(np.float32))
        k = 1 + len(used)
        losses = []
        with self._threads(xt):  # the student's steps and the EMA
            for _ in range(s.steps):
                logits = self.student(xt)
                ce = F.binary_cross_entropy_with_logits(logits[:1], target, reduction="none")
                loss = (ce * weight).sum() / weight.sum()
                if used:
                    ace = F.binary_cross_entropy_with_logits(logits[1:k], at, reduction="none")
                    loss = loss + s.lam * (ace * aw).sum() / aw.sum().clamp_min(1e-6)
                if dense:
                    loss = loss + s.anchor_mask * F.binary_cross_entropy_with_logits(logits[k:], dt)
                if not torch.isfinite(loss):
                    break
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                losses.append(float(loss.detach()))
                self.steps_taken += 1
            with torch.no_grad():
                for pt, ps in zip(self.teacher.parameters(), self.student.parameters()):
                    pt.mul_(s.alpha).add_(ps.detach(), alpha=1.0 - s.alpha)
        info["loss"] = round(float(np.mean(losses)), 5) if losses else None
        return info
