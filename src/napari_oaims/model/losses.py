"""Training and adaptation losses: Dice-Focal and the Click-Centred Gaussian loss (Xu et al.,
*You Point, I Learn*, eq. 1-5).

All functions take logits ``(B, 1, H, W)`` and binary targets of the same shape (float 0/1).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

ALPHA = 0.7  # Dice-Focal weight of the focal term
BETA = 200.0  # weight of the CCG loss
CCG_SIGMA = 3.0  # CCG Gaussian sigma (working pixels), truncated at 3 sigma


def dice_loss(
    logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Soft Dice loss; ``weight`` (0/1, the target's shape) leaves the pixels where it is 0 out."""
    prob = torch.sigmoid(logits.float())
    if weight is not None:
        prob, target = prob * weight, target * weight
    dims = (1, 2, 3)
    inter = (prob * target).sum(dims)
    denom = prob.sum(dims) + target.sum(dims)
    return (1 - (2 * inter + eps) / (denom + eps)).mean()


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Focal loss, the mean over all pixels; pixels where ``weight`` is 0 add nothing."""
    logits = logits.float()
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = torch.exp(-bce)
    focal = (1 - p_t) ** gamma * bce
    return (focal if weight is None else focal * weight).mean()


def dice_focal(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = ALPHA, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """``(1 - alpha) Dice + alpha Focal``; ``weight`` (0/1) leaves pixels out of both."""
    return (1 - alpha) * dice_loss(logits, target, weight=weight) + alpha * focal_loss(logits, target, weight=weight)


def ccg_weights(
    clicks: list[list[tuple[float, float, bool]]], target: torch.Tensor, sigma: float = CCG_SIGMA
) -> torch.Tensor:
    """Per-pixel CCG weight ``sum_c G_c I_c / |C|`` for each sample (B, 1, H, W).

    ``clicks[b]`` holds ``(y, x, positive)`` in working coordinates. ``G_c`` is a Gaussian around
    the click truncated at 3 sigma; ``I_c`` keeps only pixels whose target class equals the
    click's class.
    """
    b, _, h, w = target.shape
    device = target.device
    yy = torch.arange(h, device=device, dtype=torch.float32).view(h, 1)
    xx = torch.arange(w, device=device, dtype=torch.float32).view(1, w)
    out = torch.zeros_like(target, dtype=torch.float32)
    for i, sample in enumerate(clicks):
        if not sample:
            continue
        acc = torch.zeros((h, w), device=device)
        for y, x, positive in sample:
            dy, dx = yy - float(y), xx - float(x)
            g = torch.exp(-(dy**2 + dx**2) / (2 * sigma**2))
            g = g * ((dy.abs() <= 3 * sigma) & (dx.abs() <= 3 * sigma))
            same = target[i, 0] > 0.5 if positive else target[i, 0] <= 0.5
            acc = acc + g * same
        out[i, 0] = acc / len(sample)
    return out


def ccg_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    clicks: list[list[tuple[float, float, bool]]],
    sigma: float = CCG_SIGMA,
) -> torch.Tensor:
    """Click-Centred Gaussian loss: CE weighted by click Gaussians of the click's class, / (|C| H W)."""
    weights = ccg_weights(clicks, target, sigma)
    ce = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none")
    h, w = target.shape[-2:]
    return ((weights * ce).sum((1, 2, 3)) / (h * w)).mean()


def total_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    clicks: list[list[tuple[float, float, bool]]] | None,
    alpha: float = ALPHA,
    beta: float = BETA,
    sigma: float = CCG_SIGMA,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """``L_DF + beta L_CCG`` (eq. 5); just ``L_DF`` when ``clicks`` is None. ``weight`` (0/1)
    leaves pixels out of ``L_DF`` (the CCG term keeps its own click-centred weights)."""
    loss = dice_focal(logits, target, alpha, weight=weight)
    if clicks is not None and beta:
        loss = loss + beta * ccg_loss(logits, target, clicks, sigma)
    return loss
