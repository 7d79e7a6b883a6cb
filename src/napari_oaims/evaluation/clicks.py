"""``oaims bench clicks``: the shipped model vs click-seeded classical baselines (robot users)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from napari_oaims.core.progress import Progress, scoped
from napari_oaims.evaluation.classical import ClickSeeded
from napari_oaims.evaluation.common import (
    ModelMethod,
    Protocol,
    format_table,
    load_pair,
    plot_curves,
    run_targets,
    summary_row,
    target_ids,
    write_json,
)

__all__ = ["COLUMNS", "METHODS", "compare_methods", "load_pair", "report"]

METHODS = ("model", "random_walker", "watershed")
COLUMNS = [
    "dice@1",
    "dice@2",
    "dice@3",
    "dice@5",
    "dice@10",
    "noc@0.80",
    "noc@0.85",
    "noc@0.90",
    "auc",
    "latency_p50_ms",
    "latency_p95_ms",
    "refused",
    "empty",
]


def compare_methods(
    image: str | Path,
    labels: str | Path,
    methods: Sequence[str] = METHODS,
    protocol: Protocol | None = None,
    out: str | Path | None = None,
    plot: str | Path | None = None,
    progress: Progress | None = None,
) -> dict:
    """Every method of ``methods`` on the targets of ``labels`` (files), one after the other, with
    the robot user of ``protocol`` (None: :class:`Protocol`'s defaults).

    Returns (and with ``out`` writes as JSON) ``settings``, ``targets`` and per method its
    ``summary`` (see :func:`~napari_oaims.evaluation.common.summary_row`), Dice ``curves`` and
    click ``latency_ms``; ``plot`` saves mean Dice vs clicks. ``progress(done, total, method)``
    counts targets.
    """
    protocol = protocol or Protocol()
    methods = list(methods)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {METHODS}")
    img, lab = load_pair(image, labels)
    ids = target_ids(lab)[: protocol.max_targets]
    per_method: dict[str, dict] = {}
    for name in methods:
        method = ModelMethod(protocol.make_engine(), img, protocol.fresh) if name == "model" else ClickSeeded(img, name)
        step = scoped(progress, name)
        result = run_targets(method, lab, ids, protocol.make_robot(), protocol.clicks, progress=step)
        summary = summary_row(result, ks=(1, 2, 3, 5, 10))
        # Clicks refused (ValueError) and positive clicks answered with an empty mask.
        summary["refused"] = getattr(method, "refused", 0)
        summary["empty"] = getattr(method, "empty_positive", 0)
        per_method[name] = {
            "summary": summary,
            "curves": result["curves"],
            "latency_ms": [round(v, 2) for v in result["latency_ms"]],
        }
    settings = {
        "bench": "clicks",
        "image": str(image),
        "labels": str(labels),
        "methods": ",".join(methods),
        "out": str(out),
        "plot": str(plot),
        **protocol.settings(),
    }
    results = {"settings": settings, "targets": ids, "methods": per_method}
    if out:
        write_json(results, out)
    if plot:
        plot_curves(
            {m: r["curves"] for m, r in per_method.items()}, plot, f"{len(ids)} targets, robot {protocol.robot}"
        )
    return results


def report(results: dict) -> str:
    """The protocol line and the methods table of a :func:`compare_methods` result."""
    s = results["settings"]
    head = (
        f"{len(results['targets'])} targets, {s['clicks']} clicks, robot={s['robot']}, noise={s['noise']}, "
        f"wrong_label={s['wrong_label']}, seed={s['seed']}"
    )
    return head + "\n" + format_table({m: r["summary"] for m, r in results["methods"].items()}, COLUMNS)
