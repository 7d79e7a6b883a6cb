"""Candidate snaps of the first answer, offline: the loop of ``oaims bench clicks`` (robot
``center``, 10 clicks, objects accepted, edges "never"), each target's first answer recorded
(research/first-answer/lesion_look.py) and redrawn by marker watersheds on ``sobel(crop)``:
``grown`` (the package's growing rule), ``sH_L`` (object markers: the kept answer's logit > H and
the click; background: logit < -L and the border), ``c_L`` (the click alone as object, disc r 2);
``s4_8r2`` the click as a disc of radius 2. Prints the mean Dice of each against the truth and
keeps every target's in OUT.json (read by snap_evidence.py).

    PYTHONPATH=src:research/first-answer OMP_NUM_THREADS=1 python research/first-answer/snap_sweep.py SET[,SET...] OUT.json
"""

import json
import sys

import lesion_look as L
import numpy as np
from skimage.draw import disk
from skimage.filters import sobel
from skimage.segmentation import watershed

from napari_oaims import answer
from napari_oaims.core import regions
from napari_oaims.evaluation.common import ModelMethod, Protocol, load_pair, run_targets, target_ids
from napari_oaims.evaluation.metrics import dice


def ws(crop, logits, kept, click, hi, lo, click_r=1, use_kept=False):
    m = np.zeros(crop.shape, np.int32)
    m[logits < -lo] = 2
    m[[0, -1], :] = 2
    m[:, [0, -1]] = 2
    if use_kept:
        m[kept] = 1
    elif hi is not None:
        m[kept & (logits > hi)] = 1
    if click is not None and 0 <= click[0] < crop.shape[0] and 0 <= click[1] < crop.shape[1]:
        m[disk(click, click_r, shape=crop.shape)] = 1
    if not (m == 1).any():
        return kept
    seg = watershed(sobel(crop.astype(float)), m) == 1
    return regions.keep_prompted(seg, np.array([click], float))


VARS = {
    "s4_10": lambda c, l, k, p: ws(c, l, k, p, 4, 10),
    "s4_12": lambda c, l, k, p: ws(c, l, k, p, 4, 12),
    "s3_8": lambda c, l, k, p: ws(c, l, k, p, 3, 8),
    "s5_8": lambda c, l, k, p: ws(c, l, k, p, 5, 8),
    "s4_8r2": lambda c, l, k, p: ws(c, l, k, p, 4, 8, click_r=2),
    "grown": lambda c, l, k, p: ws(c, l, k, p, None, 8, use_kept=True),
    "s4_4": lambda c, l, k, p: ws(c, l, k, p, 4, 4),
    "s4_8": lambda c, l, k, p: ws(c, l, k, p, 4, 8),
    "s2_8": lambda c, l, k, p: ws(c, l, k, p, 2, 8),
    "s6_8": lambda c, l, k, p: ws(c, l, k, p, 6, 8),
    "s2_6": lambda c, l, k, p: ws(c, l, k, p, 2, 6),
    "s4_6": lambda c, l, k, p: ws(c, l, k, p, 4, 6),
    "c_8": lambda c, l, k, p: ws(c, l, k, p, None, 8, click_r=2),
    "c_6": lambda c, l, k, p: ws(c, l, k, p, None, 6, click_r=2),
}


def collect(path):
    import torch

    torch.set_num_threads(1)
    answer.edge_answer = L.recording
    img, lab = load_pair(f"{path}/image.tif", f"{path}/labels.tif") if path != "nuclei" else load_pair(*L_N)
    protocol = Protocol(clicks=10, device="cpu", edges="never")
    method = ModelMethod(protocol.make_engine(), img)
    rows = []

    class R:
        def start(self):
            L.FIRST.clear()

        def click(self, c):
            if "click" not in L.FIRST:
                L.FIRST["click"] = (c.y, c.x)
            return method.click(c)

        def finish(self, mask):
            rows.append(dict(L.FIRST))
            method.finish(mask)

    ids = target_ids(lab)[:30]
    run_targets(R(), lab, ids, protocol.make_robot(), 10)
    out = []
    for tid, r in zip(ids, rows):
        if "model" not in r:
            continue
        ys, xs = r["where"]
        t = (lab == tid)[ys, xs]
        p = (r["click"][0] - ys.start, r["click"][1] - xs.start)
        d = {"model": dice(r["model"], t)}
        for name, f in VARS.items():
            d[name] = dice(f(r["crop"], r["logits"], r["model"], p), t)
        out.append(d)
    return out


L_N = ("src/napari_oaims/data/nuclei2d_image.tif", "src/napari_oaims/data/nuclei2d_labels.tif")
res = {}
for s in sys.argv[1].split(","):
    res[s] = collect(s if s == "nuclei" else s)
    m = {k: np.mean([d[k] for d in res[s]]) for k in res[s][0]}
    print(s.split("/")[-1], len(res[s]), " ".join(f"{k} {v:.3f}" for k, v in m.items()), flush=True)
json.dump(res, open(sys.argv[2], "w"))
