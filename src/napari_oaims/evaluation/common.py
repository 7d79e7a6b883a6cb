"""Shared pieces of the benchmarks: methods, the robot-user loop, tables and plots."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from napari_oaims.evaluation.metrics import dice, summarise
from napari_oaims.simulate.robot import Click, Robot


class ModelMethod:
    """The click model through a :class:`Session` (accept at the end of a target -> PI runs)."""

    def __init__(self, engine, image: np.ndarray):
        self.engine = engine
        self.session = engine.session(image)

    def start(self) -> None:
        pass

    def click(self, c: Click) -> np.ndarray:
        return self.session.click((c.y, c.x), positive=c.positive).mask

    def finish(self, mask: np.ndarray) -> None:
        if mask.any():
            self.session.accept()
        else:
            self.session.clear()


def _bbox_slices(mask: np.ndarray, pad: int = 64):
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return (slice(max(rows[0] - pad, 0), rows[-1] + 1 + pad), slice(max(cols[0] - pad, 0), cols[-1] + 1 + pad))


def run_targets(method, labels: np.ndarray, ids: list[int], robot: Robot, n_clicks: int,
                progress: Callable[[int, int], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> dict:
    """The robot-user loop: for each target in order, ``n_clicks`` clicks, Dice after each.

    A robot with nothing left to correct repeats the last Dice. Returns per-target Dice curves and
    per-click latencies (ms, the method's click call only).
    """
    curves, latencies = [], []
    for i, tid in enumerate(ids):
        if should_stop is not None and should_stop():
            break
        target = labels == tid
        robot.reset(int(tid))
        method.start()
        pred = np.zeros_like(target)
        curve = []
        for _ in range(n_clicks):
            c = robot.next_click(pred, target)
            if c is None:
                curve.append(curve[-1] if curve else dice(pred, target))
                continue
            t0 = time.perf_counter()
            pred = method.click(c)
            latencies.append((time.perf_counter() - t0) * 1e3)
            curve.append(dice(pred, target))
        method.finish(pred)
        curves.append(curve)
        if progress is not None:
            progress(i + 1, len(ids))
    return {"curves": curves, "latency_ms": latencies}


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


def plot_curves(curves_by_method: dict[str, list[list[float]]], path: str | Path, title: str) -> None:
    """Mean Dice vs number of clicks, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
