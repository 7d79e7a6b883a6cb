"""``oaims bench adapt``: online adaptation methods on a sequence of targets (seed 000 section 3.2).

For every shift of the suite and every method: a fresh engine with the shipped weights and that
adaptation, the targets in one fixed order (seeded random, or worst-first by the frozen model's
Dice@1), ``--clicks`` robot clicks each, ``accept()`` after each target (PI runs there). Same
order, robot and seed for all methods. ``--robustness`` adds the runs of seed 000 section 3.3.
"""

from __future__ import annotations

import argparse

import numpy as np

from napari_oaims.adapt import ADAPTERS, make_adapter, parse_spec
from napari_oaims.simulate.robot import Robot, WrongLabel
from napari_oaims.evaluation.clicks import add_robot_args, load_pair, make_engine
from napari_oaims.evaluation.common import ModelMethod, format_table, run_targets, summary_row, target_ids, write_json
from napari_oaims.evaluation.shifts import SHIFTS, apply_shift

DEFAULT_METHODS = ("none", "ia_sa", "tsca", "ce", "entropy", "pi", "mi", "oaims")
COLUMNS = ["dice@1", "dice@5", "dice@10", "noc@0.80", "noc@0.85", "noc@0.90", "auc", "latency_p50_ms"]
ROBUSTNESS = {
    "wrong40": {"wrong_label": "fraction"},
    "first4_wrong": {"wrong_label": "first_n"},
    "targets40_wrong": {"wrong_label": "targets"},
    "worst_first": {"order": "worst-first"},
    "clicks50": {"clicks": 50},
}


