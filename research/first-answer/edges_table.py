"""The table of research/first-answer/run_edges.sh: Dice@1/2/3/5/10 with answers that follow
image edges ("auto") and without ("never"), per set, and the worst difference over k = 1..10.

    python research/first-answer/edges_table.py [research/first-answer/results/edges]
"""

import json
import sys
from pathlib import Path

import numpy as np

folder = Path(sys.argv[1] if len(sys.argv) > 1 else "research/first-answer/results/edges")
print("| set (targets) | never: D@1 / D@2 / D@3 / D@5 / D@10 | auto | worst auto - never (k) |")
print("|---|---|---|---|")
for never in sorted(folder.glob("*_never.json")):
    auto = never.with_name(never.name.replace("_never", "_auto"))
    if not auto.exists():
        continue
    rows = []
    for f in (never, auto):
        m = json.loads(f.read_text())["methods"]["model"]
        c = np.array([x + [x[-1]] * (10 - len(x)) for x in m["curves"]])
        rows.append(c.mean(0))
    diff = rows[1] - rows[0]
    k = int(np.argmin(diff))
    picks = (0, 1, 2, 4, 9)
    text = [" / ".join(f"{r[i]:.3f}" for i in picks) for r in rows]
    name = never.name.removesuffix("_never.json")
    n = len(json.loads(never.read_text())["methods"]["model"]["curves"])
    print(f"| {name} ({n}) | {text[0]} | {text[1]} | {diff[k]:+.3f} ({k + 1}) |")
