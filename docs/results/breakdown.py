"""Break an ``oaims bench adapt`` result down: NoC@0.85 histogram and Dice@1 / NoC by image third.

Used in docs/NOTES.md (session 7) to see where the +15 / -30% rule of issue 3 is lost::

    python docs/results/breakdown.py docs/results/adapt_125.json --shift invert --shift illum \
        --labels ../shared/data/nuclei2d/labels.tif
    python docs/results/breakdown.py docs/results/probe_combo.json --frozen docs/results/adapt_125.json

and in session 9 by half of the target sequence, and without the two border slivers that no method
brings to 0.85::

    python docs/results/breakdown.py docs/results/probe_gpu_seed0.json --shift invert --shift illum \
        --frozen docs/results/probe_gpu_seed0.json --halves --skip 155 --skip 82

A target that never reaches 0.85 counts as 20 clicks, as in the bench.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage

from napari_oaims.metrics import noc

THRESHOLD, CAP = 0.85, 20


def _nocs(curves: np.ndarray) -> np.ndarray:
    return np.array([noc(curve, THRESHOLD, CAP) for curve in curves]).astype(int)


def _se(d: np.ndarray) -> float:
    return float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")


def _main_run(result: dict, path: str, shift: str) -> dict:
    """The ``main`` run of ``shift`` in a bench result, or a clear exit."""
    try:
        return result["shifts"][shift]["main"]
    except (KeyError, TypeError):
        shifts = sorted(result.get("shifts", {})) if isinstance(result, dict) else []
        raise SystemExit(f"{path}: no main run for shift {shift!r} (shifts there: {shifts}); "
                         "is it a file written by `oaims bench adapt`?") from None


def _load(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise SystemExit(f"cannot read {path}: {err}") from None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("result", help="JSON written by `oaims bench adapt`")
    p.add_argument("--shift", action="append", help="shift(s) to show (default: all)")
    p.add_argument("--labels", help="2D label image: also break Dice@1 and NoC down by the target's image third")
    p.add_argument("--frozen", help="result JSON with method 'none' on the same targets: print each method's Dice@1 "
                   "gain and NoC@0.85 change against it (mean and standard error over targets)")
    p.add_argument("--halves", action="store_true",
                   help="also break Dice@1 and NoC (and the change against --frozen) down by half of the sequence")
    p.add_argument("--skip", type=int, action="append", default=[],
                   help="leave this target label out of every number (repeat); for sensitivity checks")
    a = p.parse_args()
    result = _load(a.result)
    frozen = _load(a.frozen) if a.frozen else None
    labels = None
    if a.labels:
        try:
            labels = tifffile.imread(a.labels)
        except (OSError, ValueError, tifffile.TiffFileError) as err:
            raise SystemExit(f"cannot read the label image {a.labels}: {err}") from None
        if labels.ndim != 2:
            raise SystemExit(f"{a.labels}: expected a 2D label image, got shape {labels.shape}")
    for shift in a.shift or list(result.get("shifts", {})):
        main_run = _main_run(result, a.result, shift)
        keep = np.array([t not in a.skip for t in main_run["targets"]], bool)
        half = np.arange(len(keep)) >= len(keep) // 2  # position in the sequence, before skipping
        thirds = ref = None
        if labels is not None:
            missing = [t for t in main_run["targets"] if not (labels == t).any()]
            if missing:
                raise SystemExit(f"{a.labels}: labels {missing[:5]} of {a.result} are not in this image")
            cx = np.array([ndimage.center_of_mass(labels == t)[1] for t in main_run["targets"]]) / labels.shape[1]
            thirds = np.digitize(cx, [1 / 3, 2 / 3])[keep]
        if frozen is not None:
            ref = _main_run(frozen, a.frozen, shift)
            if ref["targets"] != main_run["targets"] or "none" not in ref["methods"]:
                raise SystemExit(f"{a.frozen}: needs method 'none' on the same targets as {a.result} (shift {shift})")
            f = np.asarray(ref["methods"]["none"]["curves"])[keep]
            nf = _nocs(f)
        for method, v in main_run["methods"].items():
            c = np.asarray(v["curves"])[keep]
            n = _nocs(c)
            hist = dict(zip(*[x.tolist() for x in np.unique(n, return_counts=True)]))
            print(f"{shift:8s} {method:40s} Dice@1 {c[:, 0].mean():.3f} NoC@0.85 {n.mean():.2f} "
                  f"never: {int((n == CAP).sum())} histogram: {hist}")
            if ref is not None:
                dk, dn = (c[:, 0] - f[:, 0]) * 100, (n - nf) / nf.mean() * 100
                print(" " * 9 + f"vs frozen: Dice@1 {dk.mean():+.1f}±{_se(dk):.1f} points, "
                      f"NoC@0.85 {nf.mean():.2f} -> {n.mean():.2f} ({dn.mean():+.1f}±{_se(dn):.1f}%)")
            if thirds is not None:
                print(" " * 9 + " | ".join(
                    f"third {j}: n={int((thirds == j).sum())} Dice@1 {c[thirds == j, 0].mean():.3f} "
                    f"NoC {n[thirds == j].mean():.2f}" for j in range(3) if (thirds == j).any()))
            if a.halves:
                parts = []
                for j, name in enumerate(("1st half", "2nd half")):
                    sel = half[keep] == j
                    part = f"{name}: n={int(sel.sum())} Dice@1 {c[sel, 0].mean():.3f} NoC {n[sel].mean():.2f}"
                    if ref is not None:
                        part += f" ({(n[sel].mean() / nf[sel].mean() - 1) * 100:+.1f}% vs frozen)"
                    parts.append(part)
                print(" " * 9 + " | ".join(parts))


if __name__ == "__main__":
    main()
