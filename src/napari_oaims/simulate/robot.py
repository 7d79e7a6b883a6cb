"""Benchmark robots: a seeded simulated user that clicks one click at a time.

:class:`Robot` clicks on the largest error of the current prediction (the placement strategies of
Xu et al., *You Point, I Learn*), optionally with the realistic click noise of Marinov,
*Interactive Segmentation and Annotation of Medical Images* (:class:`RealisticNoise`), and
wrong-label clicks (:class:`WrongLabel`); it records every click (see
:mod:`napari_oaims.simulate.records` to save and replay them). The click primitives live in
:mod:`napari_oaims.core.clicks` and are re-exported here. Importable without torch.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from napari_oaims.core.clicks import (
    Click,
    check_masks,
    click_in_region,
    correction_clicks,
    error_components,
    largest_error_component,
)
from napari_oaims.core.geometry import bbox

__all__ = [
    "STRATEGIES",
    "WRONG_LABEL_MODES",
    "Click",
    "RealisticNoise",
    "Robot",
    "TargetId",
    "WrongLabel",
    "click_in_region",
    "correction_clicks",
    "error_components",
    "largest_error_component",
]

STRATEGIES = ("center", "random", "edt", "uniform")
WRONG_LABEL_MODES = ("fraction", "first_n", "targets")
TargetId = int | str


@dataclass(frozen=True)
class RealisticNoise:
    """The noisy robot R5 of Marinov, *Interactive Segmentation and Annotation of Medical Images*
    (eq. 28), adapted to 2D.

    For every click two independent uniforms ``u1, u2`` are drawn.
    - ``u2 < p_system`` (systematic non-conformity): the click is moved to a plausible *wrong* place
      while keeping its polarity. Positive click: a pixel outside the target; if an ``image`` is given,
      uniform over outside pixels with intensity above its 95th percentile (eq. 28's SUV rule), otherwise
      uniform over outside pixels within ``max_shift`` px (Euclidean) of the object. Negative click:
      uniform over object pixels within ``max_shift`` px of the background. If no such pixel exists
      the click stays where it was.
    - ``u1 < p_perturb`` (spatial perturbation): the (possibly moved) click is shifted by an integer
      vector uniform in ``[-max_shift, max_shift]`` per axis, then clipped into the image.
    Both can happen to one click (eq. 28's fourth case).
    """

    p_perturb: float = 0.134
    p_system: float = 0.134
    max_shift: int = 35

    def __post_init__(self) -> None:
        if not (0 <= self.p_perturb <= 1 and 0 <= self.p_system <= 1):
            raise ValueError("RealisticNoise probabilities must lie in [0, 1]")
        if self.max_shift < 0:
            raise ValueError("RealisticNoise.max_shift must be >= 0")


@dataclass(frozen=True)
class WrongLabel:
    """Wrong-label clicks of Xu et al., *You Point, I Learn*, table 11: the position is kept, the polarity flipped.

    ``fraction``: each click flipped independently with probability ``p`` (paper: 0.4).
    ``first_n``: the first ``n`` clicks of every target flipped (paper: 4).
    ``targets``: each target (drawn independently from the seed and the target id) has all its
    clicks flipped with probability ``p``, so about 40% of targets for p = 0.4.
    ``include_first=False`` exempts the localisation click (click 1) in every mode, so that
    ``first_n`` flips clicks 2..n+1 (the paper's "first 4 correction clicks").
    """

    mode: str = "fraction"
    p: float = 0.4
    n: int = 4
    include_first: bool = True

    def __post_init__(self) -> None:
        if self.mode not in WRONG_LABEL_MODES:
            raise ValueError(f"unknown wrong-label mode {self.mode!r}; use one of {WRONG_LABEL_MODES}")
        if not 0 <= self.p <= 1:
            raise ValueError("WrongLabel.p must lie in [0, 1]")
        if self.n < 0:
            raise ValueError("WrongLabel.n must be >= 0")


def _target_key(target_id: TargetId) -> int:
    if isinstance(target_id, (int, np.integer)) and not isinstance(target_id, bool) and target_id >= 0:
        return int(target_id)
    return zlib.crc32(str(target_id).encode())


class Robot:
    """Seeded simulated user that clicks on the current error, one click per call.

    ``strategy`` places the click: ``center`` (the deepest point of the error: max of the distance transform),
    ``random`` (uniform in the region), ``edt`` (sampled proportionally to the squared distance
    transform) or ``uniform`` (uniform over all error pixels, not only the largest component). The
    first click after :meth:`reset` is a localisation click in the object (the largest connected
    component of the target; the whole target for ``uniform``), regardless of ``pred``, unless
    ``localise_first`` is False. Later clicks go into the largest error component (FN -> positive,
    FP -> negative), avoiding pixels already clicked for this target when the component has others
    (so a correction after wrong-label clicks does not land on the same pixel). Then ``noise``
    (None, ``"realistic"`` or a :class:`RealisticNoise`) moves the click and ``wrong_label``
    (:class:`WrongLabel` or None) flips its polarity.

    Random draws come from three streams (placement, noise, labels) seeded by ``(seed, target id)``,
    so a target's clicks do not depend on which targets came before it, and noise decisions are the
    same for every strategy. Every click is recorded in :attr:`sequences` (for
    :func:`napari_oaims.simulate.records.save_clicks`).
    """

    def __init__(
        self,
        strategy: str = "center",
        noise: RealisticNoise | str | None = None,
        wrong_label: WrongLabel | None = None,
        seed: int = 0,
        localise_first: bool = True,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown robot strategy {strategy!r}; use one of {STRATEGIES}")
        if isinstance(noise, str):
            if noise != "realistic":
                raise ValueError(f"unknown noise {noise!r}; use None, 'realistic' or a RealisticNoise")
            noise = RealisticNoise()
        if noise is not None and not isinstance(noise, RealisticNoise):
            raise ValueError("noise must be None, 'realistic' or a RealisticNoise")
        if wrong_label is not None and not isinstance(wrong_label, WrongLabel):
            raise ValueError("wrong_label must be None or a WrongLabel")
        if int(seed) < 0:
            raise ValueError("seed must be >= 0")
        self.strategy = strategy
        self.noise = noise
        self.wrong_label = wrong_label
        self.seed = int(seed)
        self.localise_first = localise_first
        self._sequences: dict[TargetId, list[dict]] = {}
        self.reset(0)

    def reset(self, target_index: TargetId = 0) -> None:
        """Start a new target; its previous record, if any, is replaced."""
        ss = np.random.SeedSequence([self.seed, _target_key(target_index)])
        self._place_rng, self._noise_rng, self._label_rng = (np.random.default_rng(s) for s in ss.spawn(3))
        wl = self.wrong_label
        self.target_flipped = bool(wl is not None and wl.mode == "targets" and self._label_rng.random() < wl.p)
        self.target_index = target_index
        self._rows: list[dict] = []
        self._sequences[target_index] = self._rows

    @property
    def sequences(self) -> dict[TargetId, list[dict]]:
        """Recorded clicks per target: ``Click.to_dict()`` rows plus ``index``, ``noise``, ``flipped``."""
        return {k: [dict(r) for r in v] for k, v in self._sequences.items()}

    def next_click(self, pred: np.ndarray, target: np.ndarray, image: np.ndarray | None = None) -> Click | None:
        """The next click for this target, or None when ``pred`` has no error left.

        ``image`` (same shape) is only used by the realistic noise. Raises ValueError for non-2D or
        mismatched masks, and for an empty target on the localisation click.
        """
        pred, target = check_masks(pred, target)
        if image is not None and np.shape(image) != target.shape:
            raise ValueError(f"image shape {np.shape(image)} != target shape {target.shape}")
        index = len(self._rows)
        if index == 0 and self.localise_first and not target.any():
            raise ValueError("empty target: there is no object for the first click")
        localise = index == 0 and self.localise_first
        if not localise and np.array_equal(pred, target):
            return None
        both = pred | target
        # Every error lies inside the box of pred | target: work on that box, one pixel wider so
        # that distances and components are the same as on the whole image (much faster on
        # large images). Row-major order is kept, so ties and seeded draws do not change.
        y0, x0, y1, x1 = bbox(both)
        y0, x0, y1, x1 = max(0, y0 - 1), max(0, x0 - 1), min(target.shape[0], y1 + 1), min(target.shape[1], x1 + 1)
        y, x, positive = self._pick(pred[y0:y1, x0:x1], target[y0:y1, x0:x1], localise, (y0, x0))
        y, x, noise_kind = self._apply_noise(y + y0, x + x0, positive, target, image)
        flipped = self._draw_flip(index)
        click = Click(y, x, positive != flipped)
        self._rows.append(click.to_dict() | {"index": index, "noise": noise_kind, "flipped": flipped})
        return click

    def _pick(
        self, pred: np.ndarray, target: np.ndarray, localise: bool, offset: tuple[int, int]
    ) -> tuple[int, int, bool]:
        """The click's pixel (in the box's coordinates) and polarity before noise and flips."""
        if localise:
            if self.strategy == "uniform":
                region = target
            else:
                region = largest_error_component(np.zeros_like(target), target)[0]
        elif self.strategy == "uniform":
            region = pred ^ target
        else:
            region = largest_error_component(pred, target)[0]
        earlier = [(r["y"] - offset[0], r["x"] - offset[1]) for r in self._rows]
        earlier = [(y, x) for y, x in earlier if 0 <= y < region.shape[0] and 0 <= x < region.shape[1]]
        if earlier:  # a user does not click the same pixel twice: avoid earlier clicks
            fresh = region.copy()
            fresh[tuple(np.array(earlier).T)] = False
            if fresh.any():
                region = fresh
        mode = "random" if self.strategy == "uniform" else self.strategy
        y, x = click_in_region(region, self._place_rng, mode)
        return y, x, bool(target[y, x])

    def _apply_noise(
        self, y: int, x: int, positive: bool, target: np.ndarray, image: np.ndarray | None
    ) -> tuple[int, int, str]:
        if self.noise is None:
            return y, x, "none"
        u1, u2 = self._noise_rng.random(2)
        kinds = []
        if u2 < self.noise.p_system:
            moved = self._system_point(positive, target, image)
            if moved is not None:
                y, x = moved
                kinds.append("system")
        if u1 < self.noise.p_perturb:
            a = self.noise.max_shift
            dy, dx = self._noise_rng.integers(-a, a + 1, size=2)
            y = int(np.clip(y + dy, 0, target.shape[0] - 1))
            x = int(np.clip(x + dx, 0, target.shape[1] - 1))
            kinds.append("shift")
        return y, x, "+".join(kinds) or "none"

    def _system_point(self, positive: bool, target: np.ndarray, image: np.ndarray | None) -> tuple[int, int] | None:
        wrong = ~target if positive else target
        cand = np.zeros_like(target)
        if positive and image is not None:
            img = np.asarray(image, float)
            cand = wrong & (img > np.percentile(img, 95))
        if not cand.any():
            # distance from each wrong-class pixel to the nearest pixel of the other class
            cand = wrong & (ndimage.distance_transform_edt(wrong) <= self.noise.max_shift)
        ys, xs = np.nonzero(cand)
        if len(ys) == 0:
            return None
        i = int(self._noise_rng.integers(len(ys)))
        return int(ys[i]), int(xs[i])

    def _draw_flip(self, index: int) -> bool:
        wl = self.wrong_label
        if wl is None:
            return False
        u = self._label_rng.random()  # drawn for every click so the stream stays aligned
        eligible = wl.include_first or index > 0
        if wl.mode == "fraction":
            return bool(eligible and u < wl.p)
        if wl.mode == "first_n":
            return bool(eligible and index - (0 if wl.include_first else 1) < wl.n)
        return bool(eligible and self.target_flipped)
