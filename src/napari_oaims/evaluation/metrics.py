"""Interactive segmentation metrics (Xu et al., *You Point, I Learn*, appendix A.5 and A.9; Marinov,
*Interactive Segmentation and Annotation of Medical Images*, section 8).

A *curve* is the Dice score after each click of one target: ``curve[k - 1]`` is Dice@k, the Dice
after ``k`` clicks, for ``k = 1..T``. Dice@0 (before any click, i.e. an empty prediction) is not part
of a curve; it is 0 for every non-empty target and can be computed with :func:`dice` if needed.
Pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_oaims.core.overlap import dice


def dice_curve(masks: Sequence[np.ndarray], target: np.ndarray) -> list[float]:
    """Dice of each prediction in ``masks`` (the prediction after click 1, 2, ...) against ``target``."""
    return [dice(m, target) for m in masks]


def _check_curve(curve: Sequence[float]) -> np.ndarray:
    c = np.asarray(curve, float)
    if c.ndim != 1 or c.size == 0:
        raise ValueError("a Dice curve must be a non-empty 1D sequence")
    return c


def dice_at(curve: Sequence[float], k: int) -> float:
    """Dice@k = ``curve[k - 1]`` (k >= 1); a curve shorter than ``k`` counts with its last value."""
    c = _check_curve(curve)
    if k < 1:
        raise ValueError(f"k must be >= 1 (Dice@0 is the empty prediction), got {k}")
    return float(c[min(k, c.size) - 1])


def noc(curve: Sequence[float], threshold: float, cap: int = 20) -> float:
    """Number of clicks to first reach Dice >= ``threshold``.

    Only the first ``cap`` clicks count; if the threshold is not reached within them (or within the
    curve, if it is shorter), the result is ``cap``.
    """
    c = _check_curve(curve)[:cap]
    hits = np.nonzero(c >= threshold)[0]
    return float(hits[0] + 1) if hits.size else float(cap)


def auc(curve: Sequence[float]) -> float:
    """Normalised area under the Dice-vs-clicks curve.

    Trapezoid rule over clicks 1..T divided by ``T - 1`` (so a constant curve of value v gives v);
    for T = 1 it is ``curve[0]``.
    """
    c = _check_curve(curve)
    if c.size == 1:
        return float(c[0])
    return float(np.sum((c[1:] + c[:-1]) / 2.0) / (c.size - 1))


def final_dice(curve: Sequence[float]) -> float:
    """Dice after the last click."""
    return float(_check_curve(curve)[-1])


def improving_share(curve: Sequence[float]) -> float:
    """Share of clicks 2..T whose Dice is strictly higher than after the previous click (NaN if T = 1)."""
    c = _check_curve(curve)
    if c.size == 1:
        return float("nan")
    return float(np.mean(c[1:] > c[:-1]))


def summarise(
    curves: Sequence[Sequence[float]],
    ks: Sequence[int] = (1, 3, 5, 10),
    thresholds: Sequence[float] = (0.80, 0.85, 0.90),
    cap: int = 20,
) -> dict:
    """Mean metrics over targets, one curve per target.

    Keys: ``dice@k`` for each k (a curve shorter than k uses its last value), ``noc@0.80`` etc.
    (threshold formatted with two decimals), ``auc``, ``final_dice``, ``improving_share`` (mean over
    curves with at least 2 clicks; NaN if none) and ``n_targets``.
    """
    if len(curves) == 0:
        raise ValueError("summarise needs at least one curve")
    out: dict = {}
    for k in ks:
        out[f"dice@{k}"] = float(np.mean([dice_at(c, k) for c in curves]))
    for t in thresholds:
        out[f"noc@{t:.2f}"] = float(np.mean([noc(c, t, cap) for c in curves]))
    out["auc"] = float(np.mean([auc(c) for c in curves]))
    out["final_dice"] = float(np.mean([final_dice(c) for c in curves]))
    shares = np.array([improving_share(c) for c in curves])
    out["improving_share"] = float(np.mean(shares[~np.isnan(shares)])) if (~np.isnan(shares)).any() else float("nan")
    out["n_targets"] = len(curves)
    return out
