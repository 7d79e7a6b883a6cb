"""*Propagate all* on a labelled 3D stack, seeded as a user would: on the slice with the most
objects, one click at the deepest point of each object's truth, accept (the accepted masks painted
into a seeds plane, earlier objects kept), then one ``Session.propagate_objects`` from that plane.
Per object: the seed's Dice on the slice, the 3D Dice against its truth, the voxels it took from
other objects' truth, and the voxels it shares with another propagated object.

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/propagation/stack_objects.py \\
        --image IMAGE --labels LABELS [--method frozen] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from napari_oaims import Engine
from napari_oaims.core.clicks import click_in_region
from napari_oaims.core.files import read_array
from napari_oaims.core.labels import paint
from napari_oaims.evaluation.metrics import dice


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--image", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--method", default="frozen")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    torch.set_num_threads(1)
    img, labels = np.asarray(read_array(a.image)), np.asarray(read_array(a.labels))
    counts = [len(np.unique(labels[z])) - (labels[z] == 0).any() for z in range(len(labels))]
    z = int(np.argmax(counts))
    ids = [int(v) for v in np.unique(labels[z]) if v > 0]
    eng = Engine.pretrained(device="cpu")
    s = eng.session(img, plane_axes=(1, 2))
    seeds = np.zeros(labels.shape[1:], np.int32)
    seed_rows = {}
    refused = []
    t0 = time.perf_counter()
    for lab in ids:
        try:
            s.click((z, *click_in_region(labels[z] == lab)))
            acc = s.accept()
        except ValueError as err:  # a refused click or an empty mask: reported, the user goes on
            refused.append({"nucleus": lab, "error": str(err)})
            s.clear()
            continue
        m = np.asarray(acc.mask, bool)[z]
        painted, _, _ = paint(seeds, (slice(None), slice(None)), m, lab)
        seed_rows[lab] = {"click_dice": float(dice(m, labels[z] == lab)), "painted": painted}
    seconds_seed = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = s.propagate_objects(seeds, plane=(z,), axis=0, method=a.method)
    seconds = time.perf_counter() - t0
    masks = {int(lb): np.asarray(acc.mask, bool) for acc, lb in zip(out.objects, out.labels)}
    claims = np.sum([m.astype(np.int32) for m in masks.values()], axis=0)
    rows = []
    print(f"seeds slice z={z} ({len(ids)} nuclei); method {a.method}")
    print("| nucleus | seed Dice | 3D Dice | voxels | mask z | truth z | taken | shared |")
    print("|---|---|---|---|---|---|---|---|")
    for lab, m in masks.items():
        truth = labels == lab
        mz, tz = np.flatnonzero(m.any((1, 2))), np.flatnonzero(truth.any((1, 2)))
        row = {
            "nucleus": lab,
            "seed_dice": round(dice(seeds == lab, labels[z] == lab), 4),
            "click_dice": round(seed_rows[lab]["click_dice"], 4),
            "dice": round(float(dice(m, truth)), 4),
            "voxels": int(truth.sum()),
            "mask_z": [int(mz[0]), int(mz[-1])] if len(mz) else None,
            "truth_z": [int(tz[0]), int(tz[-1])],
            "taken": int((m & (labels > 0) & ~truth).sum()),
            "shared": int((m & (claims > 1)).sum()),
        }
        rows.append(row)
        print(
            f"| {lab} | {row['seed_dice']:.3f} | {row['dice']:.3f} | {row['voxels']} | {row['mask_z']} "
            f"| {row['truth_z']} | {row['taken']} | {row['shared']} |"
        )
    summary = {
        "slice": z,
        "nuclei_on_slice": len(ids),
        "objects": len(rows),
        "refused": refused,
        "mean_dice": round(float(np.mean([r["dice"] for r in rows])), 4) if rows else float("nan"),
        "min_dice": round(float(min(r["dice"] for r in rows)), 4) if rows else float("nan"),
        "below_0.5": int(sum(r["dice"] < 0.5 for r in rows)),
        "taken": int(sum(r["taken"] for r in rows)),
        "shared_voxels": int((claims > 1).sum()),
        "mean_seed_dice": round(float(np.mean([r["seed_dice"] for r in rows])), 4) if rows else float("nan"),
        "seconds_clicks_accepts": round(seconds_seed, 1),
        "seconds_propagate_objects": round(seconds, 1),
    }
    print(json.dumps(summary))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"summary": summary, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
