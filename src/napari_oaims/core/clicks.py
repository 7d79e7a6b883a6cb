"""Clicks on a mask's errors: error regions of a prediction against a target, and a pixel inside a region.

:func:`correction_clicks` is the one click generator of the package: pretraining
(:mod:`napari_oaims.training.pretrain`) and Post-Interaction adaptation's stage 2
(:mod:`napari_oaims.adapt.oaims`) both call it, and the simulated users
(:mod:`napari_oaims.simulate.robot`) place their clicks with the same :func:`click_in_region`.
A click goes where an error region lies farthest from its border (its deepest point), as in the
evaluation protocol of Xu et al., *You Point, I Learn: Online Adaptation of Interactive
Segmentation Models for Handling Distribution Shifts in Medical Imaging*. Pure numpy/scipy (no torch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

CLICK_MODES = ("center", "random", "edt")


@dataclass(frozen=True)
class Click:
    """One click: plane coordinates (y, x) and polarity."""

    y: int
    x: int
    positive: bool

    def to_dict(self) -> dict:
        return {"y": int(self.y), "x": int(self.x), "positive": bool(self.positive)}

    @classmethod
    def from_dict(cls, row: Mapping) -> Click:
        """Inverse of ``to_dict``; extra keys are ignored."""
        return cls(int(row["y"]), int(row["x"]), bool(row["positive"]))


def check_masks(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pred`` and ``target`` as boolean 2D masks of one shape (ValueError otherwise)."""
    pred = np.asarray(pred, bool)
    target = np.asarray(target, bool)
    if target.ndim != 2:
        raise ValueError(f"target must be a 2D mask, got shape {target.shape}")
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} != target shape {target.shape}")
    return pred, target


def error_components(pred: np.ndarray, target: np.ndarray) -> list[tuple[np.ndarray, bool]]:
    """Connected error regions, largest first, as ``(mask, positive)``.

    ``positive`` is True for a false negative (the user would click foreground there) and False
    for a false positive.
    """
    pred = np.asarray(pred, bool)
    target = np.asarray(target, bool)
    out: list[tuple[int, np.ndarray, bool]] = []
    for err, positive in ((target & ~pred, True), (pred & ~target, False)):
        lab, n = ndimage.label(err)
        if n == 0:
            continue
        sizes = np.bincount(lab.ravel())[1:]
        for i in np.argsort(sizes)[::-1]:
            out.append((int(sizes[i]), lab == (i + 1), positive))
    out.sort(key=lambda t: -t[0])
    return [(m, p) for _, m, p in out]


def largest_error_component(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, bool] | None:
    """The largest connected error region as ``(mask, positive)``, or None if ``pred == target``.

    Same definition as the first entry of :func:`error_components` (FN -> positive, FP -> negative;
    4-connectivity), but without building a mask per component. Ties: FN before FP, then the
    lower label.
    """
    pred, target = check_masks(pred, target)
    best: tuple[int, np.ndarray, int, bool] | None = None
    for err, positive in ((target & ~pred, True), (pred & ~target, False)):
        lab, n = ndimage.label(err)
        if n == 0:
            continue
        sizes = np.bincount(lab.ravel())[1:]
        i = int(np.argmax(sizes))
        if best is None or sizes[i] > best[0]:
            best = (int(sizes[i]), lab, i + 1, positive)
    if best is None:
        return None
    return best[1] == best[2], best[3]


def distance_to_border(region: np.ndarray) -> np.ndarray:
    """Each pixel's distance to the nearest pixel outside ``region`` (the image border counts as
    outside)."""
    return ndimage.distance_transform_edt(np.pad(np.asarray(region, bool), 1))[1:-1, 1:-1]


def deepest_point(region: np.ndarray, dist: np.ndarray | None = None) -> tuple[int, int]:
    """The pixel of a non-empty ``region`` farthest from its border (the first one in row-major
    order on a tie). ``dist``: :func:`distance_to_border` of ``region`` or of a region holding it
    as a connected component, when already computed."""
    dist = distance_to_border(region) if dist is None else np.where(region, dist, -1.0)
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(y), int(x)


def deepest_points(region: np.ndarray, share: float = 0.0) -> np.ndarray:
    """The deepest point (N, 2) of each connected component of ``region`` with at least ``share``
    of the largest component's area, largest first."""
    region = np.asarray(region, bool)
    lab, n = ndimage.label(region)
    if n == 0:
        return np.zeros((0, 2), int)
    sizes = np.bincount(lab.ravel())[1:]
    ids = [i + 1 for i in np.argsort(sizes)[::-1] if sizes[i] >= share * sizes.max()]
    dist = distance_to_border(region)
    return np.array([deepest_point(lab == i, dist) for i in ids], int).reshape(-1, 2)


def click_in_region(
    region: np.ndarray, rng: np.random.Generator | None = None, mode: str = "center"
) -> tuple[int, int]:
    """A pixel inside ``region``.

    ``center``: the maximum of the distance transform (the region's deepest point; ties broken by
    the first such pixel); ``random``: uniform over the region; ``edt``: sampled with probability
    proportional to the squared distance transform (favours the interior).
    """
    region = np.asarray(region, bool)
    if not region.any():
        raise ValueError("cannot click in an empty region")
    if mode == "random":
        ys, xs = np.nonzero(region)
        i = int(rng.integers(len(ys))) if rng is not None else 0
        return int(ys[i]), int(xs[i])
    if mode == "center":
        return deepest_point(region)
    dist = distance_to_border(region)
    if mode == "edt":
        ys, xs = np.nonzero(region)
        w = dist[ys, xs] ** 2
        i = int(rng.choice(len(ys), p=w / w.sum()))
        return int(ys[i]), int(xs[i])
    raise ValueError(f"unknown click mode {mode!r}; use one of {CLICK_MODES}")


def correction_clicks(
    pred: np.ndarray,
    target: np.ndarray,
    max_clicks: int,
    rng: np.random.Generator | None = None,
    mode: str = "random",
    min_size: int = 1,
) -> list[Click]:
    """One click per error component, largest first, up to ``max_clicks`` (pretraining's iterative
    clicks and PI's stage 2).

    Components smaller than ``min_size`` pixels get no click; ``mode`` places each click (see
    :func:`click_in_region`), drawing from ``rng``.
    """
    clicks = []
    for region, positive in error_components(pred, target):
        if len(clicks) >= max_clicks:
            break
        if region.sum() < min_size:
            continue
        y, x = click_in_region(region, rng, mode)
        clicks.append(Click(y, x, positive))
    return clicks
