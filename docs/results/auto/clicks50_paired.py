"""Paired 50- vs 10-click differences at clicks 1-3 on the second half of the sequence.

Run from the repository root: ``python docs/results/auto/clicks50_paired.py [edges|invert]``
(default edges). Seed 0 is the ``main`` and ``clicks50`` runs of ``robust_SHIFT.json``; the other
seeds are whatever pairs ``clicks50_seeds/`` holds.
Prints, per click, the mean, median and 10%-trimmed mean of the per-target differences (points),
how many targets moved by more than 5 points either way, the click-2 change by first-click Dice,
and the change over the whole sequence (all targets) per seed, as mean ± SE.
"""

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def late(curves: list) -> np.ndarray:
    c = np.asarray(curves)
    return c[len(c) // 2:, :3]


def runs(shift: str) -> list[tuple[dict, dict]]:
    """(10-click, 50-click) ``main`` runs of oaims on ``shift``, seed 0 first."""
    robust = json.loads((HERE / f"robust_{shift}.json").read_text())["shifts"][shift]
    pairs = [(robust["main"], robust["clicks50"])]
    folder = HERE / "clicks50_seeds"
    seeds = sorted(int(f.stem.rsplit("seed", 1)[1]) for f in folder.glob(f"{shift}_c10_seed*.json"))
    for seed in seeds:
        files = [folder / f"{shift}_c{c}_seed{seed}.json" for c in (10, 50)]
        if all(f.is_file() for f in files):
            pairs.append(tuple(json.loads(f.read_text())["shifts"][shift]["main"] for f in files))
    return pairs


def main() -> None:
    shift = sys.argv[1] if len(sys.argv) > 1 else "edges"
    diffs, first, losers, whole = [], [], set(), []
    pairs = runs(shift)
    for c10, c50 in pairs:
        a, b = (late(r["methods"]["oaims"]["curves"]) for r in (c10, c50))
        whole.append((np.mean(np.asarray(c50["methods"]["oaims"]["curves"])[:, :3], 0)
                       - np.mean(np.asarray(c10["methods"]["oaims"]["curves"])[:, :3], 0)) * 100)
        diffs.append(b - a)
        first.append(a[:, 0])
        targets = c10["targets"][len(c10["targets"]) // 2:]
        losers |= {t for t, x in zip(targets, b[:, 1] - a[:, 1]) if x < -0.05}
    d, first = np.concatenate(diffs) * 100, np.concatenate(first)
    print(f"{shift}: {len(d)} target pairs ({len(pairs)} seeds x the second half of the targets)")
    per_seed = np.array([x.mean(0) for x in diffs]) * 100
    print("per seed, 50 minus 10 clicks at clicks 1/2/3 (late): "
          + "; ".join("/".join(f"{v:+.1f}" for v in row) for row in per_seed))
    se = per_seed.std(0, ddof=1) / np.sqrt(len(per_seed))
    print("late, mean ± SE over seeds: " + " / ".join(f"{m:+.1f}±{e:.1f}" for m, e in zip(per_seed.mean(0), se)))
    print("click   mean  median  trimmed  drops>5  gains>5")
    for k in range(3):
        x = d[:, k]
        trimmed = np.sort(x)[len(x) // 10: -(len(x) // 10)].mean()
        print(f"{k + 1:>5} {x.mean():+6.2f} {np.median(x):+7.2f} {trimmed:+8.2f} {np.sum(x < -5):8d} {np.sum(x > 5):8d}")
    print(f"targets losing more than 5 points at click 2 (any seed): {len(losers)} different nuclei")
    print("mean change at click 2 by the 10-click run's Dice@1:")
    for lo, hi in ((0, 0.6), (0.6, 0.8), (0.8, 0.9), (0.9, 1.01)):
        m = (first >= lo) & (first < hi)
        print(f"  [{lo:.2f}, {min(hi, 1):.2f}): {m.sum():3d} targets, {d[m, 1].mean():+.2f}")
    whole = np.array(whole)
    se = whole.std(0, ddof=1) / np.sqrt(len(whole))
    print("whole sequence (seed 000 table 8), mean ± SE over seeds: "
          + " / ".join(f"{m:+.1f}±{e:.1f}" for m, e in zip(whole.mean(0), se)))


if __name__ == "__main__":
    main()
