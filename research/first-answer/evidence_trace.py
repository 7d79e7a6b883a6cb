"""Per accepted object of the click-benchmark loop (robot ``center``, 10 clicks, 30 targets at
most): whether its first answer followed a candidate (``followed_edges``) or a fallback, the
``edge_gain`` and ``snap_gain`` its accept logged, and its Dice after clicks 1-5.

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/first-answer/evidence_trace.py suites/lesions auto
    # SET is a folder under runs/ holding image.tif and labels.tif; the edges mode
"""

import sys

import numpy as np
import torch

torch.set_num_threads(1)
from napari_oaims.evaluation.common import ModelMethod, Protocol, load_pair, run_targets, target_ids
from napari_oaims.evaluation.metrics import dice

s = sys.argv[1]
img, lab = load_pair(f"runs/{s}/image.tif", f"runs/{s}/labels.tif")
p = Protocol(clicks=10, device="cpu", edges=sys.argv[2])
m = ModelMethod(p.make_engine(), img)
ids = target_ids(lab)[:30]
res = run_targets(m, lab, ids, p.make_robot(), 10)
ses = m.session
ev = [e for e in ses.events if e["kind"] in ("predict", "accept")]
obj = {}
for e in ses.events:
    if e["kind"] == "predict" and e["object"] not in obj:
        obj[e["object"]] = (e["extra"].get("followed_edges"), e["extra"].get("fallback"))
    if e["kind"] == "accept":
        o = e["object"]
        print(
            o,
            obj.get(o),
            "edge",
            e["extra"].get("edge_gain"),
            "snap",
            e["extra"].get("snap_gain"),
            "curve",
            " ".join(f"{x:.2f}" for x in res["curves"][o - 1][:5]),
        )
