"""``oaims bench adapt``: online adaptation methods on a sequence of targets (seed 000 section 3.2).

For every shift of the suite and every method: a fresh engine with the shipped weights and that
adaptation, the targets in one fixed order (seeded random, or worst-first by the frozen model's
Dice@1), ``protocol.clicks`` robot clicks each, ``accept()`` after each target (PI runs there).
Same order, robot and seed for all methods. ``robustness=True`` adds the runs of seed 000
section 3.3 (:data:`ROBUSTNESS`). The failure suites (:data:`SUITES`) put learning at risk: the
accept-as-is user (one centre click, accept) and a flooding image where the frozen first click
spills far beyond the object and the robot corrects with many negative clicks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from napari_oaims.core.progress import Progress, emit, scoped
from napari_oaims.evaluation.common import (
    ModelMethod,
    Protocol,
    format_table,
    load_pair,
    run_targets,
    summary_row,
    target_ids,
    write_json,
)
from napari_oaims.evaluation.shifts import SHIFTS, apply_shift

DEFAULT_METHODS = ("none", "ia_sa", "tsca", "ce", "entropy", "pi", "mi", "oaims")
ROBUST_METHODS = ("none", "tsca", "oaims")
ORDERS = ("random", "worst-first")
COLUMNS = [
    "dice@1", "dice@5", "dice@10", "noc@0.80", "noc@0.85", "noc@0.90", "auc", "latency_p50_ms", "empty+", "rollbacks"
]  # fmt: skip
#: The suites (``suite=``): what each runs.
SUITES = {
    "shifts": "the shift suite of the given image (evaluation.shifts), the robot's clicks on every target",
    "accept": "the accept-as-is user on the shift suite: one centre click per target, accept what comes back",
    "flooding": "the procedural flooding image (evaluation.suites.flooding), first window "
    "FLOOD_WINDOW px: the frozen first click spills far beyond each object",
}
#: First-click window (px) of the flooding suite: larger structures set the object size.
FLOOD_WINDOW = 256
#: The robustness runs: what each changes in the main run.
ROBUSTNESS = {
    "wrong40": {"wrong_label": "fraction"},
    "first4_wrong": {"wrong_label": "first_n"},
    "targets40_wrong": {"wrong_label": "targets"},
    "worst_first": {"order": "worst-first"},
    "clicks50": {"clicks": 50},
}


def order_targets(ids: list[int], order: str, seed: int, frozen_dice1: dict[int, float] | None = None) -> list[int]:
    """``ids`` in a seeded random order, or worst first by the frozen model's Dice@1 per target."""
    if order == "random":
        return [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    if order == "worst-first":
        if frozen_dice1 is None:
            raise ValueError("worst-first ordering needs the frozen model's Dice@1 per target")
        return sorted(ids, key=lambda t: (frozen_dice1[t], t))
    raise ValueError(f"unknown order {order!r}; use one of {ORDERS}")


def run_method(protocol: Protocol, method: str, image, labels, ids, clicks: int, progress=None) -> dict:
    """One method on one target sequence with a fresh engine on the protocol's weights:
    ``curves`` and ``latency_ms`` (see :func:`~napari_oaims.evaluation.common.run_targets`),
    ``updates``, ``empty_positive`` (positive clicks answered with an empty mask) and
    ``rollbacks`` (rolled-back updates by reason). ``progress(done, total, message)`` counts targets."""
    engine = protocol.make_engine(adaptation=method)
    model = ModelMethod(engine, image)
    result = run_targets(model, labels, ids, protocol.make_robot(), clicks, progress=progress)
    result["updates"] = engine.updates
    result["empty_positive"] = model.empty_positive
    result["rollbacks"] = model.rollbacks()
    return result


def _evaluate(
    protocol: Protocol, shift: str, image, labels, seq: list[int], method: str, clicks: int, over: dict, progress=None
) -> dict:
    """One (shift, run, method) cell: a fresh engine on ``seq``; returns its summary and curves."""
    if "wrong_label" in over:
        protocol = dataclasses.replace(protocol, wrong_label=over["wrong_label"])
    res = run_method(protocol, method, image, labels, seq, clicks, progress=progress)
    row = summary_row(res)
    row["updates"] = res["updates"]
    row["empty+"] = res["empty_positive"]
    row["rollbacks"] = sum(res["rollbacks"].values())
    return {"summary": row, "curves": res["curves"], "rollbacks": res["rollbacks"]}


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def worker_threads(jobs: int) -> int:
    """Torch threads per cell: all of them in one process, the cores shared out between several."""
    import os

    import torch

    return torch.get_num_threads() if jobs <= 1 else max(1, (os.cpu_count() or 1) // jobs)


def _cells(protocol: Protocol, tasks: list[tuple], jobs: int, desc: str, progress: Progress | None) -> list[dict]:
    """Evaluate ``tasks`` (``_evaluate`` arguments after the protocol), in order, in ``jobs`` processes.

    One process reports progress per target of each cell (``"shift/method"``); several share the
    CPU cores between them (``cores // jobs`` torch threads each) and report finished cells
    (``desc``). Frozen cells do not depend on the thread count; adaptive ones can, in the last bits
    of each update, and along a long sequence that can move a click and then the curves.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    if jobs <= 1:
        out = []
        for shift, image, labels, seq, method, clicks, over in tasks:
            what = f"{shift}/{method}"
            step = scoped(progress, what)
            out.append(_evaluate(protocol, shift, image, labels, seq, method, clicks, over, progress=step))
        return out
    threads = worker_threads(jobs)
    # "spawn": torch's thread pools do not survive a fork.
    with ProcessPoolExecutor(
        min(jobs, len(tasks)), mp_context=get_context("spawn"), initializer=_init_worker, initargs=(threads,)
    ) as pool:
        futures = [pool.submit(_evaluate, protocol, *task) for task in tasks]
        done = [0]

        def finished(_future) -> None:
            done[0] += 1
            emit(progress, done[0], len(futures), desc)

        try:
            for f in futures:
                f.add_done_callback(finished)
            return [f.result() for f in futures]
        except BaseException:  # an error or Ctrl-C: do not start the cells still waiting
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def run_suite(
    image: str | Path | None,
    labels: str | Path | None,
    methods: Sequence[str] = DEFAULT_METHODS,
    shifts: Sequence[str] | None = None,
    order: str = "random",
    robustness: bool = False,
    robust_methods: Sequence[str] = ROBUST_METHODS,
    protocol: Protocol | None = None,
    jobs: int = 1,
    out: str | Path | None = None,
    plot: str | Path | None = None,
    progress: Progress | None = None,
    suite: str = "shifts",
) -> dict:
    """Every adaptation method (spec strings such as ``"oaims:mi_lr=3e-5"``) on every shift of
    ``shifts`` (None: the whole suite, :data:`~napari_oaims.evaluation.shifts.SHIFTS`).

    ``order`` of the targets: ``"random"`` (seeded) or ``"worst-first"``; ``robustness`` adds the
    runs of :data:`ROBUSTNESS` for the methods also in ``robust_methods``; ``jobs`` processes
    evaluate the (shift, run, method) cells. Returns (and with ``out`` writes as JSON)
    ``settings`` and ``shifts``: shift -> run (``"main"`` or a robustness run) -> ``targets`` and
    per method ``summary``, ``curves`` and ``late_dice@1-3`` (mean Dice after clicks 1..3 on the
    second half of the sequence: a check for overfitting). ``plot`` saves Dice vs clicks and Dice@1
    vs position (:func:`plot_suite`). ``suite`` (:data:`SUITES`): ``"accept"`` gives every target
    one click (then accept), ``"flooding"`` runs on :func:`~napari_oaims.evaluation.suites.flooding`
    (seeded by the protocol's seed; ``image``, ``labels`` and ``shifts`` are not used) with a
    first window of :data:`FLOOD_WINDOW` px unless the protocol sets one. The summaries count
    ``empty+`` (positive clicks answered with an empty mask) and ``rollbacks`` (updates the guard
    undid; ``rollbacks`` per cell gives their reasons). Bad methods or settings raise ValueError
    before any work.
    """
    from napari_oaims.adapt import make_adapter

    protocol = protocol or Protocol()
    methods, robust_methods = [m.strip() for m in methods], [m.strip() for m in robust_methods]
    for m in methods:  # unknown methods and bad settings fail here, before any long work
        make_adapter(m)
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; use one of {ORDERS}")
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose from {sorted(SUITES)}")
    if suite == "accept":
        protocol = dataclasses.replace(protocol, clicks=1)
    if suite == "flooding":
        from napari_oaims.evaluation.suites import flooding

        if protocol.first_window is None:
            protocol = dataclasses.replace(protocol, first_window=FLOOD_WINDOW)
        shifts = ["flooding"]
        pairs = {"flooding": flooding(protocol.seed)}
    else:
        shifts = list(shifts) if shifts else list(SHIFTS)
        unknown = [s for s in shifts if s not in SHIFTS]
        if unknown:
            raise ValueError(f"unknown shift(s) {unknown}; choose from {sorted(SHIFTS)}")
        if image is None or labels is None:
            raise ValueError(f"suite {suite!r} needs an image and its labels")
        image0, labels0 = load_pair(image, labels)
        pairs = {shift: apply_shift(shift, image0, labels0) for shift in shifts}
    settings = {
        "bench": "adapt",
        "suite": suite,
        "image": str(image),
        "labels": str(labels),
        "shift": str(shifts),
        "methods": ",".join(methods),
        "order": order,
        "robustness": str(robustness),
        "robust_methods": ",".join(robust_methods),
        "out": str(out),
        "plot": str(plot),
        "jobs": str(jobs),
        **protocol.settings(),
        "torch_threads": str(worker_threads(jobs)),
    }  # adaptive curves depend on it
    data = pairs
    ids = {shift: target_ids(lab) for shift, (_, lab) in data.items()}
    runs: dict[str, dict] = {"": {}}
    if robustness:
        runs.update({name: dict(setting) for name, setting in ROBUSTNESS.items()})
    # Worst-first ordering and the robustness runs need the frozen model's Dice@1 per target.
    frozen: dict = dict.fromkeys(shifts)
    if order == "worst-first" or robustness:
        cells = _cells(
            protocol,
            [(shift, *data[shift], ids[shift], "none", 1, {}) for shift in shifts],
            jobs,
            "frozen Dice@1",
            progress,
        )
        frozen = {shift: {t: c[0] for t, c in zip(ids[shift], cell["curves"])} for shift, cell in zip(shifts, cells)}
    plan = []  # (shift, run name, method, sequence, clicks, overrides)
    for shift in shifts:
        for run_name, over in runs.items():
            seq = order_targets(ids[shift], over.get("order", order), protocol.seed, frozen[shift])
            seq = seq[: protocol.max_targets]
            chosen = methods if not run_name else [m for m in methods if m in robust_methods]
            plan += [(shift, run_name, m, seq, over.get("clicks", protocol.clicks), over) for m in chosen]
    cells = _cells(
        protocol, [(sh, *data[sh], seq, m, k, over) for sh, _, m, seq, k, over in plan], jobs, "cells", progress
    )
    results: dict = {"settings": settings, "shifts": {}}
    for shift in shifts:
        shift_out = {}
        for run_name in runs:
            mine = [(p, c) for p, c in zip(plan, cells) if p[0] == shift and p[1] == run_name]
            if not mine:
                continue
            seq = mine[0][0][3]
            per = {p[2]: c for p, c in mine}
            half = len(seq) // 2  # overfitting check: early clicks on the later targets
            for m in per:
                late = [c[:3] for c in per[m]["curves"][half:]]
                per[m]["late_dice@1-3"] = np.mean(late, axis=0).round(4).tolist()
            shift_out[run_name or "main"] = {"targets": seq, "methods": per}
        results["shifts"][shift] = shift_out
    if out:
        write_json(results, out)
    if plot:
        plot_suite(suite_curves(results), plot)
    return results


def suite_curves(results: dict, run: str = "main") -> dict[str, dict[str, list[list[float]]]]:
    """shift -> method -> Dice curves of run ``run`` of a :func:`run_suite` result."""
    return {
        shift: {m: per["curves"] for m, per in runs[run]["methods"].items()}
        for shift, runs in results["shifts"].items()
        if run in runs
    }


def report(results: dict, late: bool = True) -> str:
    """One table per shift and run of a :func:`run_suite` (or merged) result; with ``late``, the
    Dice after clicks 1..3 on the second half of each sequence."""
    lines = []
    for shift, runs in results["shifts"].items():
        for run_name, body in runs.items():
            per = body["methods"]
            clicks = len(next(iter(per.values()))["curves"][0]) if per and body["targets"] else 0
            extra = f" run={run_name}" if run_name != "main" else ""
            lines.append(f"shift={shift}{extra} ({len(body['targets'])} targets, {clicks} clicks)")
            lines.append(format_table({m: c["summary"] for m, c in per.items()}, COLUMNS))
            if late:
                lines += [
                    f"  {m}: Dice@1..3 on the second half of the sequence: {c['late_dice@1-3']}"
                    for m, c in per.items()
                    if "late_dice@1-3" in c
                ]
    return "\n".join(lines)


def position_path(path: str | Path) -> str:
    """Where :func:`plot_suite` saves its Dice@1-vs-position plot, beside ``path``."""
    path = str(path)
    return path[:-4] + "_position.png" if path.endswith(".png") else path + "_position.png"


def plot_suite(plots: dict[str, dict[str, list[list[float]]]], path: str | Path, window: int = 10) -> None:
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
                    ax.plot(
                        np.arange(k, len(d1) + 1), np.convolve(d1, np.ones(k) / k, mode="valid"), label=method, lw=1.4
                    )
                    ax.set_xlabel("position in sequence")
                    ax.set_ylabel(f"Dice@1 (moving mean of {k})")
            ax.set_title(shift)
            ax.grid(alpha=0.3)
        axes[0][-1].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path if kind == "clicks" else position_path(path), dpi=110)
        plt.close(fig)
