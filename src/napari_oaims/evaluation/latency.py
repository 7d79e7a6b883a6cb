"""``oaims bench latency``: click and update latency vs image size (GUIDE 4).

On the image tiled to each size, the same objects (those of the top-left tile) get the same
robot clicks. Measured: a frozen click (``none``), an MI click (``mi``: everything between
the click and the returned mask, including the update), and a PI update (``pi``: the accept
hook). Medians and p95 from one run; ratios to the frozen click at the same size.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from napari_oaims.core.progress import Progress, emit
from napari_oaims.evaluation.common import format_table, load_pair, target_ids, write_json
from napari_oaims.simulate.robot import Robot

MODES = ("none", "mi", "pi")
WHAT = {"none": "frozen click", "mi": "MI click", "pi": "PI update"}


def tile(image: np.ndarray, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Tile ``image`` to ``size x size``; labels only in the top-left tile (the measured objects)."""
    reps = (int(np.ceil(size / image.shape[0])), int(np.ceil(size / image.shape[1])))
    big = np.tile(image, reps)[:size, :size]
    lab = np.zeros((size, size), labels.dtype)
    h, w = min(size, labels.shape[0]), min(size, labels.shape[1])
    lab[:h, :w] = labels[:h, :w]
    return np.ascontiguousarray(big), lab


def _sync(engine) -> None:
    """Wait for queued GPU work, so that a timing covers it (a no-op on the CPU)."""
    import torch

    if engine.device.type == "cuda":
        torch.cuda.synchronize(engine.device)


def measure(engine, image, labels, ids, clicks: int, seed: int) -> dict[str, list[float]]:
    """Per-click latencies (ms) and per-accept update latencies for one engine."""
    s = engine.session(image)
    robot = Robot(strategy="center", seed=seed)
    click_ms, accept_ms = [], []
    for tid in ids:
        target = labels == tid
        robot.reset(int(tid))
        pred = np.zeros_like(target)
        for _ in range(clicks):
            c = robot.next_click(pred, target)
            if c is None:
                break
            t0 = time.perf_counter()
            pred = s.click((c.y, c.x), positive=c.positive).mask
            _sync(engine)
            click_ms.append((time.perf_counter() - t0) * 1e3)
        if pred.any():
            t0 = time.perf_counter()
            s.accept()
            _sync(engine)
            accept_ms.append((time.perf_counter() - t0) * 1e3)
        else:
            s.clear()
    return {"click": click_ms, "accept": accept_ms}


def available_devices() -> list[str]:
    """``cpu`` and, where torch has them, ``cuda`` and ``mps``."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    return (
        ["cpu"]
        + (["cuda"] if torch.cuda.is_available() else [])
        + (["mps"] if mps is not None and mps.is_available() else [])
    )


def measure_sizes(
    image: str | Path,
    labels: str | Path,
    sizes: Sequence[int] = (512, 2048, 4096),
    modes: Sequence[str] = MODES,
    objects: int = 20,
    clicks: int = 3,
    seed: int = 0,
    device: str = "all",
    out: str | Path | None = None,
    progress: Progress | None = None,
) -> dict:
    """Latency of each mode of ``modes`` (``none``: a frozen click, ``mi``: an MI click, ``pi``: a PI
    update) on ``image`` tiled to each size of ``sizes``, for ``objects`` seeded random objects
    with ``clicks`` robot clicks each, on ``device`` (``"all"``: every available one).

    Returns (and with ``out`` writes as JSON) ``rows`` (``"{device} {size}px {what}"`` -> p50, p95,
    n, ratio of the p50 to the frozen click's at that size), ``raw_ms``, ``objects``, ``host`` and
    ``settings``. ``progress(done, total, "latency")`` counts (device, size, mode) runs.
    """
    import torch

    from napari_oaims.engine import Engine

    bad = [m for m in modes if m not in MODES]
    if bad:
        raise ValueError(f"unknown mode(s) {bad}; choose from {MODES}")
    img0, lab0 = load_pair(image, labels)
    ids = target_ids(lab0)
    ids = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))][:objects]
    devices = available_devices() if device == "all" else [device]
    rows, raw = {}, {}
    total, done = len(devices) * len(sizes) * len(modes), 0
    for dev in devices:
        for size in sizes:
            img, lab = tile(img0, lab0, size)
            frozen = None
            for mode in modes:
                engine = Engine.pretrained(device=dev, adaptation=mode)
                m = measure(engine, img, lab, ids, clicks, seed)
                if mode == "none":
                    frozen = float(np.median(m["click"]))
                raw[f"{dev} {size} {mode}"] = m
                series = m["accept"] if mode == "pi" else m["click"]
                p50 = float(np.median(series)) if series else float("nan")
                rows[f"{dev} {size}px {WHAT[mode]}"] = {
                    "p50_ms": p50,
                    "p95_ms": float(np.percentile(series, 95)) if series else float("nan"),
                    "n": len(series),
                    "ratio_to_frozen": p50 / frozen if frozen else float("nan"),
                }
                done += 1
                emit(progress, done, total, "latency")
    host = {
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if "cuda" in devices else None,
    }
    settings = {
        "bench": "latency",
        "image": str(image),
        "labels": str(labels),
        "sizes": list(sizes),
        "modes": list(modes),
        "objects": objects,
        "clicks": clicks,
        "seed": seed,
        "devices": devices,
    }
    results = {"rows": rows, "raw_ms": raw, "objects": ids, "host": host, "settings": settings}
    if out:
        write_json(results, out)
    return results


def report(results: dict) -> str:
    """The host line, the latency table and, per device, how the frozen click scales with size."""
    host, s = results["host"], results["settings"]
    lines = [
        f"{len(results['objects'])} objects x {s['clicks']} clicks; host: {host['cpu']}, torch {host['torch']}, "
        f"threads {host['torch_threads']}" + (f", GPU {host['cuda']}" if host["cuda"] else ""),
        format_table(results["rows"], ["p50_ms", "p95_ms", "n", "ratio_to_frozen"]),
    ]
    rows = results["rows"]
    for dev in s["devices"]:
        base, big = s["sizes"][0], s["sizes"][-1]
        a, b = rows.get(f"{dev} {base}px frozen click"), rows.get(f"{dev} {big}px frozen click")
        if a and b:
            lines.append(f"{dev}: frozen click p50 {big}px / {base}px = {b['p50_ms'] / a['p50_ms']:.3f}")
    return "\n".join(lines)
