"""Tried (not shipped): a positive click on a slice led by a prior (a propagated slice) adds the
model's answer snapped to the image's edges (``core.edges.snap_to_edges`` between the model's sure
object and sure background) instead of the model's answer alone. Runs the robot protocol of
``oaims bench propagate`` (frozen) on the failure volumes with and without it.

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/propagation/snap_positive_3d.py \
        [--rim R] [--min-area A] [--seed S] [CASE ...]

``--rim R`` adds only the snapped pixels within R px of the answer (0: all of them); ``--min-area
A`` snaps only answers of at least A px; ``--seed`` draws other failure volumes (0: the suite of
``oaims bench propagate --data failures``).
"""

import argparse

import numpy as np
from scipy import ndimage as ndi

from napari_oaims import Engine, answer
from napari_oaims.core import edges
from napari_oaims.core.guidance import Window
from napari_oaims.evaluation.propagate import procedural_cases, run_case

parser = argparse.ArgumentParser()
parser.add_argument("cases", nargs="*")
parser.add_argument("--rim", type=int, default=0)
parser.add_argument("--min-area", type=int, default=0)
parser.add_argument("--seed", type=int, default=0)
ARGS = parser.parse_args()

last = {}
predict = answer.predict
corrected = answer.corrected
STATE = {"snap": False}


def stashing(session, key, prompts, window, state, logits=None):
    out = predict(session, key, prompts, window, state, logits)
    info = out[2]
    if info.get("window"):
        w = Window(*info["window"])
        last["window"] = w
        last["logits"] = session.predict_window(key, prompts, w)
        last["crop"] = session.source.crop(key, w)
    return out


def snapping(session, prompts, before, after, offset):
    out = corrected(session, prompts, before, after, offset)
    p = prompts[-1]
    if not (STATE["snap"] and prompts[0].kind == "prior" and p.kind == "click" and p.positive and "window" in last):
        return out
    if out.sum() < ARGS.min_area:
        return out
    w = last["window"]
    ys, xs, wy, wx = w.clip(session.source.plane_shape)
    lg, crop = last["logits"][wy, wx], last["crop"][wy, wx]
    pos = answer.positive_points(prompts) - [ys.start, xs.start]
    negs = [q.points for q in prompts if q.kind == "click" and not q.positive]
    neg = (np.concatenate(negs) if negs else np.zeros((0, 2))) - [ys.start, xs.start]
    snapped = edges.snap_to_edges(crop, lg, lg > 0, pos, neg)
    # onto the region of ``out`` (offset), adding only
    full = np.zeros(session.source.plane_shape, bool)
    full[ys, xs] = snapped
    region = full[offset[0] : offset[0] + out.shape[0], offset[1] : offset[1] + out.shape[1]]
    if ARGS.rim:
        region = region & ndi.binary_dilation(out, iterations=ARGS.rim)
    return out | region


answer.predict = stashing
answer.corrected = snapping
eng = Engine.pretrained(device="cpu")
cases = {c["name"]: c for c in procedural_cases(3, (28, 96, 96), seed=ARGS.seed, failures=True)}
for name in ARGS.cases or list(cases):
    row = []
    for snap in (False, True):
        STATE["snap"] = snap
        r = run_case(eng, cases[name]["image"], cases[name]["target"], method="frozen", cap=40)
        row.append(f"{r['clicks']:2d} clicks, worst drop {r['worst_drop']:.3f}, drops {r['drops']}")
    print(f"{name:16s} off: {row[0]} | snap: {row[1]}", flush=True)
