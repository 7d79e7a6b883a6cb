"""``oaims bench latency``: click and update latency vs image size (GUIDE 4).

On the nuclei image tiled to each size, the same objects (those of the top-left tile) get the
same robot clicks. Measured: a frozen click (``none``), an MI click (``mi``: everything between
the click and the returned mask, including the update), and a PI update (``pi``: the accept
hook). Medians and p95 from one run; ratios to the frozen click at the same size.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from napari_oaims.simulate.robot import Robot
from napari_oaims.evaluation.clicks import load_pair
from napari_oaims.evaluation.common import format_table, target_ids, write_json


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


def run(args: argparse.Namespace) -> int:
    import torch

    from napari_oaims.engine import Engine

    image, labels = load_pair(args.image, args.labels)
    ids = target_ids(labels)
    ids = [ids[i] for i in np.random.default_rng(args.seed).permutation(len(ids))][: args.objects]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (
        ["mps"] if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else [])
    if args.device != "all":
        devices = [args.device]
    rows, raw = {}, {}
    for device in devices:
        for size in args.sizes:
            img, lab = tile(image, labels, size)
            frozen = None
            for mode in args.modes:
                engine = Engine.pretrained(device=device, adaptation=mode)
                m = measure(engine, img, lab, ids, args.clicks, args.seed)
                if mode == "none":
                    frozen = float(np.median(m["click"]))
                key = f"{device} {size} {mode}"
                raw[key] = m
                series = m["accept"] if mode == "pi" else m["click"]
                what = "PI update" if mode == "pi" else ("MI click" if mode == "mi" else "frozen click")
                p50 = float(np.median(series)) if series else float("nan")
                rows[f"{device} {size}px {what}"] = {
                    "p50_ms": p50, "p95_ms": float(np.percentile(series, 95)) if series else float("nan"),
                    "n": len(series), "ratio_to_frozen": p50 / frozen if frozen else float("nan")}
    host = {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name() if "cuda" in devices else None}
    print(f"{len(ids)} objects x {args.clicks} clicks; host: {host['cpu']}, torch {host['torch']}, "
          f"threads {host['torch_threads']}" + (f", GPU {host['cuda']}" if host["cuda"] else ""))
    print(format_table(rows, ["p50_ms", "p95_ms", "n", "ratio_to_frozen"]))
    for device in devices:
        base, big = args.sizes[0], args.sizes[-1]
        a, b = rows.get(f"{device} {base}px frozen click"), rows.get(f"{device} {big}px frozen click")
        if a and b:
            print(f"{device}: frozen click p50 {big}px / {base}px = {b['p50_ms'] / a['p50_ms']:.3f}")
    if args.out:
        write_json({"rows": rows, "raw_ms": raw, "objects": ids, "host": host}, args.out)
        print(f"saved {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("latency", help="frozen / MI click and PI update latency vs image size")
    p.add_argument("--image", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 2048, 4096])
    p.add_argument("--modes", nargs="+", default=["none", "mi", "pi"], choices=["none", "mi", "pi"])
    p.add_argument("--objects", type=int, default=20)
    p.add_argument("--clicks", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="all", help="cpu, cuda, mps, or all available")
    p.add_argument("--out", default=None)
    p.set_defaults(func=run)
