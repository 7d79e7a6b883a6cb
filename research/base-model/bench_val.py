"""Click benchmark of one weights file on every validation set, printed as one table.

The loop is the one of ``oaims bench clicks`` (same robot, engine, window and Dice: the
``napari_oaims.evaluation`` pieces it is built from), with one addition: the area of the first
mask is kept, for the median predicted/true area at click 1. The classical baselines get one
click per target (only their Dice@1 is reported).

    python research/base-model/bench_val.py --weights W --name old [--sets runs/val] [--nuclei]
    python research/base-model/bench_val.py --table runs/base-model/results/old.json runs/base-model/results/cand.json

Results go to ``runs/base-model/results/<name>.json``; ``--table`` prints saved results side by side.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from napari_oaims.evaluation.classical import ClickSeeded
from napari_oaims.evaluation.common import ModelMethod, Protocol, load_pair, run_targets, target_ids
from napari_oaims.evaluation.metrics import summarise

NUCLEI = ("src/napari_oaims/data/nuclei2d_image.tif", "src/napari_oaims/data/nuclei2d_labels.tif")


class FirstArea:
    """A method wrapper that records the area of each target's first mask."""

    def __init__(self, method):
        self.method, self.areas, self._first = method, [], True

    def start(self) -> None:
        self._first = True
        self.method.start()

    def click(self, c):
        mask = self.method.click(c)
        if self._first:
            self.areas.append(int(np.count_nonzero(mask)))
            self._first = False
        return mask

    def finish(self, mask) -> None:
        self.method.finish(mask)


def bench_set(image_path: str, labels_path: str, weights: str | None, clicks: int = 10) -> dict:
    """Dice curves, first-click area ratios and the baselines' Dice@1 on one image/labels pair."""
    protocol = Protocol(clicks=clicks, weights=weights, device="cpu")
    img, lab = load_pair(image_path, labels_path)
    ids = target_ids(lab)
    true_area = [int(np.count_nonzero(lab == i)) for i in ids]
    model = FirstArea(ModelMethod(protocol.make_engine(), img))
    res = run_targets(model, lab, ids, protocol.make_robot(), clicks)
    curves = np.array([c + [c[-1]] * (clicks - len(c)) for c in res["curves"]])
    mean = curves.mean(0)
    out = {
        "targets": len(ids),
        "dice": [round(float(v), 4) for v in mean],
        "violations": int(np.sum(np.diff(mean) < 0)),
        "largest_drop": round(float(max(0.0, -np.diff(mean).min())), 4),
        "area_ratio_median": round(float(np.median(np.array(model.areas) / np.array(true_area))), 3),
        "noc@0.85": round(float(summarise(res["curves"], ks=(1,))["noc@0.85"]), 3),
        "latency_p50_ms": round(float(np.percentile(res["latency_ms"], 50)), 2),
    }
    for name in ("watershed", "random_walker"):
        r = run_targets(ClickSeeded(img, name), lab, ids, protocol.make_robot(), 1)
        out[f"{name}@1"] = round(float(np.mean([c[0] for c in r["curves"]])), 4)
    return out


def table(results: dict[str, dict[str, dict]]) -> str:
    """One row per (set, weights): Dice@1..10, violations, area ratio, baselines, NoC@0.85."""
    head = (
        f"{'set':<16} {'weights':<10} "
        + " ".join(f"D@{k:<4}" for k in range(1, 11))
        + "  viol  drop   area1  ws@1  rw@1  NoC85"
    )
    lines = [head, "-" * len(head)]
    sets = list(dict.fromkeys(s for r in results.values() for s in r))
    for s in sets:
        for name, r in results.items():
            if s not in r:
                continue
            v = r[s]
            lines.append(
                f"{s:<16} {name:<10} "
                + " ".join(f"{d:.3f}" for d in v["dice"])
                + f"  {v['violations']:>4} {v['largest_drop']:.3f}  {v['area_ratio_median']:>5.2f}"
                + f" {v['watershed@1']:.3f} {v['random_walker@1']:.3f}  {v['noc@0.85']:.2f}"
            )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None, help="weights file (default: the shipped ones)")
    p.add_argument("--name", default="shipped")
    p.add_argument("--sets", default="runs/val", help="folder of validation sets (make_val.sh)")
    p.add_argument("--only", default=None, help="comma-separated subset of the sets")
    p.add_argument("--nuclei", action="store_true", help="the bundled nuclei image only (check once, at the end)")
    p.add_argument("--out", default="runs/base-model/results")
    p.add_argument("--table", nargs="+", default=None, help="print saved results files side by side")
    args = p.parse_args()
    if args.table:
        print(table({Path(f).stem: json.loads(Path(f).read_text()) for f in args.table}))
        return
    import torch

    torch.set_num_threads(1)
    if args.nuclei:
        pairs = {"nuclei": NUCLEI}
    else:
        folders = sorted(d for d in Path(args.sets).iterdir() if (d / "labels.tif").is_file())
        only = set(args.only.split(",")) if args.only else None
        pairs = {d.name: (d / "image.tif", d / "labels.tif") for d in folders if not only or d.name in only}
    dest = Path(args.out) / f"{args.name}{'_nuclei' if args.nuclei else ''}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(dest.read_text()) if dest.is_file() else {}
    for name, (img, lab) in pairs.items():
        results[name] = bench_set(str(img), str(lab), args.weights)
        dest.write_text(json.dumps(results, indent=1))
        print(name, results[name], flush=True)
    print(table({args.name: results}))


if __name__ == "__main__":
    main()
