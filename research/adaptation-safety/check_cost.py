"""What the answer check adds to MI click and PI update latency, paired in one process.

Two engines on the shipped weights run the same objects in alternation: one with the guard as
shipped, one whose steps get no questions (``probes=None``: only the loss, NaN and collapse
checks). Medians of the MI click (clicks 2..K, from the click to its mask) and of the PI update
(the accept hook), and their ratios.

    OMP_NUM_THREADS=1 python research/adaptation-safety/check_cost.py OBJECTS CLICKS [SPEC]
"""

import json
import sys
import time

import numpy as np
import torch

from napari_oaims import Engine, sample_nuclei
from napari_oaims.adapt.guard import GuardedOptimizer
from napari_oaims.evaluation.common import target_ids
from napari_oaims.simulate.robot import Robot

torch.set_num_threads(1)
objects, clicks = int(sys.argv[1]), int(sys.argv[2])
spec = sys.argv[3] if len(sys.argv) > 3 else "oaims"
image, labels = sample_nuclei()
ids = [target_ids(labels)[i] for i in np.random.default_rng(0).permutation(len(target_ids(labels)))][:objects]


class Unasked(GuardedOptimizer):
    def step(self, engine, method, loss_fn, check_x=None, check_target=None, probes=None, restore=None):
        return super().step(engine, method, loss_fn, check_x, check_target, None, restore)


engines = {
    "checked": Engine.pretrained(device="cpu", adaptation=spec),
    "unasked": Engine.pretrained(device="cpu", adaptation=spec),
}
for name in ("optimizer", "mi_optimizer"):
    old = getattr(engines["unasked"].adapter, name)
    new = Unasked(old.lr)
    setattr(engines["unasked"].adapter, name, new)
sessions = {k: e.session(image) for k, e in engines.items()}
ms = {k: {"mi": [], "pi": []} for k in engines}
for i, tid in enumerate(ids):
    order = ("checked", "unasked") if i % 2 == 0 else ("unasked", "checked")
    for k in order:
        s, robot, target = sessions[k], Robot(seed=0), labels == tid
        robot.reset(int(tid))
        pred = np.zeros_like(target)
        for j in range(clicks):
            c = robot.next_click(pred, target)
            if c is None:
                break
            t0 = time.perf_counter()
            pred = s.click((c.y, c.x), positive=c.positive).mask
            if j > 0:
                ms[k]["mi"].append((time.perf_counter() - t0) * 1e3)
        if pred.any():
            t0 = time.perf_counter()
            s.accept()
            ms[k]["pi"].append((time.perf_counter() - t0) * 1e3)
        else:
            s.clear()
out = {"spec": spec, "objects": objects, "clicks": clicks}
for kind in ("mi", "pi"):
    a, b = np.median(ms["checked"][kind]), np.median(ms["unasked"][kind])
    out[kind] = {
        "checked_p50_ms": round(float(a), 1),
        "unasked_p50_ms": round(float(b), 1),
        "ratio": round(float(a / b), 3),
        "n": len(ms["checked"][kind]),
    }
print(json.dumps(out))
