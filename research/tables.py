"""Print the tables of docs/benchmarks.md (markdown) from the result files in research/results/.

Run from the repository root::

    .venv/bin/python research/tables.py                      # every table
    .venv/bin/python research/tables.py adapt robust         # some of them
    .venv/bin/python research/tables.py --results DIR clicks # result files of another run

Tables: clicks, latency, napari, napari_propagate, store, object_size, adapt, wrong40, robust, clicks50, training.
Files may be plain ``.json`` or gzipped ``.json.gz``. A method is looked up by its name
(``oaims``) or by a command-line form of it (``oaims:replay_size=16``, the shipped settings
written out).
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np

from napari_oaims.evaluation.metrics import noc

SHIFTS = ["none", "invert", "low_snr", "down3", "illum", "edges"]
ADAPT_METHODS = ["none", "oaims", "pi", "tsca", "ia_sa", "mi", "ce", "entropy"]
ROBUST_RUNS = {
    "main": "main (10 clicks, random order)",
    "wrong40": "40% of clicks wrong-labelled",
    "first4_wrong": "first 4 clicks of every target wrong",
    "targets40_wrong": "40% of targets with every click wrong",
    "worst_first": "worst-first order",
    "clicks50": "50 clicks per target (MI on the first 10)",
}


def load(folder: Path, name: str) -> dict | None:
    """``name`` (without suffix) from ``folder`` as ``.json`` or ``.json.gz``; None if absent."""
    for path in (folder / f"{name}.json", folder / f"{name}.json.gz"):
        if path.is_file():
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt") as f:
                return json.load(f)
    return None


def method(methods: dict, name: str) -> dict | None:
    """The entry of ``name`` in a results ``methods`` dict (exact name, else ``name:...``)."""
    if name in methods:
        return methods[name]
    found = [k for k in methods if k.split(":")[0] == name]
    return methods[found[0]] if len(found) == 1 else None


def curves(results: dict, shift: str, run: str, name: str) -> np.ndarray | None:
    try:
        entry = method(results["shifts"][shift][run]["methods"], name)
    except KeyError:
        return None
    return None if entry is None else np.asarray(entry["curves"], float)


def dice3(c: np.ndarray, ks=(1, 5, 10)) -> str:
    return "/".join(f"{c[:, k - 1].mean():.3f}".lstrip("0") for k in ks)


def nocs(c: np.ndarray, level: float = 0.85) -> float:
    return float(np.mean([noc(row, level, cap=20) for row in c]))


def diff(a: np.ndarray, b: np.ndarray, ks=(1, 5, 10)) -> str:
    """``b - a`` in points of Dice at clicks ``ks``: mean ± standard error over targets."""
    d = (b - a) * 100
    return " / ".join(f"{d[:, k - 1].mean():+.1f}±{d[:, k - 1].std(ddof=1) / np.sqrt(len(d)):.1f}" for k in ks)


def f3(v: float) -> str:
    return f"{v:.3f}"


def table_clicks(r: Path) -> None:
    d = load(r, "clicks")
    if d is None:
        return
    print("| method | Dice@1 | Dice@2 | Dice@3 | Dice@5 | Dice@10 | NoC@0.85 | NoC@0.90 | AUC | click p50 / p95 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, m in d["methods"].items():
        c, s = np.asarray(m["curves"]), m["summary"]
        print(
            f"| {name} | "
            + " | ".join(f3(c[:, k - 1].mean()) for k in (1, 2, 3, 5, 10))
            + f" | {s['noc@0.85']:.2f} | {s['noc@0.90']:.2f} | {s['auc']:.3f} | "
            f"{s['latency_p50_ms']:.1f} / {s['latency_p95_ms']:.1f} ms |"
        )


def table_suites(r: Path) -> None:
    """First answers on the procedural failure suites: Dice@1 / Dice@2 per method."""
    names = ("model", "random_walker", "watershed")
    print("| suite | shipped model | random walker | marker watershed |")
    print("|---|---|---|---|")
    for k in ("cavities", "uniform", "lesions", "neighbours"):
        d = load(r, f"suites_{k}")
        if d is None:
            continue
        cells = []
        for name in names:
            m = d["methods"].get(name)
            cells.append("-" if m is None else f"{f3(m['summary']['dice@1'])} / {f3(m['summary']['dice@2'])}")
        print(f"| {k} ({len(d['targets'])}) | " + " | ".join(cells) + " |")


def table_latency(r: Path) -> None:
    for name in ("latency_cpu", "latency_gpu"):
        d = load(r, name)
        if d is None:
            continue
        rows = d["rows"]
        print(
            f"\n{name}:\n\n| image | frozen click | MI click (p50 x frozen) | PI update (p50 x frozen) |\n"
            "|---|---|---|---|"
        )
        for key in rows:
            if not key.endswith("frozen click"):
                continue
            dev_size = key[: -len(" frozen click")]
            size = int(dev_size.split()[1].rstrip("px"))
            fr, mi, pi = (rows.get(f"{dev_size} {w}") for w in ("frozen click", "MI click", "PI update"))

            def cell(x, first=False):
                if x is None:
                    return "-"
                p50 = f"{x['p50_ms']:.1f}" if first else f"{x['p50_ms']:.0f}"
                p95 = f"{x['p95_ms']:.1f}" if first else f"{x['p95_ms']:.0f}"
                return f"{p50} / {p95} ms" + ("" if first else f" ({x['ratio_to_frozen']:.1f}x)")

            print(f"| {size} x {size} | {cell(fr, True)} | {cell(mi)} | {cell(pi)} |")


def table_napari(r: Path) -> None:
    for name in ("napari_off", "napari_oaims"):
        d = load(r, name)
        if d is None:
            continue
        s = d["summary"]
        print(
            f"{name} ({d['settings']['adaptation']}): click->preview p50/p95 "
            f"{s['napari click->preview']['p50_ms']:.0f}/{s['napari click->preview']['p95_ms']:.0f} ms, "
            f"plugin share p50 {s['napari overhead']['p50_ms']:.1f} ms"
        )


def table_napari_propagate(r: Path) -> None:
    """``bench napari --propagate`` (ema, frozen) and ``--propagate-all`` (frozen), as rerun.sh names them."""

    def row(d: dict, first: str) -> str:
        api, widget = (d["summary"][k]["median_s"] for k in d["summary"])
        st = d["stall"]
        return (
            f"| {first} | {api:.3f} | {widget:.3f} | {d['speed_ratio']:.2f} | "
            f"{st['max_gap_ms']:.0f} ms ({st['p99_gap_ms']:.0f} ms) |"
        )

    print("| method | API (s) | widget (s) | widget speed / API | longest stall (p99) |\n|---|---|---|---|---|")
    for method in ("ema", "frozen"):
        d = load(r, f"napari_propagate_{method}")
        if d is not None:
            print(row(d, method))
    d = load(r, "napari_propagate_all_frozen")
    if d is not None:
        window = "hidden" if d["settings"].get("hidden") == "True" else "shown"
        print("\n| window | objects | API (s) | widget (s) | widget speed / API | longest stall (p99) |")
        print("|---|---|---|---|---|---|")
        objects = next(iter(d["summary"].values()))["objects"]
        print(row(d, f"{window} | {objects}"))
        print(f"3D Dice: {', '.join(f'{v:.3f}' for v in d['dice'])} (mean {np.mean(d['dice']):.3f})")


def table_store(r: Path) -> None:
    d = load(r, "store")
    if d is None:
        return
    a = d["autosave"]
    print(f"{a['objects']} objects, {a['events']} events; p50 / p95 ms:")
    print(f"- append_event {a['append_event']['p50_ms']:.3f} / {a['append_event']['p95_ms']:.3f}")
    print(f"- autosave, all events {a['autosave_all']['p50_ms']:.3f} / {a['autosave_all']['p95_ms']:.3f}")
    for kind, v in a["autosave_by_kind"].items():
        print(f"- autosave, {kind} {v['p50_ms']:.3f} / {v['p95_ms']:.3f}")
    print(f"- size {a['size_bytes']['total'] / 1024:.1f} KiB, reopened log equal: {a['reopened_equal']}")
    runs = d.get("kill", {}).get("runs", [])
    if runs:
        print(
            f"- kill -9: {sum(x['ok'] for x in runs)}/{len(runs)} runs consistent, "
            f"{sum(x['lost'] for x in runs)} acknowledged events lost"
        )


def table_object_size(r: Path) -> None:
    d = load(r / "object_size", "first_click")
    if d is not None:
        keys = list(d["rows"][0]["dice@1"])
        print("| nuclei rescaled (median diameter) | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
        for row in d["rows"]:
            print(
                f"| {row['scale']:g}x ({row['median_diameter_px']} px) | "
                + " | ".join(f3(row["dice@1"][k]["mean"]) for k in keys)
                + " |"
            )
    print("\n| nuclei | 64 px | 4 diameters | auto |\n|---|---|---|---|")
    for scale, four_d in ((1, 95), (2, 190), (3, 285)):
        cells = []
        for fw in (64, four_d, "auto"):
            x = load(r / "object_size", f"nuclei_x{scale}_fw{fw}")
            if x is None:
                cells.append("-")
                continue
            c = np.asarray(x["methods"]["model"]["curves"])
            cells.append(dice3(c, (1, 3, 5, 10)) + f", {x['methods']['model']['summary']['noc@0.85']:.2f}")
        print(f"| {scale}x | " + " | ".join(cells) + " |")


def table_adapt(r: Path) -> None:
    d = load(r, "adapt_shifts")
    if d is None:
        return
    print("| shift | " + " | ".join(ADAPT_METHODS) + " |\n|---|" + "---|" * len(ADAPT_METHODS))
    for s in SHIFTS:
        if s not in d["shifts"]:
            continue
        row = []
        for m in ADAPT_METHODS:
            c = curves(d, s, "main", m)
            row.append("-" if c is None else f"{dice3(c)} ({nocs(c):.2f})")
        print(f"| {s} ({len(d['shifts'][s]['main']['targets'])}) | " + " | ".join(row) + " |")
    print(
        "\n| shift | none | oaims | oaims - none at k = 1 / 5 / 10 | NoC@0.85 change | smallest difference, k = 1-10 |"
    )
    print("|---|---|---|---|---|---|")
    margins = []
    for s in SHIFTS:
        f, o = curves(d, s, "main", "none"), curves(d, s, "main", "oaims")
        if f is None or o is None:
            continue
        m = (o - f).mean(0) * 100
        print(
            f"| {s} | {dice3(f)} ({nocs(f):.2f}) | {dice3(o)} ({nocs(o):.2f}) | {diff(f, o)} | "
            f"{100 * (nocs(o) / nocs(f) - 1):+.1f}% | {m.min():+.1f} (k = {m.argmin() + 1}) |"
        )
        for b in ("tsca", "ia_sa"):
            c = curves(d, s, "main", b)
            if c is not None:
                margins.append((float(min((o - c).mean(0)[[0, 4, 9]] * 100)), s, b))
    if margins:
        low = min(margins)
        print(
            f"\nsmallest margin of oaims over tsca / ia_sa at k = 1, 5, 10: {low[0]:+.1f} points ({low[2]}, {low[1]})"
        )


def _frozen_oaims_rows(d: dict, shift: str, run: str):
    f, o = curves(d, shift, run, "none"), curves(d, shift, run, "oaims")
    return (None, None) if f is None or o is None else (f, o)


def table_wrong40(r: Path) -> None:
    main = load(r, "wrong40_shifts") or {"shifts": {}}
    robust = {s: load(r, f"robust_{s}") for s in ("invert", "edges")}
    print("| shift | frozen | OAIMS | difference k = 1 / 5 / 10 | clicks where OAIMS is below |\n|---|---|---|---|---|")
    for s in SHIFTS:
        if s in main["shifts"]:
            f, o = _frozen_oaims_rows(main, s, "main")
        elif robust.get(s) is not None:
            f, o = _frozen_oaims_rows(robust[s], s, "wrong40")
        else:
            continue
        if f is None:
            continue
        m = (o - f).mean(0) * 100
        below = [str(k + 1) for k in np.flatnonzero(m < 0)]
        print(f"| {s} | {dice3(f)} | {dice3(o)} | {diff(f, o)} | {', '.join(below) or 'none'} |")


def table_robust(r: Path) -> None:
    print("| shift | run | frozen | OAIMS | difference k = 1 / 5 / 10 | smallest difference, k = 1-10 |")
    print("|---|---|---|---|---|---|")
    for s in ("edges", "invert"):
        d = load(r, f"robust_{s}")
        if d is None:
            continue
        for run, label in ROBUST_RUNS.items():
            f, o = _frozen_oaims_rows(d, s, run)
            if f is None:
                continue
            m = (o - f).mean(0)[:10] * 100
            print(f"| {s} | {label} | {dice3(f)} | {dice3(o)} | {diff(f, o)} | {m.min():+.1f} |")
            if f.shape[1] > 10:
                t = (o - f).mean(0)[10:] * 100
                print(
                    f"|  | (clicks 11-{f.shape[1]}: smallest difference {t.min():+.2f} "
                    f"at k = {t.argmin() + 11}) | | | | |"
                )


def table_clicks50(r: Path) -> None:
    """Late targets' (second half of the sequence) Dice at clicks 1-3, with 10 and 50 clicks per target."""
    print("| shift, seed | 10 clicks | 50 clicks | 50 minus 10 |\n|---|---|---|---|")
    for s in ("edges", "invert"):
        pairs = []
        d = load(r, f"robust_{s}")
        if d is not None and curves(d, s, "clicks50", "oaims") is not None:
            pairs.append((0, curves(d, s, "main", "oaims"), curves(d, s, "clicks50", "oaims")))
        for seed in range(1, 10):
            a, b = (load(r / "clicks50_seeds", f"{s}_c{c}_seed{seed}") for c in (10, 50))
            if a is not None and b is not None:
                pairs.append((seed, curves(a, s, "main", "oaims"), curves(b, s, "main", "oaims")))
        rows = []
        for seed, a, b in pairs:
            h = len(a) // 2
            la, lb = a[h:, :3].mean(0), b[h:, :3].mean(0)
            rows.append((lb - la) * 100)
            print(
                f"| {s} {seed} | "
                + "/".join(f"{v:.3f}".lstrip("0") for v in la)
                + " | "
                + "/".join(f"{v:.3f}".lstrip("0") for v in lb)
                + " | "
                + " / ".join(f"{v:+.1f}" for v in rows[-1])
                + " |"
            )
        if len(rows) > 1:
            x = np.array(rows)
            se = x.std(0, ddof=1) / np.sqrt(len(x))
            print(
                f"| **{s}, mean ± SE over seeds** | | | **"
                + " / ".join(f"{m:+.1f}±{e:.1f}" for m, e in zip(x.mean(0), se))
                + "** |"
            )


