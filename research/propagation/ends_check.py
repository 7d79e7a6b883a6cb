"""Chains on which several stop rules find an end on the same slice: one click at the deepest
point of each nucleus's fullest slice and one propagation on the ``stacked`` failure volumes,
with the earliest end winning (``earliest_end``, the default) and with the first rule asked
winning (the order neck, contrast, waist, intensity, dip), side by side. Only nuclei with a chain where two
rules disagree on the end are propagated the second way (elsewhere both ways are the same).

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/propagation/ends_check.py OUT.json [--n 6]
        [--method frozen] [--settings JSON]

``--n``: volumes per failure kind drawn (``failure_suite(n)``; its ``stacked`` volumes are used).
"""

from __future__ import annotations

import argparse
import importlib
import json

import numpy as np
import torch


def main() -> None:
    from napari_oaims import Engine
    from napari_oaims.core.clicks import click_in_region
    from napari_oaims.evaluation.metrics import dice
    from napari_oaims.propagate import stops
    from napari_oaims.training.volumes import failure_suite, make_volume

    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--n", type=int, default=6)
    p.add_argument("--method", default="frozen")
    p.add_argument("--settings", default="{}")
    a = p.parse_args()
    torch.set_num_threads(1)
    eng = Engine.pretrained(device="cpu")
    settings = json.loads(a.settings)
    seen: list = []
    real_stop = stops.stop_reason

    def spy(ctx, key, mask, prev, track, pos):
        reason = real_stop(ctx, key, mask, prev, track, pos)
        if reason is not None:
            seen.append({"pos": int(pos), "reason": reason, "cut": track.cut, "ends": list(track.ends)})
        return reason

    importlib.import_module("napari_oaims.propagate.run").stop_reason = spy  # the module, not run()

    def one(img, labels, lab, first: bool):
        seen.clear()
        truth = labels == lab
        z = int(np.argmax(truth.sum((1, 2))))
        s = eng.session(img, plane_axes=(1, 2))
        s.click((z, *click_in_region(truth[z])))
        m = np.asarray(s.propagate(axis=0, method=a.method, **{**settings, "earliest_end": not first}).mask, bool)
        mz = np.flatnonzero(m.any((1, 2)))
        return {
            "dice": round(float(dice(m, truth)), 4),
            "in_others": int((m & (labels > 0) & ~truth).sum()),
            "mask_z": [int(mz[0]), int(mz[-1])] if len(mz) else None,
            "stops": [dict(x) for x in seen],
        }

    rows = []
    specs = [sp for sp in failure_suite(a.n) if sp.kind == "stacked"]
    for v, spec in enumerate(specs):
        img, labels = make_volume(spec)
        for lab in [int(x) for x in np.unique(labels) if x > 0]:
            truth = labels == lab
            zs = np.flatnonzero(truth.any((1, 2)))
            row = {"volume": v, "nucleus": lab, "truth_z": [int(zs[0]), int(zs[-1])]}
            row["earliest"] = one(img, labels, lab, first=False)
            stopped = row["earliest"]["stops"]
            disagree = any(len({st["pos"] if c is None else c for _, c in st["ends"]}) > 1 for st in stopped)
            row["first"] = one(img, labels, lab, first=True) if disagree else row["earliest"]
            rows.append(row)
            if disagree:
                e, f = row["earliest"], row["first"]
                print(
                    f"volume {v} nucleus {lab} truth z {row['truth_z']}: first rule {f['mask_z']} Dice {f['dice']:.3f}"
                    f" in others {f['in_others']} -> earliest {e['mask_z']} Dice {e['dice']:.3f} in others"
                    f" {e['in_others']}; ends {[st['ends'] for st in e['stops'] if len(st['ends']) > 1]}",
                    flush=True,
                )
    for mode in ("first", "earliest"):
        d = [r[mode]["dice"] for r in rows]
        print(
            f"{mode}: {len(rows)} nuclei, mean 3D Dice {np.mean(d):.4f}, voxels in others"
            f" {sum(r[mode]['in_others'] for r in rows)}"
        )
    with open(a.out, "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
