"""One click on each nucleus's middle slice, one propagation, accept, nucleus after nucleus in one
session, as a user of the napari widget does: with the accepted nuclei as the barrier (what
*Propagate* now passes) or without (``--no-barrier``). Per nucleus the accepted object's 3D Dice
and its voxels in other nuclei's truth (painted without overwriting, as the widget paints).

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/propagation/sequential_barrier.py
        [--image IMAGE --labels LABELS] [--max-objects N] [--no-barrier]      (IMAGE: .tif or .npy)
"""

import argparse

import numpy as np

from napari_oaims import Engine
from napari_oaims.core.clicks import click_in_region
from napari_oaims.core.labels import paint
from napari_oaims.core.geometry import bbox_nd
from napari_oaims.evaluation.metrics import dice
from napari_oaims.plugin.sample_data import volume_3d


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--image")
    p.add_argument("--labels")
    p.add_argument("--max-objects", type=int, default=None)
    p.add_argument("--no-barrier", action="store_true")
    a = p.parse_args()
    if a.image and a.image.endswith(".npy"):
        image, labels = np.load(a.image), np.load(a.labels).astype(np.int32)
    elif a.image:
        import tifffile

        image, labels = tifffile.imread(a.image), tifffile.imread(a.labels).astype(np.int32)
    else:
        (image, _, _), (labels, _, _) = volume_3d()
    ids = [int(i) for i in np.unique(labels) if i][: a.max_objects]
    s = Engine.pretrained(device="cpu").session(image)
    layer = np.zeros(labels.shape, np.int32)
    rows = []
    for lab in ids:
        truth = labels == lab
        zs = np.flatnonzero(truth.any((1, 2)))
        z = int((zs[0] + zs[-1]) // 2)
        if not truth[z].any():
            z = int(zs[np.argmax(truth[zs].sum((1, 2)))])
        s.click((z, *click_in_region(truth[z])))
        s.propagate(barrier=None if a.no_barrier or not layer.any() else layer)
        oid = s.object_id
        mask = s.accept().mask
        index = bbox_nd(mask)
        paint(layer, index, mask[index], oid, overwrite=False)
        kept = layer == oid
        rows.append((lab, dice(kept, truth), int((kept & (labels > 0) & ~truth).sum())))
        print(f"nucleus {lab}: 3D Dice {rows[-1][1]:.3f}, voxels in others {rows[-1][2]}", flush=True)
    d = np.array([r[1] for r in rows])
    print(f"mean 3D Dice {d.mean():.3f}, >= 0.85: {int((d >= 0.85).sum())}/{len(d)}, "
          f"voxels in others {sum(r[2] for r in rows)}")


if __name__ == "__main__":
    main()
