"""Many objects at once (``Session.propagate_objects``, *Propagate all*): every object of one slice
seeded exactly from the truth on that slice, one call, frozen. Per object: 3D Dice against its
truth and the voxels it took from other objects' truth.

Volumes: the ``touching`` failure volumes (``training.volumes.failure_suite``; seeded on the
target's fullest slice, and on the first slice of the neighbour above, where that neighbour is a
small cap) and the plugin's 3D sample (``training.synth.volume``, seeded on the slice holding the
most objects).

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 5 python research/propagation/objects_bench.py [--n 3] [--json out.json]

Uses the public API only, so the same script measures any version of the package.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from napari_oaims import Engine


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int((a & b).sum()) / s


def measure(engine, name: str, image: np.ndarray, labels: np.ndarray, z: int) -> list[dict]:
    s = engine.session(image, plane_axes=(1, 2))
    t0 = time.perf_counter()
    out = s.propagate_objects(labels[z], plane=(z,), method="frozen")
    seconds = time.perf_counter() - t0
    rows = []
    for acc, label in zip(out.objects, out.labels):
        truth = labels == label
        others = (labels > 0) & ~truth
        rows.append(
            {
                "volume": name,
                "object": int(label),
                "seed_px": int((labels[z] == label).sum()),
                "dice": round(dice(acc.mask, truth), 4),
                "taken": int((acc.mask & others).sum()),
                "voxels": int(acc.mask.sum()),
                "truth": int(truth.sum()),
                "seconds": round(seconds, 2),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3, help="touching volumes")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from napari_oaims.training.synth import volume
    from napari_oaims.training.volumes import FAILURE_SHAPE, failure_suite, make_volume

    engine = Engine.pretrained(device="cpu")
    rows = []
    specs = [sp for sp in failure_suite(args.n, FAILURE_SHAPE, 0) if sp.kind == "touching"]
    for i, spec in enumerate(specs):
        image, labels = make_volume(spec)
        z = int(np.argmax((labels == 1).sum((1, 2))))
        rows += measure(engine, f"touching_{i}", image, labels, z)
        # the first slice of the neighbour above: its seed there is a small cap on the target's end
        z = int(np.flatnonzero((labels == 2).any((1, 2)))[0])
        rows += measure(engine, f"touching_{i}_cap", image, labels, z)
    image, labels = volume(np.random.default_rng(0))
    z = int(np.argmax([len(np.unique(labels[k])) for k in range(labels.shape[0])]))
    rows += measure(engine, "sample_3d", image, labels, z)
    print("| volume | object | seed px | 3D Dice | taken | voxels | truth |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [r["volume"], r["object"], r["seed_px"], f"{r['dice']:.3f}", r["taken"], r["voxels"], r["truth"]]
        print("| " + " | ".join(map(str, cells)) + " |")
    for name in dict.fromkeys(r["volume"] for r in rows):
        rs = [r for r in rows if r["volume"] == name]
        print(
            f"{name}: mean Dice {np.mean([r['dice'] for r in rs]):.3f}, min {min(r['dice'] for r in rs):.3f}, "
            f"taken {sum(r['taken'] for r in rs)}, {rs[0]['seconds']} s"
        )
    print(
        f"all: mean Dice {np.mean([r['dice'] for r in rows]):.3f}, objects below 0.5: "
        f"{sum(r['dice'] < 0.5 for r in rows)} of {len(rows)}, taken {sum(r['taken'] for r in rows)}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
