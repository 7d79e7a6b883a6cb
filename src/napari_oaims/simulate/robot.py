"""Simulated users (GUIDE 3.5): where a robot clicks, given the prediction and the ground truth.

The primitives here are shared by pretraining (seed 000 algorithm 2), Post-Interaction click
generation (algorithm 1, stage 2) and the benchmark robots (:class:`Robot`, :class:`ReplayRobot`),
which also come with box and scribble prompts and JSON click files. Importable without torch.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize


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


def click_in_region(region: np.ndarray, rng: np.random.Generator | None = None, mode: str = "center") -> tuple[int, int]:
    """A pixel inside ``region``.

    ``center``: the maximum of the distance transform (seed 000 protocol; ties broken by the
    first such pixel); ``random``: uniform over the region; ``edt``: sampled with probability
    proportional to the distance transform (favours the interior).
    """
    region = np.asarray(region, bool)
    if not region.any():
        raise ValueError("cannot click in an empty region")
    if mode == "random":
        ys, xs = np.nonzero(region)
        i = int(rng.integers(len(ys))) if rng is not None else 0
        return int(ys[i]), int(xs[i])
    # Pad so that the image border counts as outside the region.
    dist = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    if mode == "center":
        y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
        return int(y), int(x)
    if mode == "edt":
        ys, xs = np.nonzero(region)
        w = dist[ys, xs] ** 2
        i = int(rng.choice(len(ys), p=w / w.sum()))
        return int(ys[i]), int(xs[i])
    raise ValueError(f"unknown click mode {mode!r}; use 'center', 'random' or 'edt'")


def correction_clicks(
    pred: np.ndarray,
    target: np.ndarray,
    max_clicks: int,
    rng: np.random.Generator | None = None,
    mode: str = "random",
    min_size: int = 1,
) -> list[Click]:
    """One click per error component, largest first, up to ``max_clicks`` (algorithm 2 / PI stage 2)."""
    clicks = []
    for region, positive in error_components(pred, target):
        if len(clicks) >= max_clicks:
            break
        if region.sum() < min_size:
            continue
        y, x = click_in_region(region, rng, mode)
        clicks.append(Click(y, x, positive))
    return clicks


# --------------------------------------------------------------------------------------------------
# Benchmark robots (GUIDE 3.5): one click at a time, seeded, recordable and replayable.
# --------------------------------------------------------------------------------------------------

STRATEGIES = ("center", "random", "edt", "uniform")
WRONG_LABEL_MODES = ("fraction", "first_n", "targets")
BOX_KINDS = ("perfect", "careful", "sloppy")
CAREFUL_MARGIN = (0.05, 0.10)  # careful box: each side pushed out by U(5%, 10%) of the extent
SLOPPY_JITTER = 0.30  # sloppy box: each side moved by U(-30%, +30%) of the extent
TargetId = Union[int, str]


def _check_masks(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, bool)
    target = np.asarray(target, bool)
    if target.ndim != 2:
        raise ValueError(f"target must be a 2D mask, got shape {target.shape}")
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} != target shape {target.shape}")
    return pred, target


def largest_error_component(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, bool] | None:
    """The largest connected error region as ``(mask, positive)``, or None if ``pred == target``.

    Same definition as the first entry of :func:`error_components` (FN -> positive, FP -> negative;
    4-connectivity), but without building a mask per component. Ties: FN before FP, then the
    lower label.
    """
    pred, target = _check_masks(pred, target)
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


@dataclass(frozen=True)
class RealisticNoise:
    """The noisy robot R5 of seed 004 (eq. 28), adapted to 2D.

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
    """Wrong-label clicks of seed 000 table 11: the position is kept, the polarity flipped.

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

    ``strategy`` places the click: ``center`` (seed 000 protocol: max of the distance transform),
    ``random`` (uniform in the region), ``edt`` (sampled proportionally to the squared distance
    transform) or ``uniform`` (uniform over all error pixels, not only the largest component). The
    first click after :meth:`reset` is a localisation click in the object (the largest connected
    component of the target; the whole target for ``uniform``), regardless of ``pred``, unless
    ``localise_first`` is False. Later clicks go into the largest error component (FN -> positive,
    FP -> negative), avoiding pixels already clicked for this target when the component has others
    (so a correction after wrong-label clicks does not land on the same pixel). Then ``noise`` (None, ``"realistic"`` or a :class:`RealisticNoise`) moves the
    click and ``wrong_label`` (:class:`WrongLabel` or None) flips its polarity.

    Random draws come from three streams (placement, noise, labels) seeded by ``(seed, target id)``,
    so a target's clicks do not depend on which targets came before it, and noise decisions are the
    same for every strategy. Every click is recorded in :attr:`sequences` for :func:`save_clicks`.
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
        pred, target = _check_masks(pred, target)
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
        y0, x0, y1, x1 = _clip_box(*np.add(_bbox(both), (-1, -1, 1, 1)), *target.shape)
        y, x, positive = self._pick(pred[y0:y1, x0:x1], target[y0:y1, x0:x1], localise, (y0, x0))
        y, x, noise_kind = self._apply_noise(y + y0, x + x0, positive, target, image)
        flipped = self._draw_flip(index)
        click = Click(y, x, positive != flipped)
        self._rows.append(click.to_dict() | {"index": index, "noise": noise_kind, "flipped": flipped})
        return click

    def _pick(self, pred: np.ndarray, target: np.ndarray, localise: bool, offset: tuple[int, int]) -> tuple[int, int, bool]:
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


class ReplayRobot:
    """Replays recorded click sequences (e.g. from :func:`load_clicks`) through ``next_click``."""

    def __init__(self, sequences: Mapping[TargetId, Sequence[Mapping | Click]]) -> None:
        self._sequences = {
            k: [c if isinstance(c, Click) else Click.from_dict(c) for c in v] for k, v in sequences.items()
        }
        self.target_index: TargetId | None = None
        self._pos = 0

    def reset(self, target_index: TargetId = 0) -> None:
        """Start replaying the sequence of ``target_index`` (KeyError if it was not recorded)."""
        if target_index not in self._sequences:
            raise KeyError(f"no recorded clicks for target {target_index!r}")
        self.target_index = target_index
        self._pos = 0

    def next_click(
        self, pred: np.ndarray | None = None, target: np.ndarray | None = None, image: np.ndarray | None = None
    ) -> Click | None:
        """The next recorded click, or None when the sequence has ended; masks are only shape-checked."""
        if self.target_index is None:
            self.reset(next(iter(self._sequences)))
        seq = self._sequences[self.target_index]
        if self._pos >= len(seq):
            return None
        click = seq[self._pos]
        if pred is not None and target is not None:
            _, target = _check_masks(pred, target)
            if not (0 <= click.y < target.shape[0] and 0 <= click.x < target.shape[1]):
                raise ValueError(f"recorded click {click} lies outside the image {target.shape}")
        self._pos += 1
        return click


def _json_default(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"cannot store {type(o).__name__} in a click file")


def save_clicks(path: str | Path, sequences: Mapping[TargetId, Sequence[Mapping | Click]]) -> None:
    """Write click sequences (target id -> list of ``Click`` or ``Click.to_dict()`` rows with optional
    extra JSON-serialisable keys) as JSON; target ids keep their type (int or str)."""
    targets = []
    for tid, clicks in sequences.items():
        if isinstance(tid, np.integer):
            tid = int(tid)
        if isinstance(tid, bool) or not isinstance(tid, (int, str)):
            raise ValueError(f"target ids must be int or str, got {tid!r}")
        rows = []
        for c in clicks:
            row = c.to_dict() if isinstance(c, Click) else dict(c)
            if not {"y", "x", "positive"} <= row.keys():
                raise ValueError(f"click row {row!r} lacks y, x or positive")
            rows.append(row)
        targets.append({"id": tid, "clicks": rows})
    doc = {"format": "napari-oaims-clicks", "version": 1, "targets": targets}
    Path(path).write_text(json.dumps(doc, indent=1, default=_json_default))


def load_clicks(path: str | Path) -> dict[TargetId, list[dict]]:
    """Read a file written by :func:`save_clicks`: target id -> list of click rows (dicts)."""
    doc = json.loads(Path(path).read_text())
    if doc.get("format") != "napari-oaims-clicks":
        raise ValueError(f"{path} is not a napari-oaims click file")
    return {t["id"]: t["clicks"] for t in doc["targets"]}


def _bbox(target: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(target)
    return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1


def _clip_box(y0: int, x0: int, y1: int, x1: int, h: int, w: int) -> tuple[int, int, int, int]:
    return max(0, int(y0)), max(0, int(x0)), min(h, int(y1)), min(w, int(x1))


def box_from_mask(
    target: np.ndarray, kind: str = "perfect", rng: np.random.Generator | None = None
) -> tuple[int, int, int, int]:
    """A box prompt ``(y0, x0, y1, x1)`` (y1, x1 exclusive) drawn around a 2D object.

    ``perfect``: the tight bounding box. ``careful``: each side pushed out by U(5%, 10%) of the
    object's extent along that axis (at least 1 px). ``sloppy``: each side moved in or out by
    U(-30%, +30%) of the extent; redrawn (up to 100 times, then the perfect box) until the box is
    non-empty and contains at least one object pixel. Boxes are clipped to the image. ``rng`` None
    means ``default_rng(0)``.
    """
    target = np.asarray(target, bool)
    if target.ndim != 2:
        raise ValueError(f"target must be a 2D mask, got shape {target.shape}")
    if not target.any():
        raise ValueError("empty target: cannot draw a box")
    if kind not in BOX_KINDS:
        raise ValueError(f"unknown box kind {kind!r}; use one of {BOX_KINDS}")
    rng = rng if rng is not None else np.random.default_rng(0)
    box = _bbox(target)
    if kind == "perfect":
        return box
    y0, x0, y1, x1 = box
    h, w = target.shape
    ext = np.array([y1 - y0, x1 - x0, y1 - y0, x1 - x0], float)
    if kind == "careful":
        out = np.maximum(1, np.rint(rng.uniform(*CAREFUL_MARGIN, size=4) * ext)).astype(int)
        return _clip_box(y0 - out[0], x0 - out[1], y1 + out[2], x1 + out[3], h, w)
    for _ in range(100):
        out = np.rint(rng.uniform(-SLOPPY_JITTER, SLOPPY_JITTER, size=4) * ext).astype(int)
        b = _clip_box(y0 - out[0], x0 - out[1], y1 + out[2], x1 + out[3], h, w)
        if b[0] < b[2] and b[1] < b[3] and target[b[0] : b[2], b[1] : b[3]].any():
            return b
    return box


_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


def scribble_from_region(region: np.ndarray, rng: np.random.Generator | None = None, max_len: int = 50) -> np.ndarray:
    """A scribble inside ``region``: an 8-connected polyline along its skeleton, as (N, 2) ``(y, x)`` ints.

    Starts at a skeleton pixel (random with ``rng``, else the one deepest inside the region) and walks
    along the skeleton to a pixel at most ``max_len - 1`` steps away (the farthest reachable; random
    among ties with ``rng``). A region whose skeleton has fewer than 2 pixels gives its centre point.
    """
    region = np.asarray(region, bool)
    if region.ndim != 2:
        raise ValueError(f"region must be a 2D mask, got shape {region.shape}")
    if not region.any():
        raise ValueError("cannot scribble in an empty region")
    if max_len < 1:
        raise ValueError("max_len must be >= 1")
    skel = skeletonize(region) & region
    pts = np.argwhere(skel)
    if len(pts) < 2 or max_len == 1:
        return np.array([click_in_region(region, mode="center")], dtype=int)
    if rng is not None:
        start = tuple(int(v) for v in pts[rng.integers(len(pts))])
    else:
        dist = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
        start = tuple(int(v) for v in pts[np.argmax(dist[skel])])
    h, w = skel.shape
    parent: dict[tuple[int, int], tuple[int, int] | None] = {start: None}
    frontier = last = [start]
    for _ in range(max_len - 1):
        nxt = []
        for y, x in frontier:
            for dy, dx in _NEIGHBOURS:
                q = (y + dy, x + dx)
                if 0 <= q[0] < h and 0 <= q[1] < w and skel[q] and q not in parent:
                    parent[q] = (y, x)
                    nxt.append(q)
        if not nxt:
            break
        frontier = last = nxt
    node: tuple[int, int] | None = last[int(rng.integers(len(last)))] if rng is not None else last[0]
    path = []
    while node is not None:
        path.append(node)
        node = parent[node]
    return np.array(path[::-1], dtype=int)
