"""The third rule tried (not kept): besides the waist, stop where the mean image inside the mask
rose above the anchor's by ``rise`` times the anchor's contrast (a brighter object under the
mask; optionally only while the mask is no larger than ``cap`` times the anchor's area), judged
offline on the signals ``waist_signals.py`` recorded (the slices from there on dropped).

    PYTHONPATH=src python research/propagation/rise_variants.py SIGNALS.json
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from waist_signals import fire  # noqa: E402

from napari_oaims import Engine  # noqa: E402
from napari_oaims.evaluation.propagate import procedural_cases  # noqa: E402
from napari_oaims.training.volumes import FAILURE_SHAPE  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    with open(sys.argv[1]) as f:
        rows = json.load(f)
    eng = Engine.pretrained(device="cpu")
    ranges = {}  # the session's intensity normalisation of each volume (the recorded anchor is in it)
    for c in procedural_cases(3, (24, 64, 64)) + procedural_cases(3, FAILURE_SHAPE, failures=True):
        prefix = "stacked/" if c["kind"] == "stacked" else c["kind"] + "/"
        ranges[prefix + c["name"]] = eng.session(c["image"], plane_axes=(1, 2)).source.ranges[0]

    def rise_at(r: dict, rise: float, cap: float) -> int | None:
        lo, hi = ranges[r["case"]][:2]
        for i, sl in enumerate(r["slices"]):
            if sl["mean"] is None:
                continue
            up = ((sl["mean"] - lo) / (hi - lo) - r["anchor_mean"]) / r["anchor_contrast"]
            if up >= rise and (cap <= 0 or sl["area"] <= cap * r["anchor_signal"]):
                return i
        return None

    for rise, cap in [(0, 0), (0.3, 0), (0.4, 0), (0.5, 0), (0.6, 0), (0.8, 0), (0.4, 1.0), (0.5, 1.0)]:
        objs: dict[tuple, dict] = {}
        for r in rows:
            key = (r["case"], r["object"])
            o = objs.setdefault(key, {"truth": r["truth"], "mask": r["mask"], "own": r["mask_own"], "other": 0})
            cuts = [fire(r["slices"], 0.5, 1.2, r["anchor_signal"], 0.06)]
            cuts.append(rise_at(r, rise, cap) if rise > 0 else None)
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
        print(
            f"rise {rise} cap {cap}: "
            + ", ".join(f"{g} {np.mean(v[0]):.4f} (other {v[1]})" for g, v in sorted(out.items()))
        )


if __name__ == "__main__":
    main()
