"""Trace the robot protocol of ``oaims bench propagate`` on one failure volume, correction by
correction: the clicked slice, the click's polarity, the clicked slice's Dice before/after the
click, and every slice whose Dice changed by the re-propagation.

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/propagation/lc6_trace.py NAME METHOD OUTDIR [N [SETTINGS]]

SETTINGS: propagation settings as JSON, e.g. '{"cross_from_larger": false}'. The environment
variable SEED draws other failure volumes (``oaims bench propagate --seed``; default 0).
"""

import json
import os
import sys
from pathlib import Path

import numpy as np

from napari_oaims.engine import Engine
from napari_oaims.evaluation.metrics import dice
from napari_oaims.evaluation.propagate import procedural_cases
from napari_oaims.simulate.clicks import click_in_region, largest_error_component


def sdice(m, t):
    if not m.any() and not t.any():
        return 1.0
    return float(dice(m, t))


def main(name="low_contrast_6", method="frozen", out="/tmp/lc6", n=12, settings=None):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cases = {c["name"]: c for c in procedural_cases(3, (28, 96, 96), int(os.environ.get("SEED", "0")), failures=True)}
    case = cases[name]
    image, target = case["image"], case["target"]
    engine = Engine.pretrained(device="cpu")
    s = engine.session(image, plane_axes=(1, 2))
    z0 = int(np.argmax(target.sum((1, 2))))
    mask = np.zeros(target.shape, bool)
    for _ in range(5):
        err = largest_error_component(mask[z0], target[z0])
        if err is None:
            break
        mask = s.click((z0, *click_in_region(err[0])), positive=err[1]).mask
        if dice(mask[z0], target[z0]) >= 0.9:
            break
    print("object slices", np.flatnonzero(target.any((1, 2))).tolist(), "anchor", z0)
    mask = s.propagate(axis=0, method=method, settings=settings).mask
    log = []
    snaps = [mask.copy()]
    print(f"first 3D Dice {dice(mask, target):.4f}")
    for k in range(n):
        wrong = (mask ^ target).sum((1, 2))
        z = int(np.argmax(wrong))
        err = largest_error_component(mask[z], target[z])
        yx = click_in_region(err[0])
        before = mask.copy()
        clicked = s.click((z, *yx), positive=err[1]).mask
        res = s.propagate(axis=0, method=method, settings=settings)
        mask = res.mask
        snaps.append(mask.copy())
        per = [
            (
                int(p),
                round(sdice(before[p], target[p]), 3),
                round(sdice(mask[p], target[p]), 3),
                int(before[p].sum()),
                int(mask[p].sum()),
                int(target[p].sum()),
            )
            for p in range(target.shape[0])
            if (before[p] != mask[p]).any()
        ]
        anchors = sorted(k2[0] for k2 in s.prompted_planes())
        rec = {
            "k": k + 1,
            "z": z,
            "yx": [int(v) for v in yx],
            "positive": bool(err[1]),
            "clicked_before": round(sdice(before[z], target[z]), 3),
            "clicked_after_click": round(sdice(clicked[z], target[z]), 3),
            "clicked_after_prop": round(sdice(mask[z], target[z]), 3),
            "area_before_after_truth": [int(before[z].sum()), int(clicked[z].sum()), int(target[z].sum())],
            "dice3d": [round(dice(before, target), 4), round(dice(mask, target), 4)],
            "anchors": anchors,
            "chains": res.info.get("chains"),
            "changed": per,
        }
        log.append(rec)
        print(json.dumps({k2: v for k2, v in rec.items() if k2 != "chains"}))
        print(
            "   chains", [(c["from"], c["direction"], c["slices"], c["stop"], c["stopped_at"]) for c in rec["chains"]]
        )
    np.savez_compressed(out / f"{name}_{method}.npz", image=image, target=target, snaps=np.array(snaps))
    (out / f"{name}_{method}.json").write_text(json.dumps(log, indent=1))


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], a[2], int(a[3]) if len(a) > 3 else 12, json.loads(a[4]) if len(a) > 4 else None)
