"""Would a logit threshold learnt from the accepted objects give better first answers?

For each target (robot ``center`` first click, standard loop: one session, objects accepted in
turn after 10 clicks), the first answer's logits are kept; offline, the answer at thresholds
``T`` (the kept components that hold the click) is compared with the truth. The rule simulated:
the threshold for an object is the median of the best thresholds of the last 5 accepted objects
(0 before 3 are accepted).

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/first-answer/threshold_evidence.py --sets nuclei,runs/suites/cavities,...
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np

from napari_oaims import answer
from napari_oaims.core import regions
from napari_oaims.evaluation.common import ModelMethod, Protocol, load_pair, run_targets, target_ids

_spec = importlib.util.spec_from_file_location("edge_snap", Path(__file__).with_name("edge_snap.py"))
edge_snap = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(edge_snap)
THRESHOLDS = np.round(np.arange(-4.0, 3.01, 0.5), 2)


def first_logits(image: str, labels: str, max_targets: int) -> tuple[list, np.ndarray, list]:
    """Per target: (region, logits on it, click offset seeds) of its first answer; and the labels."""
    img, lab = load_pair(image, labels)
    ids = target_ids(lab)[:max_targets]
    shipped = answer.window_answer
    kept: dict = {}

    def window_answer(session, key, prompts, window, logits):
        out = shipped(session, key, prompts, window, logits)
        if len(prompts) == 1 and not edge_snap.IN_RESCALE["on"]:
            _, _, wy, wx = window.clip(session.source.plane_shape)
            offset = np.array([out[1][0].start, out[1][1].start])
            kept["now"] = (out[1], logits[wy, wx].copy(), answer.positive_points(prompts) - offset)
        return out

    answer.window_answer, answer.rescale = window_answer, edge_snap._rescale
    protocol = Protocol(clicks=10, device="cpu", edges="never")
    method = ModelMethod(protocol.make_engine(), img)
    firsts = []

    class Keep:
        def start(self):
            kept.pop("now", None)

        def click(self, c):
            return method.click(c)

        def finish(self, mask):
            firsts.append(kept.get("now"))
            method.finish(mask)

    run_targets(Keep(), lab, ids, protocol.make_robot(), 10)
    answer.window_answer, answer.rescale = shipped, edge_snap.SHIPPED_RESCALE
    return firsts, lab, ids


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default="nuclei")
    p.add_argument("--max-targets", type=int, default=30)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    results = {}
    for s in args.sets.split(","):
        pair = edge_snap.NUCLEI if s == "nuclei" else (f"{s}/image.tif", f"{s}/labels.tif")
        firsts, lab, ids = first_logits(*pair, args.max_targets)
        table = []  # per target: Dice at each threshold
        for first, tid in zip(firsts, ids):
            if first is None:
                table.append([np.nan] * len(THRESHOLDS))
                continue
            (ys, xs), logits, seeds = first
            truth = lab == tid
            inner = truth[ys, xs]
            rest = int(truth.sum()) - int(inner.sum())
            row = []
            for t in THRESHOLDS:
                m = regions.keep_prompted(logits > t, seeds)
                row.append(2 * int((m & inner).sum()) / max(1, int(m.sum()) + int(truth.sum())))
            del rest
            table.append(row)
        table = np.array(table)
        best = THRESHOLDS[np.nanargmax(np.nan_to_num(table, nan=-1), axis=1)]
        zero = int(np.flatnonzero(THRESHOLDS == 0)[0])
        learnt = []
        for i in range(len(ids)):
            prev = best[max(0, i - 5) : i]
            t = float(np.median(prev)) if len(prev) >= 3 else 0.0
            k = int(np.argmin(np.abs(THRESHOLDS - t)))
            learnt.append(table[i, k])
        r = {
            "targets": len(ids),
            "dice_t0": round(float(np.nanmean(table[:, zero])), 4),
            "dice_learnt": round(float(np.nanmean(learnt)), 4),
            "dice_oracle": round(float(np.nanmean(np.nanmax(table, axis=1))), 4),
            "best_median": float(np.median(best)),
            "best": [float(b) for b in best],
            "per_threshold": [round(float(v), 4) for v in np.nanmean(table, axis=0)],
        }
        results[Path(s).name] = r
        print(
            f"{Path(s).name:<16} t=0 {r['dice_t0']:.3f}  learnt {r['dice_learnt']:.3f}  oracle {r['dice_oracle']:.3f}"
            f"  best t median {r['best_median']:+.1f}  mean Dice per t: "
            + " ".join(f"{t:+.1f}:{v:.3f}" for t, v in zip(THRESHOLDS, r["per_threshold"]))
        , flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
