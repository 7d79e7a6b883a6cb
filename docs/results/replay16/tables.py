"""The README's issue-3 tables from the session-18 runs (replay buffer of 16, the default since then).

Run from the repository root: ``python docs/results/replay16/tables.py``. OAIMS and PI come from this
folder (method names ``oaims:replay_size=16`` / ``pi:replay_size=16``: the default settings since
session 18); the frozen model and the other methods, whose curves do not depend on the replay
buffer, from ``docs/results/auto/``. Prints markdown.
"""

import json
from pathlib import Path

import numpy as np

from napari_oaims.metrics import noc

HERE = Path(__file__).parent
AUTO = HERE.parent / "auto"
R, RP = "oaims:replay_size=16", "pi:replay_size=16"
SHIFTS = ["none", "invert", "low_snr", "down3", "illum", "edges"]


def shifts(path: Path) -> dict:
    return json.loads(path.read_text())["shifts"] if path.is_file() else {}


def curves(table: dict, shift: str, run: str, method: str) -> np.ndarray:
    return np.asarray(table[shift][run]["methods"][method]["curves"])


def cell(c: np.ndarray, ks=(1, 5, 10)) -> str:
    dice = "/".join(f"{c[:, k - 1].mean():.3f}".lstrip("0") for k in ks)
    return dice


def nocs(c: np.ndarray) -> float:
    return float(np.mean([noc(row, 0.85, cap=20) for row in c]))


def diff(a: np.ndarray, b: np.ndarray, ks=(1, 5, 10)) -> str:
    d = (b - a) * 100
    return " / ".join(f"{d[:, k - 1].mean():+.1f}±{d[:, k - 1].std(ddof=1) / np.sqrt(len(d)):.1f}" for k in ks)


