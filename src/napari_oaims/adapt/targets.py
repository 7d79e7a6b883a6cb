"""What the adaptation losses see of the user's prompts and masks, in working coordinates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from napari_oaims.core import geometry, guidance
from napari_oaims.core.prompts import Prompt
from napari_oaims.model.device import as_tensor

#: Most CCG points that stand for one scribble or box.
MAX_CCG_POINTS = 16


@dataclass
class PlaneTarget:
    """One plane of an accepted object as Post-Interaction learning sees it: the localisation
    ``click``, its ``window``, the accepted mask there at working size (``target``), the stage-1
    input ``x1`` (the click alone) and the click's CCG points; ``weight`` (working size, 0 where
    PI does not learn) once doubtful clicks are left out."""

    click: Prompt
    window: guidance.Window
    target: np.ndarray
    x1: np.ndarray
    ccg: list[tuple[float, float, bool]]
    weight: np.ndarray | None = None


def ccg_points(prompt: Prompt, window: guidance.Window) -> list[tuple[float, float, bool]]:
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


def loss_weights(per_sample: list, device) -> torch.Tensor | None:
    """A (B, 1, S, S) loss weight from per-sample weights (None: every pixel counts), or None if all are None."""
    if all(w is None for w in per_sample):
        return None
    size = (guidance.WORK_SIZE, guidance.WORK_SIZE)
    return as_tensor(np.stack([np.ones(size, np.float32) if w is None else w for w in per_sample])[:, None], device)


def near_clicks(points: list[tuple[float, float, bool]], radius: float) -> np.ndarray:
    """(S, S) float: 1 within ``radius`` working pixels of any of ``points``."""
    yy, xx = np.mgrid[: guidance.WORK_SIZE, : guidance.WORK_SIZE]
    out = np.zeros((guidance.WORK_SIZE, guidance.WORK_SIZE), np.float32)
    for y, x, _ in points:
        out[(yy - y) ** 2 + (xx - x) ** 2 <= radius**2] = 1.0
    return out


#: PI skips an object's plane when less than this share of its mask is left to learn from.
PI_IGNORE_KEEP = 0.5


def leave_out(views: list[PlaneTarget], doubtful: list[Prompt], final: np.ndarray, pi_ignore: float) -> str | None:
    """Give each view a ``weight`` (working size, 0 where PI does not learn): the pixels of a
    doubtful prompt's label within ``pi_ignore`` object diameters of its points. Returns why
    the plane is skipped instead, when too little of the mask is left (:data:`PI_IGNORE_KEEP`)."""
    diameter = geometry.diameter(np.count_nonzero(final))
    yy, xx = np.mgrid[: guidance.WORK_SIZE, : guidance.WORK_SIZE]
    for view in views:
        window, target = view.window, view.target
        radius = pi_ignore * diameter * window.scale
        weight = np.ones(target.shape, np.float32)
        for prompt in doubtful:
            pts = prompt.points[:: max(1, len(prompt.points) // MAX_CCG_POINTS)]
            for y, x in window.to_work(pts):
                weight[((yy - y) ** 2 + (xx - x) ** 2 <= radius * radius) & (target == prompt.positive)] = 0
        view.weight = weight
    kept = float((views[0].weight * views[0].target).sum()) / max(int(views[0].target.sum()), 1)
    if kept < PI_IGNORE_KEEP:
        return f"clicks that corrected nothing vouch for {1 - kept:.0%} of the object's mask: not learnt from"
    return None
