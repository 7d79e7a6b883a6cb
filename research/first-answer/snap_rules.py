"""Which objects' first answers a rule for following the snap would have snapped, and what that
gives: an offline replay of the edge evidence (``core.edges.EdgeEvidence``) over runs of
``oaims bench clicks`` with ``--edges auto``, ``never`` and ``snap`` on the same set.

The ``auto`` run logs each accepted object's gains (``EV`` lines, ``snap_rules_run.sh``). For a
rule, target i follows the snap if the rule holds on the gains of the objects accepted before it;
its Dice@1 is then that of the ``snap`` run, else that of the ``never`` run (or of ``auto`` where
the rule chooses as the shipped one did, which keeps the edges candidate as it was). Accepted
masks, and so later windows, differ a little between the runs; this ignores that.

Usage: ``python research/first-answer/snap_rules.py DIR`` (DIR holds NAME_{auto,never,snap}.json and NAME_auto.ev).
"""

from __future__ import annotations

import glob
import json
import os
import sys

import numpy as np

from napari_oaims.core.edges import EVIDENCE_OBJECTS, MIN_OBJECTS, THRESHOLDS


def shipped(edge: list[float], snap: list[float]) -> str | None:
    for name, gains in (("edges", edge), ("snap", snap)):
        recent = np.array(gains[-EVIDENCE_OBJECTS:], float)
        min_gain, min_wins = THRESHOLDS[name]
        if len(recent) >= MIN_OBJECTS and recent.mean() > min_gain and (recent > 0).mean() >= min_wins:
            return name
    return None


def snap_rule(last: int, min_gain: float, min_wins: float, se: float = 0.0):
    """The shipped edges rule, then the snap when its last ``last`` gains (at least MIN_OBJECTS)
    have a mean above ``min_gain`` and ``se`` standard errors, and a win share of ``min_wins``."""

    def rule(edge, snap):
        if shipped(edge, []) == "edges":
            return "edges"
        recent = np.array(snap[-last:], float)
        if len(recent) < MIN_OBJECTS:
            return None
        spread = se * recent.std(ddof=1) / np.sqrt(len(recent)) if se else 0.0
        return "snap" if recent.mean() > max(min_gain, spread) and (recent > 0).mean() >= min_wins else None

    return rule


RULES = {
    "shipped (5, 0.1, 0.6)": shipped,
    "5, 0.1, 0.5": snap_rule(5, 0.1, 0.5),
    "8, 0.05, 0.5": snap_rule(8, 0.05, 0.5),
    "10, 0.05, 0.5": snap_rule(10, 0.05, 0.5),
    "8, 1 SE": snap_rule(8, 0.0, 0.0, 1.0),
    "10, 1 SE": snap_rule(10, 0.0, 0.0, 1.0),
    "10, 2 SE": snap_rule(10, 0.0, 0.0, 2.0),
    "8, 0, 0.5": snap_rule(8, 0.0, 0.5),
    "5, 0.05, 0.4": snap_rule(5, 0.05, 0.4),
    "20, 0.05, 0.5": snap_rule(20, 0.05, 0.5),
}


def first_dice(path: str) -> np.ndarray:
    data = json.load(open(path))
    return np.array(data["methods"]["model"]["curves"])[:, 0] if "methods" in data else _find(data)


def _find(x):
    if isinstance(x, dict):
        if "curves" in x:
            return np.array(x["curves"])[:, 0]
        for v in x.values():
            r = _find(v)
            if r is not None:
                return r
    return None


def evaluate(folder: str, name: str) -> dict[str, float]:
    d = {m: first_dice(os.path.join(folder, f"{name}_{m}.json")) for m in ("auto", "never", "snap")}
    events = [json.loads(line[3:]) for line in open(os.path.join(folder, f"{name}_auto.ev"))]
    edge, snap, out = [], [], {}
    choices = {r: [] for r in RULES}
    for i in range(len(d["auto"])):
        for r, rule in RULES.items():
            choices[r].append(rule(edge, snap))
        if i < len(events) and "snap_gain" in events[i]:
            edge.append(events[i]["edge_gain"])
            snap.append(events[i]["snap_gain"])
    old = choices["shipped (5, 0.1, 0.6)"]
    for r in RULES:
        got = [
            d["auto"][i] if c == old[i] else d["snap"][i] if c == "snap" else d["never"][i]
            for i, c in enumerate(choices[r])
        ]
        out[r] = float(np.mean(got))
    out["never"], out["snap"], out["auto run"] = (float(d[m].mean()) for m in ("never", "snap", "auto"))
    return out


def main(folder: str) -> None:
    names = sorted(os.path.basename(p)[: -len("_auto.ev")] for p in glob.glob(os.path.join(folder, "*_auto.ev")))
    names = [n for n in names if all(os.path.exists(os.path.join(folder, f"{n}_{m}.json")) for m in ("never", "snap"))]
    cols = ["auto run", "never", "snap", *RULES]
    print("| set | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for n in names:
        res = evaluate(folder, n)
        print(f"| {n} | " + " | ".join(f"{res[c]:.3f}" for c in cols) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