def main() -> None:
    old, oa, pa = shifts(AUTO / "adapt_all.json"), shifts(HERE / "adapt_oaims.json"), shifts(HERE / "adapt_pi.json")
    methods = ["none", "oaims", "pi", "tsca", "ia_sa", "mi", "ce", "entropy"]
    print("| shift | " + " | ".join(methods) + " |\n|---|" + "---|" * len(methods))
    auc_lines = []
    for s in SHIFTS:
        row, aucs = [], []
        for m in methods:
            table, name = (oa, R) if m == "oaims" else (pa, RP) if m == "pi" else (old, m)
            if s not in table:
                row.append("(not run yet)")
                continue
            c = curves(table, s, "main", name)
            row.append(f"{cell(c)} ({nocs(c):.2f})")
            aucs.append(f"{table[s]['main']['methods'][name]['summary']['auc']:.3f}".lstrip("0"))
        print(f"| {s} ({len(curves(old, s, 'main', 'none'))}) | " + " | ".join(row) + " |")
        auc_lines.append(f"{s}: " + " / ".join(aucs))
    print("\nAUC (" + " / ".join(methods) + "):\n" + "\n".join(f"- {a}" for a in auc_lines))
    print("\n| shift | none | oaims | oaims - none at k = 1 / 5 / 10 | NoC@0.85 change | smallest difference, k = 1-10 |")
    print("|---|---|---|---|---|---|")
    for s in SHIFTS:
        f, o = curves(old, s, "main", "none"), curves(oa, s, "main", R)
        d = (o - f).mean(0) * 100
        print(f"| {s} | {cell(f)} ({nocs(f):.2f}) | {cell(o)} ({nocs(o):.2f}) | {diff(f, o)} | "
              f"{100 * (nocs(o) / nocs(f) - 1):+.1f}% | {d.min():+.1f} (k = {d.argmin() + 1}) |")
    print("\nno shift, oaims - none at k = 1..10: " + " ".join(f"{v:+.1f}" for v in
          (curves(oa, 'none', 'main', R) - curves(old, 'none', 'main', 'none')).mean(0) * 100))
    print("smallest margin over tsca / ia_sa at k = 1, 5, 10: " + "; ".join(
        f"{s} " + " / ".join(f"{min((curves(oa, s, 'main', R) - curves(old, s, 'main', b)).mean(0)[[0, 4, 9]] * 100):+.1f}"
                             for b in ("tsca", "ia_sa")) for s in SHIFTS))
    # 40% wrong clicks
    wo, wn = shifts(AUTO / "wrong40_shifts.json"), shifts(HERE / "wrong40_shifts.json")
    rob = {s: (shifts(AUTO / f"robust_{s}.json"), shifts(HERE / f"robust_{s}.json")) for s in ("edges", "invert")}
    print("\n| shift | frozen | OAIMS | difference k = 1 / 5 / 10 | clicks where OAIMS is below |\n|---|---|---|---|---|")
    for s in SHIFTS:
        if s in wn:
            f, o = curves(wo, s, "main", "none"), curves(wn, s, "main", R)
        elif s in rob and s in rob[s][1]:
            f, o = curves(rob[s][0], s, "wrong40", "none"), curves(rob[s][1], s, "wrong40", R)
        else:
            continue
        d = (o - f).mean(0) * 100
        below = [k + 1 for k in np.flatnonzero(d < 0)]
        print(f"| {s} | {cell(f)} | {cell(o)} | {diff(f, o)} | {', '.join(map(str, below)) or 'none'} |"
              f" <!-- smallest {d.min():+.1f} at k = {d.argmin() + 1} -->")
    names = {"main": "main (10 clicks, random order)", "wrong40": "40% of clicks wrong-labelled",
             "first4_wrong": "first 4 clicks of every target wrong", "targets40_wrong": "40% of targets with every click wrong",
             "worst_first": "worst-first order", "clicks50": "50 clicks per target (MI on the first 10)"}
    print("\n| shift | run | frozen | OAIMS | difference k = 1 / 5 / 10 | smallest difference, k = 1-10 |\n|---|---|---|---|---|---|")
    for s in ("edges", "invert"):
        ro, rn = rob[s]
        for run, name in names.items():
            if s not in rn or run not in rn[s]:
                continue
            f, o = curves(ro, s, run, "none"), curves(rn, s, run, R)
            d = (o - f).mean(0)[:10] * 100
            tail = ""
            if f.shape[1] > 10:
                t = (o - f).mean(0)[10:] * 100
                tail = f" <!-- k 11-{f.shape[1]}: smallest {t.min():+.2f} at k = {t.argmin() + 11} -->"
            print(f"| {s} | {name} | {cell(f)} | {cell(o)} | {diff(f, o)} | {d.min():+.1f} |{tail}")
    # 50 clicks, per seed
    print("\n| shift, seed | 10 clicks | 50 clicks | 50 minus 10 |\n|---|---|---|---|")
    for s in ("edges", "invert"):
        rows = []
        pairs = []
        if s in rob[s][1] and "clicks50" in rob[s][1][s]:
            pairs.append((0, curves(rob[s][1], s, "main", R), curves(rob[s][1], s, "clicks50", R)))
        for seed in range(1, 10):
            fs = [HERE / "clicks50_seeds" / f"{s}_c{c}_seed{seed}.json" for c in (10, 50)]
            if all(f.is_file() for f in fs):
                pairs.append((seed, *(curves(shifts(f), s, "main", R) for f in fs)))
        for seed, a, b in pairs:
            h = len(a) // 2
            la, lb = a[h:, :3].mean(0), b[h:, :3].mean(0)
            rows.append((lb - la) * 100)
            print(f"| {s} {seed} | " + "/".join(f"{v:.3f}".lstrip("0") for v in la) + " | "
                  + "/".join(f"{v:.3f}".lstrip("0") for v in lb) + " | " + " / ".join(f"{v:+.1f}" for v in rows[-1]) + " |")
        if len(rows) > 1:
            r = np.array(rows)
            se = r.std(0, ddof=1) / np.sqrt(len(r))
            print(f"| **{s}, mean ± SE over seeds** | | | **" + " / ".join(f"{m:+.1f}±{e:.1f}" for m, e in zip(r.mean(0), se)) + "** |")


if __name__ == "__main__":
    main()
