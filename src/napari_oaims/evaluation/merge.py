"""``oaims bench merge``: join ``oaims bench adapt`` results run separately into one table.

Methods of the adaptation benchmark can run in separate processes or on separate days (one
``--methods`` list each); this puts their JSON results side by side. Results are merged only when
they were made under the same protocol (image, labels, robot, noise, wrong labels, order, seed,
number of clicks) and, for every shift and run they share, on the same target sequence. A method
found in several files must have identical curves there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from napari_oaims.evaluation.common import format_table, write_json

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
                        raise ValueError(f"{name}: method {method!r} on shift {shift!r} run {run!r} differs from "
                                         "an earlier file; merge only one run of each method")
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


def run(args: argparse.Namespace) -> int:
    from napari_oaims.evaluation.adapt import COLUMNS, plot_suite

    merged = merge_results([load_result(p) for p in args.results], [str(p) for p in args.results])
    for shift, runs in merged["shifts"].items():
        for run_name, body in runs.items():
            rows = {m: per["summary"] for m, per in body["methods"].items()}
            extra = f" run={run_name}" if run_name != "main" else ""
            print(f"shift={shift}{extra} ({len(body['targets'])} targets)")
            print(format_table(rows, COLUMNS))
    table = markdown_table(merged)
    print("\nDice@1/5/10 (NoC@0.85), targets in brackets:\n" + table)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(table + "\n")
        print(f"saved {args.markdown}")
    if args.out:
        write_json(merged, args.out)
        print(f"saved {args.out}")
    if args.plot:
        plots = {shift: {m: per["curves"] for m, per in runs["main"]["methods"].items()}
                 for shift, runs in merged["shifts"].items() if "main" in runs}
        plot_suite(plots, args.plot)
        print(f"saved {args.plot}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="join 'bench adapt' results made separately (same protocol) into one table")
    p.add_argument("results", nargs="+", help="JSON files written by 'oaims bench adapt --out'")
    p.add_argument("--out", default=None, help="merged JSON")
    p.add_argument("--markdown", default=None, help="write the shifts x methods table here")
    p.add_argument("--plot", default=None, help="Dice-vs-clicks PNG (a *_position.png is saved beside it)")
    p.set_defaults(func=run)
