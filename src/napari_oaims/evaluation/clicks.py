"""``oaims bench clicks``: the shipped model vs click-seeded classical baselines (robot users)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import numpy as np

from napari_oaims.core.files import read_array
from napari_oaims.simulate.robot import Robot, WrongLabel
from napari_oaims.evaluation.classical import ClickSeeded
from napari_oaims.evaluation.common import ModelMethod, format_table, plot_curves, run_targets, summary_row, target_ids, write_json

if TYPE_CHECKING:
    from napari_oaims.engine import Engine

METHODS = ("model", "random_walker", "watershed")
COLUMNS = ["dice@1", "dice@3", "dice@5", "dice@10", "noc@0.80", "noc@0.85", "noc@0.90", "auc",
           "latency_p50_ms", "latency_p95_ms"]


def add_robot_args(p: argparse.ArgumentParser) -> None:
    """Robot-user options shared by the benchmarks."""
    p.add_argument("--clicks", type=int, default=10, help="clicks per target")
    p.add_argument("--robot", default="center", choices=["center", "random", "edt", "uniform"])
    p.add_argument("--noise", default=None, choices=["realistic"], help="realistic click noise (seed 004 eq. 28)")
    p.add_argument("--wrong-label", default=None, choices=["fraction", "first_n", "targets"],
                   help="wrong-label clicks (seed 000 table 11: 40%% / first 4 / 40%% of targets)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-targets", type=int, default=None, help="only the first N targets (in order)")
    p.add_argument("--device", default="auto")
    p.add_argument("--weights", default=None, help="weights to evaluate (default: the shipped ones)")
    p.add_argument("--first-window", type=first_window_arg, default=None,
                   help="window side (px) for each object's first click, or 'auto' (default: the weights' own)")


def first_window_arg(text: str) -> int | str:
    """``--first-window``: 'auto' or a whole number of pixels (checked by the engine)."""
    if text == "auto":
        return text
    try:
        size = int(text)
    except ValueError:
        size = 0
    if not 8 <= size <= 4096:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number of pixels in [8, 4096], got {text!r}")
    return size


def make_engine(args: argparse.Namespace, adaptation: str = "none") -> "Engine":
    """A fresh engine on ``--weights`` with ``--first-window`` applied."""
    from napari_oaims.engine import Engine

    engine = Engine.pretrained(device=args.device, adaptation=adaptation, weights=args.weights)
    if getattr(args, "first_window", None) is not None:
        engine.first_window = args.first_window
    return engine


def make_robot(args: argparse.Namespace) -> Robot:
    wrong = WrongLabel(mode=args.wrong_label) if args.wrong_label else None
    return Robot(strategy=args.robot, noise=args.noise, wrong_label=wrong, seed=args.seed)


def load_pair(image_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    image, labels = read_array(image_path), read_array(labels_path)
    if labels.shape != image.shape[: labels.ndim] or labels.ndim != 2:
        raise ValueError(f"labels {labels.shape} must be a 2D label image matching the image {image.shape}")
    if labels.dtype.kind not in "iub":
        raise ValueError(f"labels must be an integer label image, got dtype {labels.dtype}")
    return image, labels


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    image, labels = load_pair(args.image, args.labels)
    ids = target_ids(labels)[: args.max_targets]
    methods = [m.strip() for m in args.methods.split(",")]
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown method(s) {sorted(unknown)}; choose from {METHODS}")
    rows, curves, per_method = {}, {}, {}
    for name in methods:
        method = ModelMethod(make_engine(args), image) if name == "model" else ClickSeeded(image, name)
        bar = tqdm(total=len(ids), desc=name, unit="target", leave=False)
        result = run_targets(method, labels, ids, make_robot(args), args.clicks, progress=lambda i, n: bar.update(1))
        bar.close()
        rows[name] = summary_row(result)
        curves[name] = result["curves"]
        per_method[name] = {"summary": rows[name], "curves": result["curves"],
                            "latency_ms": [round(v, 2) for v in result["latency_ms"]]}
    print(f"{len(ids)} targets, {args.clicks} clicks, robot={args.robot}, noise={args.noise}, "
          f"wrong_label={args.wrong_label}, seed={args.seed}")
    print(format_table(rows, COLUMNS))
    if args.out:
        write_json({"settings": {k: str(v) for k, v in vars(args).items() if k != "func"}, "targets": ids,
                    "methods": per_method}, args.out)
        print(f"saved {args.out}")
    if args.plot:
        plot_curves(curves, args.plot, f"{len(ids)} targets, robot {args.robot}")
        print(f"saved {args.plot}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("clicks", help="Dice vs clicks of the shipped model and classical baselines")
    p.add_argument("--image", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {METHODS}")
    p.add_argument("--out", default=None, help="results JSON")
    p.add_argument("--plot", default=None, help="Dice-vs-clicks PNG")
    add_robot_args(p)
    p.set_defaults(func=run)
