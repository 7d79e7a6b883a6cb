"""The second rule tried (not kept): besides the waist, stop where the object's signal (area times
contrast over the anchor's) falls below ``fade`` times its highest value, judged offline on the
signals ``waist_signals.py`` recorded (the slices from there on dropped).

    python research/propagation/fade_variants.py SIGNALS.json
"""

from __future__ import annotations

import json
import sys

import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from waist_signals import fire  # noqa: E402


def fade_at(slices: list[dict], fade: float, anchor_signal: float) -> int | None:
    peak = anchor_signal
    for i, sl in enumerate(slices):
        peak = max(peak, sl["signal"])
        if sl["signal"] < fade * peak:
            return i
    return None


def main() -> None:
    with open(sys.argv[1]) as f:
        rows = json.load(f)
    for fade in [0, 0.1, 0.15, 0.2, 0.25, 0.3]:
        objs: dict[tuple, dict] = {}
        for r in rows:
            key = (r["case"], r["object"])
            o = objs.setdefault(key, {"truth": r["truth"], "mask": r["mask"], "own": r["mask_own"], "other": 0})
            cuts = [fire(r["slices"], 0.5, 1.2, r["anchor_signal"], 0.06)]
            cuts.append(fade_at(r["slices"], fade, r["anchor_signal"]) if fade > 0 else None)
            cuts = [c for c in cuts if c is not None]
            kept = r["slices"][: min(cuts)] if cuts else r["slices"]
            for sl in r["slices"][len(kept) :]:
                o["mask"] -= sl["area"]
                o["own"] -= sl["own"]
            o["other"] += sum(sl["other"] for sl in kept)
        out: dict[str, list] = {}
        for k, o in objs.items():
            g = out.setdefault(k[0].split("/")[0], [[], 0])
            g[0].append(2 * o["own"] / max(o["mask"] + o["truth"], 1))
            g[1] += o["other"]
        print(f"fade {fade}: " + ", ".join(f"{g} {np.mean(v[0]):.4f} (other {v[1]})" for g, v in sorted(out.items())))


if __name__ == "__main__":
    main()
