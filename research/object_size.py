"""First-click Dice against object size: the nuclei rescaled, one centre click per nucleus.

Backs the object-size table of docs/benchmarks.md (how large the first-click window must be, and
what ``Engine.first_window = "auto"`` does). Run from the repository root::

    .venv/bin/python research/object_size.py --image ../shared/data/nuclei2d/image.tif \
        --labels ../shared/data/nuclei2d/labels.tif --scales 0.5 1 1.5 2 3 \
        --first-window 64 96 4d auto --out research/results/object_size/first_click.json

``4d`` sets the first window to four times the median object diameter at that scale; ``auto``
measures each object at the click. Nothing is accepted, so ``auto`` is the per-click estimate.
``--write DIR`` also saves the rescaled copies (``nuclei_x{scale}_image.tif`` / ``_labels.tif``)
for ``oaims bench clicks`` (the full robot protocol at each scale). Weights: the shipped ones
unless ``--weights``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import tifffile
import torch
from skimage.measure import regionprops
from skimage.transform import rescale

from napari_oaims import Engine
from napari_oaims.evaluation.metrics import dice
from napari_oaims.simulate.clicks import click_in_region


def first_click_dice(engine: Engine, image: np.ndarray, labels: np.ndarray) -> list[float]:
    """Dice of the mask one click at each object's centre gives (objects under 5 px skipped)."""
    session = engine.session(image)
    scores = []
    for lid in np.unique(labels[labels > 0]):
        target = labels == lid
        if target.sum() < 5:
            continue
        scores.append(dice(session.click(click_in_region(target)).mask, target))
        session.clear()
    return scores


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--weights", default=None)
    p.add_argument("--scales", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0, 3.0])
    p.add_argument("--first-window", nargs="+", default=["64", "96", "4d", "auto"])
    p.add_argument("--out", default=None)
    p.add_argument("--write", type=Path, default=None, help="save the rescaled image and labels here (TIFF)")
    args = p.parse_args()
    torch.set_num_threads(2)
    image0 = tifffile.imread(args.image).astype(np.float32)
    labels0 = tifffile.imread(args.labels)
    engine = Engine.pretrained(device="cpu", weights=args.weights)
    rows = []
    print(f"{'scale':>6} {'diameter':>9} " + " ".join(f"{'fw=' + f:>10}" for f in args.first_window))
    for s in args.scales:
        image = rescale(image0, s, order=1, anti_aliasing=s < 1, preserve_range=True)
        labels = rescale(labels0, s, order=0, anti_aliasing=False, preserve_range=True).astype(np.int32)
        if args.write is not None:
            args.write.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(args.write / f"nuclei_x{s:g}_image.tif", image.astype(np.float32))
            tifffile.imwrite(args.write / f"nuclei_x{s:g}_labels.tif", labels)
        diameter = float(np.median([r.equivalent_diameter_area for r in regionprops(labels)]))
        row = {"scale": s, "median_diameter_px": round(diameter, 1), "dice@1": {}}
        for fw in args.first_window:
            engine.first_window = round(4 * diameter) if fw == "4d" else fw if fw == "auto" else int(fw)
            row["dice@1"][fw] = {
                "first_window": engine.first_window,
                "mean": round(float(np.mean(first_click_dice(engine, image, labels))), 4),
            }
        rows.append(row)
        print(
            f"{s:>6.2f} {diameter:>9.1f} "
            + " ".join(
                f"{row['dice@1'][f]['mean']:>6.3f}@{str(row['dice@1'][f]['first_window'])[:4]:<4}"
                for f in args.first_window
            )
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(
            json.dumps(
                {"weights": args.weights or "shipped", "image": args.image, "labels": args.labels, "rows": rows},
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
