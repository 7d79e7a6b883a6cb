"""Break an ``oaims bench adapt`` result down: NoC@0.85 histogram and Dice@1 / NoC by image third.

Used in docs/NOTES.md (session 7) to see where the +15 / -30% rule of issue 3 is lost::

    python docs/results/breakdown.py docs/results/adapt_125.json --shift invert --shift illum \
        --labels ../shared/data/nuclei2d/labels.tif
    python docs/results/breakdown.py docs/results/probe_combo.json --frozen docs/results/adapt_125.json

A target that never reaches 0.85 counts as 20 clicks, as in the bench.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import tifffile
from scipy import ndimage

from napari_oaims.metrics import noc

THRESHOLD, CAP = 0.85, 20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("result", help="JSON written by `oaims bench adapt`")
    p.add_argument("--shift", action="append", help="shift(s) to show (default: all)")
    p.add_argument("--labels", help="label image: also break Dice@1 and NoC down by the target's image third")
    p.add_argument("--frozen", help="result JSON with method 'none' on the same targets: print each method's Dice@1 "
                   "gain and NoC@0.85 change against it (mean and standard error over targets)")
    a = p.parse_args()
    result = json.load(open(a.result))
    labels = tifffile.imread(a.labels) if a.labels else None
    frozen = json.load(open(a.frozen)) if a.frozen else None
    for shift in a.shift or list(result["shifts"]):
        main_run = result["shifts"][shift]["main"]
        thirds = None
        if labels is not None:
            cx = np.array([ndimage.center_of_mass(labels == t)[1] for t in main_run["targets"]]) / labels.shape[1]
            thirds = np.digitize(cx, [1 / 3, 2 / 3])
        for method, v in main_run["methods"].items():
            c = np.asarray(v["curves"])
            n = np.array([noc(curve, THRESHOLD, CAP) for curve in c]).astype(int)
            hist = dict(zip(*[x.tolist() for x in np.unique(n, return_counts=True)]))
            print(f"{shift:8s} {method:40s} Dice@1 {c[:, 0].mean():.3f} NoC@0.85 {n.mean():.2f} "
                  f"never: {int((n == CAP).sum())} histogram: {hist}")
            if frozen is not None:
                ref = frozen["shifts"][shift]["main"]
                if ref["targets"] != main_run["targets"]:
                    raise SystemExit(f"{a.frozen}: other targets than {a.result} on shift {shift}")
                f = np.asarray(ref["methods"]["none"]["curves"])
                nf = np.array([noc(curve, THRESHOLD, CAP) for curve in f])
                dk, dn = (c[:, 0] - f[:, 0]) * 100, (n - nf) / nf.mean() * 100
                se = lambda d: d.std(ddof=1) / np.sqrt(len(d))  # noqa: E731
                print(" " * 9 + f"vs frozen: Dice@1 {dk.mean():+.1f}±{se(dk):.1f} points, "
                      f"NoC@0.85 {nf.mean():.2f} -> {n.mean():.2f} ({dn.mean():+.1f}±{se(dn):.1f}%)")
            if thirds is not None:
                print(" " * 9 + " | ".join(
                    f"third {j}: n={int((thirds == j).sum())} Dice@1 {c[thirds == j, 0].mean():.3f} "
                    f"NoC {n[thirds == j].mean():.2f}" for j in range(3)))


if __name__ == "__main__":
    main()
