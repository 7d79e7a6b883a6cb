"""Pool an adapter's per-target Dice gains over frozen across several `oaims bench adapt` result
files (different seeds of one suite): the mean gain at 1 / 5 / 10 clicks and its standard error
over all targets, and the mean per file.

Usage: ``python research/adapt/pool_orders.py METHOD FILE [FILE ...]`` (``.json`` or ``.json.gz``;
each file holds ``none`` and METHOD for one shift or suite).
"""

from __future__ import annotations

import gzip
import json
import sys

import numpy as np

CLICKS = (1, 5, 10)


def curves(path: str) -> dict[str, np.ndarray]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        data = json.load(f)
    (shift,) = data["shifts"].values()
    return {k: np.array(v["curves"]) for k, v in shift["main"]["methods"].items()}


def main(method: str, paths: list[str]) -> None:
    pooled: dict[int, list[np.ndarray]] = {k: [] for k in CLICKS}
    for path in paths:
        c = curves(path)
        row = []
        for k in CLICKS:
            gain = c[method][:, k - 1] - c["none"][:, k - 1]
            pooled[k].append(gain)
            row.append(f"{100 * gain.mean():+.1f}")
        print(f"{path.rsplit('/', 1)[-1]:40s} {len(gain):3d} targets  " + " / ".join(row))
    for k in CLICKS:
        g = np.concatenate(pooled[k])
        se = 100 * g.std(ddof=1) / np.sqrt(len(g))
        print(f"pooled Dice@{k}: {100 * g.mean():+.2f} points, SE {se:.2f} ({len(g)} targets)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
