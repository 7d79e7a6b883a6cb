"""Write the ``stacked`` failure volumes (nuclei stacked along z with blurred ends) as ``.npy``
image/labels pairs, so that the stack scripts (``sample_leak.py --image/--labels``,
``stack_summary.py``, ``stack_objects.py``) measure them as they measure a real stack.

    PYTHONPATH=src python research/propagation/stacked_volumes.py OUT_DIR [--n 3] [--seed 0]
    python research/propagation/stacked_volumes.py OUT_DIR --summary   # after sample_leak.py


Writes ``OUT_DIR/stacked_<i>_image.npy`` and ``OUT_DIR/stacked_<i>_labels.npy`` (the volumes of
``failure_suite(n, FAILURE_SHAPE, seed)`` whose kind is ``stacked``) and prints, per volume, how
visible the nuclei's ends are along z (as ``stack_summary.py`` measures it).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from napari_oaims.training.volumes import FAILURE_SHAPE, failure_suite, make_volume


def end_ratios(img: np.ndarray, labels: np.ndarray) -> tuple[list[float], list[float]]:
    """Per nucleus end: the image mean in the end slice's footprint on the next slice over the
    end slice's, and the share of that footprint another nucleus covers on the next slice."""
    ratio, cover = [], []
    for lab in np.unique(labels)[1:]:
        m = labels == lab
        zs = np.flatnonzero(m.any((1, 2)))
        for end, nxt in ((zs[-1], zs[-1] + 1), (zs[0], zs[0] - 1)):
            if 0 <= nxt < len(labels):
                fp = m[end]
                ratio.append(float(img[nxt][fp].mean() / img[end][fp].mean()))
                cover.append(float(((labels[nxt][fp] > 0) & (labels[nxt][fp] != lab)).mean()))
    return ratio, cover


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--n", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--summary", action="store_true", help="sum up OUT_DIR/sample_leak_<i>.json over the volumes")
    a = p.parse_args()
    if a.summary:
        summary(a.out)
        return
    os.makedirs(a.out, exist_ok=True)
    specs = [s for s in failure_suite(a.n, FAILURE_SHAPE, a.seed) if s.kind == "stacked"]
    for i, spec in enumerate(specs):
        img, labels = make_volume(spec)
        np.save(os.path.join(a.out, f"stacked_{i}_image.npy"), img)
        np.save(os.path.join(a.out, f"stacked_{i}_labels.npy"), labels)
        ratio, cover = end_ratios(img, labels)
        thick = [int(np.count_nonzero((labels == v).any((1, 2)))) for v in np.unique(labels)[1:]]
        print(
            f"stacked_{i}: {len(thick)} nuclei, {min(thick)}-{max(thick)} slices (median {np.median(thick):.0f}),"
            f" background {img[labels == 0].mean():.0f}, nuclei {img[labels > 0].mean():.0f},"
            f" next slice over end slice median {np.median(ratio):.2f} ({min(ratio):.2f}-{max(ratio):.2f}),"
            f" ends whose next slice another nucleus covers > 0.3: {sum(c > 0.3 for c in cover)} of {len(cover)}"
        )


def summary(out: str) -> None:
    """All nuclei of ``out/sample_leak_<i>.json``: 3D Dice, voxels in others, slices beyond truth."""
    import glob
    import json

    rows = []
    for path in sorted(glob.glob(os.path.join(out, "sample_leak_*.json"))):
        with open(path) as f:
            rows += json.load(f)
    d = np.array([r["dice"] for r in rows])
    beyond = np.array(
        [
            max(r["truth_z"][0] - r["mask_z"][0], 0) + max(r["mask_z"][1] - r["truth_z"][1], 0)
            for r in rows
            if r["mask_z"]
        ]
    )
    short = sum(
        bool(r["mask_z"]) and (r["mask_z"][0] > r["truth_z"][0] or r["mask_z"][1] < r["truth_z"][1]) for r in rows
    )
    res = {
        "nuclei": len(rows),
        "mean_dice": round(float(d.mean()), 3),
        "median_dice": round(float(np.median(d)), 3),
        "below_0.5": int((d < 0.5).sum()),
        "mean_slice_dice": round(float(np.mean([r["slice_dice"] for r in rows])), 3),
        "voxels_in_others": int(sum(r["in_others"] for r in rows)),
        "slices_beyond_truth_median": float(np.median(beyond)),
        "slices_beyond_truth_mean": round(float(beyond.mean()), 2),
        "nuclei_3_or_more_slices_beyond": int((beyond >= 3).sum()),
        "nuclei_ending_short_of_truth": int(short),
    }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
