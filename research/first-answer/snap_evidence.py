"""The evidence rule simulated on snap_sweep.py's first answers (the truth standing in for the
accepted mask): per set, objects in order, growing ("grown") at a mean gain of 0.2 on 80% of the
last 5 (at least 3) objects, and candidate NEW at each mean gain / win share / what counts as a
win (gain above 0 or above -0.05); the change of mean first-answer Dice against the model's, and
on how many objects a candidate was followed.

    python research/first-answer/snap_evidence.py OUT.json s4_8
"""

import json
import sys

import numpy as np

res = json.load(open(sys.argv[1]))
new = sys.argv[2]
TH = {"grown": (0.2, 0.8, 0.0)}


def run(th):
    out = {}
    for s, rows in res.items():
        gains = {c: [] for c in th}
        tot = []
        on = 0
        for d in rows:
            best, bm = None, -1
            for c, (mg, mw, tie) in th.items():
                r = np.array(gains[c][-5:])
                if len(r) >= 3 and r.mean() > mg and (r > tie).mean() >= mw and r.mean() > bm:
                    best, bm = c, r.mean()
            tot.append(d[best] if best else d["model"])
            on += best is not None
            for c in th:
                gains[c].append(d[c] - d["model"])
        out[s.split("/")[-1]] = (np.mean(tot), np.mean([d["model"] for d in rows]), on)
    return out


for mg in (0.05, 0.1, 0.15, 0.2):
    for mw in (0.6, 0.8):
        for tie in (0.0, -0.05):
            th = dict(TH)
            th[new] = (mg, mw, tie)
            o = run(th)
            print(f"{mg} {mw} {tie:+.2f} ", " ".join(f"{k[:8]} {v[0] - v[1]:+.3f}({v[2]})" for k, v in o.items()))
