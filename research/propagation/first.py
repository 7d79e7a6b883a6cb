"""First-propagation Dice (after the robot's anchor clicks) per method on the procedural suite.
Usage: python first.py METHOD [n_per_kind] [json settings overrides]"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from napari_oaims import Engine
from napari_oaims.evaluation.propagate import procedural_cases, run_case

method = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 2
settings = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
per = {}
fp_slices = miss_slices = 0
t0 = time.perf_counter()
ms = []
for case in procedural_cases(n):
    e = Engine.pretrained(device="cpu")
    r = run_case(e, case["image"], case["target"], method, settings=settings, first_only=True, keep_mask=True)
    per.setdefault(case["kind"], []).append(r["first_dice"])
    t, m = case["target"], r.pop("mask")
    fp_slices += int((m.any((1, 2)) & ~t.any((1, 2))).sum())
    miss_slices += int((~m.any((1, 2)) & t.any((1, 2))).sum())
    ms.append(r["ms_per_slice"])
print(method, settings, " ".join(f"{k}={np.mean(v):.3f}" for k, v in per.items()),
      f"ALL={np.mean(sum(per.values(), [])):.3f} fp_slices={fp_slices} missed_slices={miss_slices} ms/slice={np.median(ms):.0f} total={time.perf_counter()-t0:.0f}s")
