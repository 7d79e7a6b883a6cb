"""How far ordinary learning moves the answers to recently accepted objects: the ``dice_drop``
of every checked update (the largest fall of an accepted object's Dice, first prompt alone,
against its Dice when it was accepted) on a run of the shift suite, with the default robot.

    OMP_NUM_THREADS=1 python research/adaptation-safety/dice_drop.py SHIFT TARGETS SPEC > out.json
"""

import json
import sys

import numpy as np
import torch

from napari_oaims import sample_nuclei
from napari_oaims.evaluation.adapt import order_targets
from napari_oaims.evaluation.common import ModelMethod, Protocol, run_targets, target_ids
from napari_oaims.evaluation.shifts import apply_shift

torch.set_num_threads(1)
shift, n, spec = sys.argv[1], int(sys.argv[2]), sys.argv[3]
image, labels = apply_shift(shift, *sample_nuclei())
ids = order_targets(target_ids(labels), "random", 0)[:n]
method = ModelMethod(Protocol(device="cpu").make_engine(spec), image)
run_targets(method, labels, ids, Protocol().make_robot(), 10)
ups = [e["extra"] for e in method.session.events if e["kind"] == "update"]
drops = {
    m: [u["dice_drop"] for u in ups if u["method"] == m and u.get("dice_drop") is not None] for m in ("mi", "pi_stage2")
}
out = {
    "shift": shift,
    "targets": n,
    "spec": spec,
    "rolled_back": sum(u["rolled_back"] for u in ups),
    "updates": len(ups),
}
for m, d in drops.items():
    if d:
        out[m] = {
            "n": len(d),
            "p50": float(np.median(d)),
            "p95": float(np.percentile(d, 95)),
            "max": max(d),
            "over_margin": sum(x > 0.1 for x in d),
        }
print(json.dumps(out))