def table_training(r: Path) -> None:
    t = r / "training"
    sets = ("default", "blobs", "cells", "soft_cells", "nuclei")
    print("| weights | " + " | ".join(sets) + " |\n|---|" + "---|" * len(sets))
    for variant in ("blur2", "shipped"):
        cells = []
        for kind in sets:
            d = load(t, f"{variant}_{kind}")
            cells.append("-" if d is None else f3(d["methods"]["model"]["summary"]["dice@1"]))
        print(f"| {variant} | " + " | ".join(cells) + " |")


TABLES = {
    "clicks": table_clicks,
    "suites": table_suites,
    "latency": table_latency,
    "napari": table_napari,
    "napari_propagate": table_napari_propagate,
    "store": table_store,
    "object_size": table_object_size,
    "adapt": table_adapt,
    "wrong40": table_wrong40,
    "robust": table_robust,
    "clicks50": table_clicks50,
    "training": table_training,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("tables", nargs="*", metavar="TABLE", help=f"some of {', '.join(TABLES)} (default: all)")
    p.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    args = p.parse_args()
    unknown = sorted(set(args.tables) - set(TABLES))
    if unknown:
        p.error(f"unknown tables {unknown}; choose from {', '.join(TABLES)}")
    for name in args.tables or TABLES:
        print(f"\n## {name}\n")
        TABLES[name](args.results)


if __name__ == "__main__":
    main()
