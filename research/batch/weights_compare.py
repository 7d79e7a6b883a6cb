"""Per-object Dice of uncorrected frozen batch propagation, on the volumes of ``oaims bench batch``, with
the 0.3.0 and the 0.4.0 packaged weights (one local Dask worker each).

    OMP_NUM_THREADS=1 python research/batch/weights_compare.py DIR > research/batch/weights_compare.txt
"""

import sys
from pathlib import Path

import numpy as np

import zarr

from napari_oaims.batch import LABELS, propagate_many
from napari_oaims.core.overlap import dice
from napari_oaims.engine import bundled_weights_path
from napari_oaims.evaluation.batch import write_volumes

WEIGHTS = {"0.3.0": "5eb3513865717c6b", "0.4.0": "d57cb97eb645f3f6"}


def objects(report: dict, truth: dict) -> list[tuple]:
    """(volume, object, Dice, voxels, true voxels, slices, true slices) for every object."""
    rows = []
    for job in report["jobs"]:
        labels = np.asarray(zarr.open_array(str(Path(job["output"]) / "labels" / LABELS / "0"), mode="r")[...])
        ref = np.load(truth[job["name"]])
        for i in np.unique(ref)[1:]:
            a, b = labels == i, ref == i
            n_a, n_b = int((a.sum((1, 2)) > 0).sum()), int((b.sum((1, 2)) > 0).sum())
            rows.append((job["name"], int(i), round(dice(a, b), 3), int(a.sum()), int(b.sum()), n_a, n_b))
    return rows


def main(root: Path) -> None:
    manifest, truth = write_volumes(root / "vols", 8, (16, 96, 96), seed=0)
    res = {}
    for name, base in WEIGHTS.items():
        report = propagate_many(
            manifest, root / name, workers=1, method="frozen", weights=str(bundled_weights_path(base)),
            device="cpu", overwrite=True, progress=False,
        )  # fmt: skip
        res[name] = objects(report, truth)
    for a, b in zip(res["0.3.0"], res["0.4.0"]):
        print(a[:2], "dice", a[2], b[2], "vox", a[3], b[3], "true", a[4], "slices", a[5], b[5], "true", a[6])
    for name, rows in res.items():
        d = [r[2] for r in rows]
        print(name, "mean", round(np.mean(d), 3), "median", round(np.median(d), 3))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
