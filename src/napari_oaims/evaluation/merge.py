"""``oaims bench merge``: join ``oaims bench adapt`` results run separately into one table.

Methods of the adaptation benchmark can run in separate processes or on separate days (one
``--methods`` list each); this puts their JSON results side by side. Results are merged only when
they were made under the same protocol (image, labels, robot, noise, wrong labels, order, seed,
number of clicks) and, for every shift and run they share, on the same target sequence. A method
found in several files must have identical curves there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from napari_oaims.evaluation.common import write_json

#: Settings that define the protocol: results that differ in one of them are not comparable.
PROTOCOL = ("image", "labels", "robot", "noise", "wrong_label", "order", "seed", "clicks")


def load_result(path: str | Path) -> dict:
    """Read one ``bench adapt`` JSON result, with a clear error for anything else."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a readable JSON file ({err})") from None
    if not isinstance(data, dict) or data.get("settings", {}).get("bench") != "adapt" or "shifts" not in data:
        raise ValueError(f"{path}: not a result of 'oaims bench adapt'")
    return data


def merge_results(results: list[dict], names: list[str] | None = None) -> dict:
    """One result holding the methods of all ``results`` (see the module docstring for the checks)."""
    if not results:
        raise ValueError("nothing to merge")
    names = names or [f"result {i + 1}" for i in range(len(results))]
    first = results[0]["settings"]
    for res, name in zip(results[1:], names[1:]):
        diff = [k for k in PROTOCOL if res["settings"].get(k) != first.get(k)]
        if diff:
            detail = ", ".join(f"{k}: {first.get(k)!r} vs {res['settings'].get(k)!r}" for k in diff)
            raise ValueError(f"{name} was made under another protocol than {names[0]} ({detail})")
    merged: dict = {"settings": {**first, "methods": None, "merged_from": names}, "shifts": {}}
    methods: list[str] = []
    for res, name in zip(results, names):
        for shift, runs in res["shifts"].items():
            out_runs = merged["shifts"].setdefault(shift, {})
            for run, body in runs.items():
                out = out_runs.setdefault(run, {"targets": body["targets"], "methods": {}})
                if out["targets"] != body["targets"]:
                    raise ValueError(f"{name}: shift {shift!r} run {run!r} has another target sequence")
                for method, per in body["methods"].items():
                    known = out["methods"].get(method)
                    if known is not None and known["curves"] != per["curves"]:
                        raise ValueError(
                            f"{name}: method {method!r} on shift {shift!r} run {run!r} differs from "
                            "an earlier file; merge only one run of each method"
                        )
                    out["methods"][method] = per
                    if method not in methods:
                        methods.append(method)
    merged["settings"]["methods"] = ",".join(methods)
    return merged


def markdown_table(result: dict, run: str = "main", ks=(1, 5, 10), noc: str = "noc@0.85") -> str:
    """Shifts x methods: ``Dice@k1/k2/k3 (NoC)`` per cell, methods in first-seen order."""
    methods: list[str] = []
    for runs in result["shifts"].values():
        for m in runs.get(run, {}).get("methods", {}):
            if m not in methods:
                methods.append(m)
    lines = ["| shift | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for shift, runs in result["shifts"].items():
        if run not in runs:
            continue
        cells = []
        for m in methods:
            per = runs[run]["methods"].get(m)
            if per is None:
                cells.append("")
                continue
            s = per["summary"]
            dice = "/".join(f"{s[f'dice@{k}']:.3f}".lstrip("0") for k in ks)
            cells.append(f"{dice} ({s[noc]:.2f})")
        lines.append(f"| {shift} ({len(runs[run]['targets'])}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def merge_files(
    paths: Sequence[str | Path],
    out: str | Path | None = None,
    markdown: str | Path | None = None,
    plot: str | Path | None = None,
) -> dict:
    """Merge the ``bench adapt`` results in the files ``paths`` (:func:`merge_results`).

    Returns the merged result; with ``out`` writes it as JSON, with ``markdown`` writes its
    :func:`markdown_table`, with ``plot`` saves its Dice-vs-clicks and Dice@1-vs-position plots
    (:func:`~napari_oaims.evaluation.adapt.plot_suite`).
    """
    from napari_oaims.evaluation.adapt import plot_suite, suite_curves

    merged = merge_results([load_result(p) for p in paths], [str(p) for p in paths])
    if markdown:
        Path(markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(markdown).write_text(markdown_table(merged) + "\n")
    if out:
        write_json(merged, out)
    if plot:
        plot_suite(suite_curves(merged), plot)
    return merged


def report(merged: dict) -> str:
    """One table per shift and run, then the shifts x methods table (Markdown)."""
    from napari_oaims.evaluation.adapt import report as tables

    return tables(merged, late=False) + "\n\nDice@1/5/10 (NoC@0.85), targets in brackets:\n" + markdown_table(merged)