def order_targets(ids: list[int], order: str, seed: int, frozen_dice1: dict[int, float] | None = None) -> list[int]:
    if order == "random":
        return [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    if order == "worst-first":
        if frozen_dice1 is None:
            raise ValueError("worst-first ordering needs the frozen model's Dice@1 per target")
        return sorted(ids, key=lambda t: (frozen_dice1[t], t))
    raise ValueError(f"unknown order {order!r}; use 'random' or 'worst-first'")


def run_method(args: argparse.Namespace, method: str, image, labels, ids, clicks: int, robot: Robot,
               progress=None) -> dict:
    """One method on one target sequence with a fresh engine on the base weights."""
    engine = make_engine(args, adaptation=method)
    result = run_targets(ModelMethod(engine, image), labels, ids, robot, clicks, progress=progress)
    result["updates"] = engine.updates
    return result


def _robot(args, **over) -> Robot:
    wrong = over.get("wrong_label", args.wrong_label)
    return Robot(strategy=args.robot, noise=args.noise, wrong_label=WrongLabel(mode=wrong) if wrong else None,
                 seed=args.seed)


def _evaluate(args: argparse.Namespace, shift: str, image, labels, seq: list[int], method: str, clicks: int,
              over: dict, progress=None) -> dict:
    """One (shift, run, method) cell: a fresh engine on ``seq``; returns its summary and curves."""
    res = run_method(args, method, image, labels, seq, clicks, _robot(args, **over), progress=progress)
    row = summary_row(res)
    row["updates"] = res["updates"]
    return {"summary": row, "curves": res["curves"]}


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _worker_threads(jobs: int) -> int:
    """Torch threads per cell: all of them in one process, the cores shared out between several."""
    import os

    import torch

    return torch.get_num_threads() if jobs <= 1 else max(1, (os.cpu_count() or 1) // jobs)


def _cells(args, tasks: list[tuple], desc: str) -> list[dict]:
    """Evaluate ``tasks`` (``_evaluate`` arguments after ``args``), in order; ``--jobs`` processes.

    One process shows a bar per target sequence; several share the CPU cores between them
    (``cores // jobs`` torch threads each) and show one bar over the cells. Frozen cells do not
    depend on the thread count; adaptive ones can, in the last bits of each update, and along a
    long sequence that can move a click and then the curves.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from tqdm import tqdm

    if args.jobs <= 1:
        out = []
        for shift, image, labels, seq, method, clicks, over in tasks:
            bar = tqdm(total=len(seq), desc=f"{shift}/{method}", leave=False)
            out.append(_evaluate(args, shift, image, labels, seq, method, clicks, over,
                                 progress=lambda i, n: bar.update(1)))
            bar.close()
        return out
    plain = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "func"})
    jobs = min(args.jobs, len(tasks))
    threads = _worker_threads(args.jobs)
    # "spawn": torch's thread pools do not survive a fork.
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(threads,)) as pool:
        futures = [pool.submit(_evaluate, plain, *task) for task in tasks]
        try:
            with tqdm(total=len(futures), desc=desc, leave=False) as bar:
                for f in futures:
                    f.add_done_callback(lambda _: bar.update(1))
                return [f.result() for f in futures]
        except BaseException:  # an error or Ctrl-C: do not start the cells still waiting
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def run(args: argparse.Namespace) -> int:
    image0, labels0 = load_pair(args.image, args.labels)
    methods = [m.strip() for m in args.methods.split(",")]
    bad = [m for m in methods if parse_spec(m)[0] not in ADAPTERS]
    if bad:
        raise SystemExit(f"unknown method(s) {bad}; choose from {sorted(ADAPTERS)} (settings as name:key=value)")
    for m in methods:  # bad settings fail here, before any long work
        make_adapter(m)
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be at least 1, got {args.jobs}")
    shifts = args.shift or list(SHIFTS)
    results: dict = {"settings": {k: str(v) for k, v in vars(args).items() if k != "func"}, "shifts": {}}
    results["settings"]["torch_threads"] = str(_worker_threads(args.jobs))  # adaptive curves depend on it
    data = {shift: apply_shift(shift, image0, labels0) for shift in shifts}
    ids = {shift: target_ids(labels) for shift, (_, labels) in data.items()}
    runs = {"": {}}
    if args.robustness:
        runs.update({name: dict(setting) for name, setting in ROBUSTNESS.items()})
    # Worst-first ordering and the robustness runs need the frozen model's Dice@1 per target.
    frozen: dict = {shift: None for shift in shifts}
    if args.order == "worst-first" or args.robustness:
        cells = _cells(args, [(shift, *data[shift], ids[shift], "none", 1, {}) for shift in shifts], "frozen Dice@1")
        frozen = {shift: {t: c[0] for t, c in zip(ids[shift], cell["curves"])} for shift, cell in zip(shifts, cells)}
    plan = []  # (shift, run name, method, sequence, clicks, overrides)
    for shift in shifts:
        for run_name, over in runs.items():
            seq = order_targets(ids[shift], over.get("order", args.order), args.seed, frozen[shift])[: args.max_targets]
            chosen = methods if not run_name else [m for m in methods if m in args.robust_methods.split(",")]
            plan += [(shift, run_name, m, seq, over.get("clicks", args.clicks), over) for m in chosen]
    cells = _cells(args, [(sh, *data[sh], seq, m, k, over) for sh, _, m, seq, k, over in plan], "cells")
    plots: dict = {}
    for shift in shifts:
        shift_out = {}
        for run_name in runs:
            mine = [(p, c) for p, c in zip(plan, cells) if p[0] == shift and p[1] == run_name]
            if not mine:
                continue
            seq, clicks = mine[0][0][3], mine[0][0][4]
            per = {p[2]: c for p, c in mine}
            title = f"shift={shift}" + (f" run={run_name}" if run_name else "") + f" ({len(seq)} targets, {clicks} clicks)"
            print(title)
            print(format_table({m: c["summary"] for m, c in per.items()}, COLUMNS))
            half = len(seq) // 2  # overfitting check: early clicks on the later targets
            for m in per:
                late = [c[:3] for c in per[m]["curves"][half:]]
                per[m]["late_dice@1-3"] = np.mean(late, axis=0).round(4).tolist()
                print(f"  {m}: Dice@1..3 on the second half of the sequence: {per[m]['late_dice@1-3']}")
            shift_out[run_name or "main"] = {"targets": seq, "methods": per}
            if not run_name:
                plots[shift] = {m: per[m]["curves"] for m in per}
        results["shifts"][shift] = shift_out
    if args.out:
        write_json(results, args.out)
        print(f"saved {args.out}")
    if args.plot:
        plot_suite(plots, args.plot)
        print(f"saved {args.plot} and {_position_path(args.plot)}")
    return 0


def _position_path(path: str) -> str:
    return path[:-4] + "_position.png" if path.endswith(".png") else path + "_position.png"


def plot_suite(plots: dict[str, dict[str, list[list[float]]]], path: str, window: int = 10) -> None:
    """Dice vs clicks per shift, and Dice@1 vs position in the sequence (moving average)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(plots)
    for kind in ("clicks", "position"):
        fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.4), squeeze=False)
        for ax, (shift, by_method) in zip(axes[0], plots.items()):
            for method, curves in by_method.items():
                arr = np.array([c + [c[-1]] * (max(map(len, curves)) - len(c)) for c in curves])
                if kind == "clicks":
                    ax.plot(np.arange(1, arr.shape[1] + 1), arr.mean(0), label=method, lw=1.4)
                    ax.set_xlabel("clicks")
                    ax.set_ylabel("mean Dice")
                else:
                    d1 = arr[:, 0]
                    k = min(window, len(d1))
                    ax.plot(np.arange(k, len(d1) + 1), np.convolve(d1, np.ones(k) / k, mode="valid"), label=method, lw=1.4)
                    ax.set_xlabel("position in sequence")
                    ax.set_ylabel(f"Dice@1 (moving mean of {k})")
            ax.set_title(shift)
            ax.grid(alpha=0.3)
        axes[0][-1].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path if kind == "clicks" else _position_path(path), dpi=110)
        plt.close(fig)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("adapt", help="online adaptation methods on a target sequence, over a shift suite")
    p.add_argument("--image", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--shift", action="append", choices=sorted(SHIFTS), help="repeat; default: the whole suite")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    p.add_argument("--order", default="random", choices=["random", "worst-first"])
    p.add_argument("--robustness", action="store_true", help="also run the seed 000 section 3.3 settings")
    p.add_argument("--robust-methods", default="none,tsca,oaims", help="methods for the robustness runs")
    p.add_argument("--out", default=None)
    p.add_argument("--plot", default=None, help="Dice-vs-clicks PNG (a *_position.png is saved beside it)")
    p.add_argument("--jobs", type=int, default=1,
                   help="evaluate the (shift, run, method) cells in this many processes, cores // N torch threads "
                        "each; adaptive curves and latencies are only reproducible with the same thread count")
    add_robot_args(p)
    p.set_defaults(func=run)
