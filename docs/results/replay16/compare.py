"""Issue 3's targets for OAIMS with a replay buffer of 16, against the shipped setting.

Run from the repository root: ``python docs/results/replay16/compare.py``. Reads the runs of
``rerun.sh`` in this folder and, for the frozen model and the baselines, ``docs/results/auto/``.
Prints each target with the smallest margin over k (points), for ``oaims:replay_size=16`` (R16) and
the shipped ``oaims``, and the 50-click check (late Dice@1/2/3, 50 minus 10 clicks, per seed).
"""

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
AUTO = HERE.parent / "auto"
R, RP = "oaims:replay_size=16", "pi:replay_size=16"


def load(path: Path) -> dict:
    return json.loads(path.read_text())["shifts"] if path.is_file() else {}


def curve(shifts: dict, shift: str, run: str, method: str):
    try:
        return np.asarray(shifts[shift][run]["methods"][method]["curves"]).mean(0) * 100
    except KeyError:
        return None


def summary(shifts, shift, run, method):
    return shifts[shift][run]["methods"][method]["summary"]


def fmt(s) -> str:
    return f"{s['dice@1']:.3f}/{s['dice@5']:.3f}/{s['dice@10']:.3f} ({s['noc@0.85']:.2f}, AUC {s['auc']:.3f})"


def main() -> None:
    old = load(AUTO / "adapt_all.json")
    new = {**load(HERE / "adapt_oaims.json")}
    for shift, runs in load(HERE / "adapt_pi.json").items():
        new.setdefault(shift, {"main": {"methods": {}}})["main"]["methods"].update(runs["main"]["methods"])
    print("== main runs: Dice@1/5/10 (NoC@0.85, AUC)")
    for shift in old:
        print(f"{shift:8s} none {fmt(summary(old, shift, 'main', 'none'))}")
        for label, table, m in (("oaims", old, "oaims"), ("R16", new, R), ("pi", old, "pi"), ("pi R16", new, RP)):
            if curve(table, shift, "main", m) is not None:
                print(f"{'':8s} {label:6s} {fmt(summary(table, shift, 'main', m))}")
    print("\n== targets (smallest margin over k, points)")
    for label, table, m in (("oaims", old, "oaims"), ("R16", new, R)):
        for shift in old:
            c = curve(table, shift, "main", m)
            if c is None:
                continue
            none = curve(old, shift, "main", "none")
            ks = [0, 4, 9]
            tsca, iasa = curve(old, shift, "main", "tsca"), curve(old, shift, "main", "ia_sa")
            s, f = summary(table, shift, "main", m), summary(old, shift, "main", "none")
            extra = ""
            if f["dice@1"] < 0.70:
                extra = (f"; Dice@1 {100 * (s['dice@1'] - f['dice@1']):+.1f}, "
                         f"NoC@0.85 {100 * (s['noc@0.85'] / f['noc@0.85'] - 1):+.1f}%")
            print(f"{label:5s} {shift:8s} vs none {np.min(c - none):+.1f} (k {np.argmin(c - none) + 1}); "
                  f"vs tsca {np.min(c[ks] - tsca[ks]):+.1f}, vs ia_sa {np.min(c[ks] - iasa[ks]):+.1f}{extra}")
    print("\n== 40% wrong clicks: oaims minus none, smallest over k")
    wrong_old, wrong_new = load(AUTO / "wrong40_shifts.json"), load(HERE / "wrong40_shifts.json")
    for shift in wrong_old:
        none = curve(wrong_old, shift, "main", "none")
        o, n = curve(wrong_old, shift, "main", "oaims"), curve(wrong_new, shift, "main", R)
        print(f"{shift:8s} oaims {np.min(o - none):+.1f}  R16 " + (f"{np.min(n - none):+.1f}" if n is not None else "-"))
    print("\n== robustness runs: oaims minus none, smallest over k")
    for shift in ("edges", "invert"):
        ro, rn = load(AUTO / f"robust_{shift}.json"), load(HERE / f"robust_{shift}.json")
        for run in ro.get(shift, {}):
            none = curve(ro, shift, run, "none")
            o, n = curve(ro, shift, run, "oaims"), curve(rn, shift, run, R)
            line = f"{shift:7s} {run:16s} k 1-10: oaims {np.min((o - none)[:10]):+.1f}  R16 "
            line += f"{np.min((n - none)[:10]):+.1f}" if n is not None else "-"
            if len(none) > 10:  # the 50-click run: also the clicks after the tenth
                line += f"; k 11-{len(none)}: oaims {np.min((o - none)[10:]):+.2f}"
                line += f"  R16 {np.min((n - none)[10:]):+.2f}" if n is not None else ""
            print(line)
    print("\n== 50 clicks: late Dice@1/2/3, 50 minus 10 clicks (points)")
    for shift in ("edges", "invert"):
        for label, folder, m in (("oaims", AUTO, "oaims"), ("R16", HERE, R)):
            rows = []
            rob = load(folder / f"robust_{shift}.json").get(shift, {})
            pairs = [(rob["main"], rob["clicks50"])] if "clicks50" in rob else []
            for seed in range(1, 10):
                files = [folder / "clicks50_seeds" / f"{shift}_c{c}_seed{seed}.json" for c in (10, 50)]
                if all(f.is_file() for f in files):
                    pairs.append(tuple(load(f)[shift]["main"] for f in files))
            for a, b in pairs:
                ca, cb = (np.asarray(x["methods"][m]["curves"]) for x in (a, b))
                h = len(ca) // 2
                rows.append((cb[h:, :3].mean(0) - ca[h:, :3].mean(0)) * 100)
            if rows:
                rows = np.array(rows)
                se = rows.std(0, ddof=1) / np.sqrt(len(rows)) if len(rows) > 1 else np.zeros(3)
                print(f"{shift:7s} {label:5s} {len(rows)} seeds: " + "; ".join("/".join(f"{v:+.1f}" for v in r) for r in rows)
                      + "  mean " + " / ".join(f"{m_:+.1f}±{e:.1f}" for m_, e in zip(rows.mean(0), se)))


if __name__ == "__main__":
    main()
