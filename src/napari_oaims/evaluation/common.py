"""Shared pieces of the benchmarks: the robot-user protocol, methods, the robot-user loop,
tables and plots."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from napari_oaims.core.extras import require
from napari_oaims.core.files import read_array
from napari_oaims.core.progress import CancelLike, Progress, check_cancel, emit
from napari_oaims.evaluation.metrics import dice, summarise
from napari_oaims.simulate.robot import Click, Robot, WrongLabel

if TYPE_CHECKING:
    from napari_oaims.engine import Engine


@dataclass(frozen=True)
class Protocol:
    """The robot user and the engine a benchmark runs with (the same for every method).

    ``clicks`` per target; ``robot`` strategy, ``noise`` (None or ``"realistic"``) and
    ``wrong_label`` mode (None, ``"fraction"``, ``"first_n"`` or ``"targets"``) of
    :class:`~napari_oaims.simulate.robot.Robot`, seeded with ``seed``; only the first
    ``max_targets`` targets (None: all); the engine on ``device`` with ``weights`` (None: the
    shipped ones), ``first_window`` (None: the weights' own first-click window) and ``edges``
    (:attr:`napari_oaims.engine.Engine.edges`). ``fresh``: the model annotates each target in a
    new session (what a session's first object meets: no accepted objects to size windows or
    judge edges by, nothing learnt).
    """

    clicks: int = 10
    robot: str = "center"
    noise: str | None = None
    wrong_label: str | None = None
    seed: int = 0
    max_targets: int | None = None
    device: str = "auto"
    weights: str | None = None
    first_window: int | str | None = None
    edges: str = "auto"
    fresh: bool = False

    def make_robot(self) -> Robot:
        """A fresh robot of this protocol."""
        wrong = WrongLabel(mode=self.wrong_label) if self.wrong_label else None
        return Robot(strategy=self.robot, noise=self.noise, wrong_label=wrong, seed=self.seed)

    def make_engine(self, adaptation: str = "none") -> "Engine":
        """A fresh engine on ``weights`` with ``first_window`` applied."""
        from napari_oaims.engine import Engine

        engine = Engine.pretrained(device=self.device, adaptation=adaptation, weights=self.weights)
        if self.first_window is not None:
            engine.first_window = self.first_window
        engine.edges = self.edges
        return engine

    def settings(self) -> dict[str, str]:
        """The protocol as text, for the ``settings`` of a results file."""
        return {k: str(v) for k, v in asdict(self).items()}


def load_pair(image_path: str | Path, labels_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """An image and its 2D integer label image, checked to match."""
    image, labels = read_array(image_path), read_array(labels_path)
    if labels.ndim == 2 and image.ndim >= 3 and image.shape[:2] != labels.shape:
        raise ValueError(
            f"the image {image_path} is {image.ndim}D {image.shape} and its labels are 2D {labels.shape}: "
            "the benchmark takes a 2D image (channels last allowed) and its 2D labels; save one slice of "
            "the volume and its labels"
        )
    if labels.shape != image.shape[: labels.ndim] or labels.ndim != 2:
        raise ValueError(f"labels {labels.shape} must be a 2D label image matching the image {image.shape}")
    if labels.dtype.kind not in "iub":
        raise ValueError(f"labels must be an integer label image, got dtype {labels.dtype}")
    return image, labels


class ModelMethod:
    """The click model through a :class:`Session` (accept at the end of a target -> PI runs).

    ``empty_positive`` counts positive clicks answered with an empty mask, ``refused`` clicks the
    session refused (``ValueError``; the mask stays as it was)."""

    def __init__(self, engine, image: np.ndarray, fresh: bool = False):
        self.engine = engine
        self.image = image
        self.fresh = fresh  # each target in a new session
        self.session = engine.session(image)
        self.empty_positive = 0
        self.refused = 0

    def start(self) -> None:
        if self.fresh and self.session.events[-1]["kind"] != "session":
            self.session = self.engine.session(self.image)

    def click(self, c: Click) -> np.ndarray:
        try:
            mask = self.session.click((c.y, c.x), positive=c.positive).mask
        except ValueError:
            self.refused += 1
            return self.session.mask
        self.empty_positive += bool(c.positive and not mask.any())
        return mask

    def rollbacks(self) -> dict[str, int]:
        """Update events of the session so far that were rolled back, by reason (its first words)."""
        out: dict[str, int] = {}
        for e in self.session.events:
            if e["kind"] == "update" and e["extra"].get("rolled_back"):
                why = str(e["extra"].get("reason")).split(" (")[0]
                out[why] = out.get(why, 0) + 1
        return out

    def finish(self, mask: np.ndarray) -> None:
        if mask.any():
            self.session.accept()
        else:
            self.session.clear()


def run_targets(
    method,
    labels: np.ndarray,
    ids: list[int],
    robot: Robot,
    n_clicks: int,
    progress: Progress | None = None,
    cancel: CancelLike = None,
) -> dict:
    """The robot-user loop: for each target in order, ``n_clicks`` clicks, Dice after each.

    A robot with nothing left to correct repeats the last Dice. Returns per-target Dice ``curves``,
    per-click latencies ``latency_ms`` (ms, the method's click call only) and the same latencies
    per target (``target_latency_ms``). ``progress(done, total, "targets")`` after each target;
    ``cancel`` is checked before each (:class:`~napari_oaims.core.progress.Cancelled`).
    """
    curves, latencies, per_target = [], [], []
    for i, tid in enumerate(ids):
        check_cancel(cancel)
        target = labels == tid
        robot.reset(int(tid))
        method.start()
        pred = np.zeros_like(target)
        curve, ms = [], []
        for _ in range(n_clicks):
            c = robot.next_click(pred, target)
            if c is None:
                curve.append(curve[-1] if curve else dice(pred, target))
                continue
            t0 = time.perf_counter()
            pred = method.click(c)
            ms.append((time.perf_counter() - t0) * 1e3)
            curve.append(dice(pred, target))
        method.finish(pred)
        curves.append(curve)
        latencies += ms
        per_target.append(ms)
        emit(progress, i + 1, len(ids), "targets")
    return {"curves": curves, "latency_ms": latencies, "target_latency_ms": per_target}


def summary_row(result: dict, ks=(1, 3, 5, 10)) -> dict:
    row = summarise(result["curves"], ks=ks)
    lat = result["latency_ms"]
    row["latency_p50_ms"] = float(np.percentile(lat, 50)) if lat else float("nan")
    row["latency_p95_ms"] = float(np.percentile(lat, 95)) if lat else float("nan")
    return row


def format_table(rows: dict[str, dict], columns: list[str]) -> str:
    """A plain-text table, one row per method."""
    width = max(12, *(len(m) for m in rows))
    head = f"{'method':<{width}} " + " ".join(f"{c:>10}" for c in columns)
    lines = [head, "-" * len(head)]
    for name, row in rows.items():
        cells = []
        for c in columns:
            v = row.get(c, float("nan"))
            cells.append(f"{v:>10.3f}" if isinstance(v, float) else f"{v!s:>10}")
        lines.append(f"{name:<{width}} " + " ".join(cells))
    return "\n".join(lines)


def pyplot():
    """``matplotlib.pyplot`` drawing to files (the Agg backend); ImportError names the ``bench`` extra."""
    matplotlib = require("matplotlib", "bench", "benchmark plots")
    matplotlib.use("Agg")
    return require("matplotlib.pyplot", "bench", "benchmark plots")


def plot_curves(curves_by_method: dict[str, list[list[float]]], path: str | Path, title: str) -> None:
    """Mean Dice vs number of clicks, one line per method."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curves in curves_by_method.items():
        n = max(len(c) for c in curves)
        padded = np.array([c + [c[-1]] * (n - len(c)) for c in curves])
        ax.plot(np.arange(1, n + 1), padded.mean(0), marker="o", ms=3, label=name)
    ax.set_xlabel("clicks")
    ax.set_ylabel("mean Dice")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_json(data: dict, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=1, default=float))


def target_ids(labels: np.ndarray, min_area: int = 10) -> list[int]:
    """Labelled objects with at least ``min_area`` pixels, in id order."""
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    return [int(i) for i, c in zip(ids, counts) if c >= min_area]
