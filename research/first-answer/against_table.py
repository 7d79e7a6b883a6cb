"""Dice@1/2/3/5/10 of two folders of research/first-answer/run_edges.sh results side by side, per
set, with the worst and the mean difference over k = 1..10 (``MODE`` files of each folder).

    python research/first-answer/against_table.py BEFORE_DIR AFTER_DIR [MODE]
"""

import json
import sys
from pathlib import Path

import numpy as np


def curve(path: Path) -> tuple[np.ndarray, int]:
    m = json.loads(path.read_text())["methods"]["model"]
    c = np.array([x + [x[-1]] * (10 - len(x)) for x in m["curves"]])
    return c.mean(0), len(c)


before, after = Path(sys.argv[1]), Path(sys.argv[2])
mode = sys.argv[3] if len(sys.argv) > 3 else "auto"
print(f"| set (targets) | {before.name}: D@1 / D@2 / D@3 / D@5 / D@10 | {after.name} | mean over k | worst (k) |")
print("|---|---|---|---|---|")
for b in sorted(before.glob(f"*_{mode}.json")):
    a = after / b.name
    if not a.exists():
        continue
    (cb, n), (ca, _) = curve(b), curve(a)
    diff = ca - cb
    k = int(np.argmin(diff))
    text = [" / ".join(f"{r[i]:.3f}" for i in (0, 1, 2, 4, 9)) for r in (cb, ca)]
    print(
        f"| {b.name.removesuffix(f'_{mode}.json')} ({n}) | {text[0]} | {text[1]} | {100 * diff.mean():+.2f} | {100 * diff[k]:+.1f} ({k + 1}) |"
    )
