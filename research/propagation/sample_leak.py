"""The plugin's 3D sample: one click at the deepest point of each nucleus's fullest slice (or its
middle slice, ``--slice middle``), one ``Session.propagate``; per nucleus the 3D Dice, the voxels
in other nuclei's truth, and per leaked slice where the leak lies: which nucleus, whether that
nucleus is on the previous slice too (the object meets it across z) and how much of the leak lies
outside the previous slice's mask dilated by ``--grow`` pixels (it enters along the face).

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/propagation/sample_leak.py [--method frozen]
        [--slice fullest|middle] [--grow 3] [--png DIR] [--json FILE] [--settings JSON] [--exact]
        [--image IMAGE --labels LABELS]

``--image``/``--labels``: a labelled 3D stack from files instead of the plugin's sample (label
values need not be consecutive).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from scipy import ndimage

from napari_oaims import Engine
from napari_oaims.core.clicks import click_in_region
from napari_oaims.evaluation.metrics import dice
from napari_oaims.plugin.sample_data import volume_3d


def leak_rows(mask: np.ndarray, labels: np.ndarray, lab: int, grow: int) -> list[dict]:
    """Per slice with voxels in another nucleus: where they are."""
    rows = []
    other = (labels > 0) & (labels != lab)
    for z in np.flatnonzero((mask & other).any((1, 2))):
        leak = mask[z] & other[z]
        prev_z = z - 1 if z > 0 and mask[z - 1].any() and abs(z - 1 - _anchor) < abs(z - _anchor) else z + 1
        prev = mask[prev_z] if 0 <= prev_z < len(mask) else np.zeros_like(mask[z])
        outside = leak & ~ndimage.binary_dilation(prev, iterations=grow) if prev.any() else leak
        ids = np.unique(labels[z][leak])
        rows.append(
            {
                "z": int(z),
                "leak": int(leak.sum()),
                "into": [int(i) for i in ids],
                "prev_z": int(prev_z),
                "into_on_prev": [bool((labels[prev_z] == i).any()) for i in ids] if 0 <= prev_z < len(mask) else [],
                "prev_leak": int((prev & other[prev_z]).sum()) if 0 <= prev_z < len(mask) else 0,
                "outside_prev_dilated": int(outside.sum()),
                "mask": int(mask[z].sum()),
                "truth": int((labels[z] == lab).sum()),
                "own": int((mask[z] & (labels[z] == lab)).sum()),
            }
        )
    return rows


_anchor = 0


def main() -> None:
    global _anchor
    p = argparse.ArgumentParser()
    p.add_argument("--method", default="frozen")
    p.add_argument("--slice", default="fullest", choices=["fullest", "middle"])
    p.add_argument("--grow", type=int, default=3)
    p.add_argument("--png", default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--settings", default="{}")
    p.add_argument("--exact", action="store_true", help="seed with the truth on the slice (set_mask), not a click")
    p.add_argument("--image", default=None, help="a 3D image file (with --labels) instead of the plugin's sample")
    p.add_argument("--labels", default=None, help="its label volume")
    a = p.parse_args()
    torch.set_num_threads(1)
    if (a.image is None) != (a.labels is None):
        p.error("--image and --labels go together")
    if a.image is not None:
        from napari_oaims.core.files import read_array

        img, labels = np.asarray(read_array(a.image)), np.asarray(read_array(a.labels))
    else:
        (img, _, _), (labels, _, _) = volume_3d()
    eng = Engine.pretrained(device="cpu")
    out = []
    print("| nucleus | slice | slice Dice | 3D Dice | voxels in others | voxels | mask z | truth z | stops |")
    print("|---|---|---|---|---|---|---|---|---|")
    for lab in [int(v) for v in np.unique(labels) if v > 0]:
        truth = labels == lab
        zs = np.flatnonzero(truth.any((1, 2)))
        z = int(np.argmax(truth.sum((1, 2)))) if a.slice == "fullest" else int((zs[0] + zs[-1]) // 2)
        _anchor = z
        s = eng.session(img, plane_axes=(1, 2))
        if a.exact:
            s.set_mask(truth[z], plane=(z,))
        else:
            s.click((z, *click_in_region(truth[z])))
        r = s.propagate(axis=0, method=a.method, **json.loads(a.settings))
        m = np.asarray(r.mask, bool)
        leaked = int((m & (labels > 0) & ~truth).sum())
        mz = np.flatnonzero(m.any((1, 2)))
        stops = [c["stop"] for c in r.info["chains"]]
        row = {
            "nucleus": lab,
            "slice": z,
            "slice_dice": float(dice(m[z], truth[z])),
            "dice": float(dice(m, truth)),
            "in_others": leaked,
            "voxels": int(truth.sum()),
            "mask_z": [int(mz[0]), int(mz[-1])] if len(mz) else None,
            "truth_z": [int(zs[0]), int(zs[-1])],
            "stops": stops,
            "leaks": leak_rows(m, labels, lab, a.grow),
        }
        out.append(row)
        print(
            f"| {lab} | {z} | {row['slice_dice']:.3f} | {row['dice']:.3f} | {leaked} | {row['voxels']} "
            f"| {row['mask_z']} | {row['truth_z']} | {stops} |"
        )
        if a.png and row["leaks"]:
            draw(a.png, img, labels, m, lab, [lr["z"] for lr in row["leaks"]])
    for row in out:
        for lr in row["leaks"]:
            print(row["nucleus"], lr)
    right = [r for r in out if r["slice_dice"] >= 0.9]
    print(
        f"mean 3D Dice {np.mean([r['dice'] for r in out]):.3f}, voxels in others {sum(r['in_others'] for r in out)}"
        f" (slice Dice >= 0.9: mean {np.mean([r['dice'] for r in right]):.3f},"
        f" in others {sum(r['in_others'] for r in right)})"
    )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


def draw(folder: str, img, labels, mask, lab: int, zs: list[int]) -> None:
    """One PNG per nucleus: for each leaked slice and the slice before it, the image with the
    truth's outlines (own green, others red) and the mask's outline (yellow), cropped."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(folder, exist_ok=True)
    show = sorted(set(zs) | {z - 1 for z in zs} | {z + 1 for z in zs})
    show = [z for z in show if 0 <= z < len(img)]
    ys, xs = np.nonzero(mask.any(0) | (labels == lab).any(0))
    y0, y1, x0, x1 = max(ys.min() - 8, 0), ys.max() + 9, max(xs.min() - 8, 0), xs.max() + 9
    fig, axes = plt.subplots(1, len(show), figsize=(2.6 * len(show), 2.8))
    for ax, z in zip(np.atleast_1d(axes), show):
        ax.imshow(img[z, y0:y1, x0:x1], cmap="gray")
        lz = labels[z, y0:y1, x0:x1]
        for v in np.unique(lz):
            if v:
                ax.contour(lz == v, [0.5], colors=["lime" if v == lab else "red"], linewidths=0.8)
        if mask[z].any():
            ax.contour(mask[z, y0:y1, x0:x1], [0.5], colors=["yellow"], linewidths=1.0)
        ax.set_title(f"z={z}" + (" leak" if z in zs else ""), fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(os.path.join(folder, f"nucleus_{lab}.png"), dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
