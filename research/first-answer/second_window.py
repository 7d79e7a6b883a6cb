"""Is the second-click dip the window or the network? Replays the click benchmark with variants
of the session's rule for windows after the first and for merging a correction's answer.

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/first-answer/second_window.py \
        --variants none,held,depth4 --sets nuclei,runs/val/halo,... [--weights W] [--out F.json]

Variants (each patches one session method for this process only; run it on the package without
``correct_near.patch``):

* ``none``: the package as it is (named ``shipped`` in the first result files);
* ``held``: every window after an object's first is its first window, as long as the prompts
  and the mask so far lie inside it (else the package's rule);
* ``local``: after a negative click, the new answer replaces the old mask only within a disc
  around the click (radius: half the equivalent diameter of the old mask), the old mask stays
  elsewhere (the idea of a focus region: Chen et al., "FocalClick: Towards Practical
  Interactive Image Segmentation", CVPR 2022, section 3.3);
* ``local_all``: the same after every correction click, positive or negative;
* ``depthK``: the rule of ``correct_near.patch`` (:func:`correct_near`) with reach K: after
  a correction click (negative inside the mask, positive outside it), the new answer replaces the
  old mask only within K times the click's distance to the other side of the old mask (the
  nearest pixel outside it for a negative click, inside it for a positive one): a click on the
  mask's rim corrects the rim near it, a click deep in a wrong region corrects all of it;
  ``depthKneg``: the same for negative clicks only; ``depthKfirst``: for an object's second
  click only (its first correction); ``depthKrim``: only for clicks at most ``RIM_DEPTH`` px
  deep (on a rim).

``--fresh``: a new session per target, so no object's first window depends on the objects
accepted before it and Dice@1 is the same for every variant (the benchmark accepts each target,
and later first windows follow the accepted sizes, so a rule that changes final masks also
moves later targets' Dice@1 by a few thousandths).

Per set: mean Dice after k clicks (robot ``center``, 10 clicks) and, on targets whose second
click is negative, the mean Dice@1 and Dice@2 and the mean area ratio after click 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_oaims.evaluation.common import ModelMethod, Protocol, load_pair, run_targets, target_ids
from napari_oaims.session import Session

NUCLEI = ("src/napari_oaims/data/nuclei2d_image.tif", "src/napari_oaims/data/nuclei2d_labels.tif")
SHIPPED = {"_choose_window": Session._choose_window, "_predict": Session._predict}


def _held_choose_window(self, key, prompts, mask_bbox=None, first=False):
    window = SHIPPED["_choose_window"](self, key, prompts, mask_bbox, first)
    held = getattr(self, "_held", {})
    self._held = held
    if window is None:
        return window
    if first or mask_bbox is None:
        held[(self.object_id, key)] = window
        return window
    w = held.get((self.object_id, key))
    if w is None:
        return window
    pts = [p.points for p in prompts if p.kind in ("click", "scribble")]
    pts = np.concatenate(pts) if pts else np.zeros((0, 2))
    y0, x0, y1, x1 = mask_bbox
    pts = np.concatenate([pts, [[y0, x0], [y1 - 1, x1 - 1]]])
    margin = 2
    inside = (pts >= [w.y0 + margin, w.x0 + margin]).all() and (
        pts < [w.y0 + w.size - margin, w.x0 + w.size - margin]
    ).all()
    return w if inside else window


def _local_predict(negative_only: bool):
    def predict(self, key, prompts, window, st, logits=None):
        region, values, info = SHIPPED["_predict"](self, key, prompts, window, st, logits)
        last = prompts[-1]
        if (
            region is None
            or st.mask is None
            or last.kind != "click"
            or (negative_only and last.positive)
            or len(prompts) < 2
        ):
            return region, values, info
        old = st.mask[region]
        area = int(st.mask.sum())
        if area == 0:
            return region, values, info
        radius = 0.5 * np.sqrt(4 * area / np.pi)
        cy, cx = last.points[0]
        yy, xx = np.mgrid[region[0], region[1]]
        near = np.hypot(yy - cy, xx - cx) <= radius
        return region, np.where(near, values, old), info

    return predict


VARIANTS = {
    "none": {},
    "held": {"_choose_window": _held_choose_window},
    "local": {"_predict": _local_predict(True)},
    "local_all": {"_predict": _local_predict(False)},
}
#: ``depthKrim``: the rule only for clicks at most this deep (px).
RIM_DEPTH = 2.0
#: The number of the click being answered (for ``depthKfirst``).
CLICK = {"n": 0}


def _depth(before: np.ndarray, prompt, offset) -> float | None:
    """The click's distance to the other side of ``before`` (None: not a correction click)."""
    if prompt.kind != "click" or not prompt.corrected or before is None or not before.any():
        return None
    y, x = (int(v) - o for v, o in zip(prompt.points[0], offset))
    if not (0 <= y < before.shape[0] and 0 <= x < before.shape[1]):
        return None
    side = np.pad(before if not prompt.positive else ~before, 1, constant_values=bool(prompt.positive))
    return float(ndimage.distance_transform_edt(side)[y + 1, x + 1])


def correct_near(before, after, prompt, offset, reach: float) -> np.ndarray:
    """``after`` within ``reach`` times the click's depth of it, ``before`` elsewhere (the rule
    of ``correct_near.patch``, which puts it in ``napari_oaims.answer``)."""
    depth = _depth(before, prompt, offset)
    if depth is None:
        return after
    y, x = (int(v) - o for v, o in zip(prompt.points[0], offset))
    yy, xx = np.ogrid[: after.shape[0], : after.shape[1]]
    return np.where((yy - y) ** 2 + (xx - x) ** 2 <= (reach * depth) ** 2, after, before)


def _depth_predict(variant: str):
    """A ``Session._predict`` that applies :func:`correct_near` as ``variant`` says."""
    reach = float(variant[5:].removesuffix("neg").removesuffix("first").removesuffix("rim"))

    def predict(self, key, prompts, window, st, logits=None):
        region, values, info = SHIPPED["_predict"](self, key, prompts, window, st, logits)
        if region is None or st.mask is None:
            return region, values, info
        prompt, offset = prompts[-1], (region[0].start, region[1].start)
        before = st.mask[region]
        if variant.endswith("neg") and prompt.positive:
            return region, values, info
        if variant.endswith("first") and CLICK["n"] != 2:
            return region, values, info
        if variant.endswith("rim") and (_depth(before, prompt, offset) or 0.0) > RIM_DEPTH:
            return region, values, info
        return region, correct_near(before, values, prompt, offset, reach), info

    return predict


def run(variant: str, image: str, labels: str, weights: str | None, clicks: int = 10, fresh: bool = False) -> dict:
    for name, fn in SHIPPED.items():
        patch = _depth_predict(variant) if variant.startswith("depth") and name == "_predict" else None
        setattr(Session, name, patch or VARIANTS.get(variant, {}).get(name, fn))
    protocol = Protocol(clicks=clicks, weights=weights, device="cpu")
    img, lab = load_pair(image, labels)
    ids = target_ids(lab)
    method = ModelMethod(protocol.make_engine(), img)
    robot = protocol.make_robot()
    signs = []

    class Recorder:  # the sign of each target's second click and the area after it
        def start(self):
            self.n = 0
            if fresh:  # no accepted objects: every variant's first windows are the same
                method.session = method.engine.session(img)
            method.start()

        def click(self, c):
            self.n += 1
            CLICK["n"] = self.n
            mask = method.click(c)
            if self.n == 2:
                signs.append((bool(c.positive), int(mask.sum())))
            return mask

        def finish(self, mask):
            if self.n < 2:
                signs.append((None, 0))
            method.finish(mask)

    res = run_targets(Recorder(), lab, ids, robot, clicks)
    curves = np.array([c + [c[-1]] * (clicks - len(c)) for c in res["curves"]])
    neg = np.array([s[0] is False for s in signs])
    true_area = np.array([np.count_nonzero(lab == i) for i in ids])
    out = {
        "targets": len(ids),
        "dice": [round(float(v), 4) for v in curves.mean(0)],
        "negative_second": int(neg.sum()),
    }
    if neg.any():
        out["neg_dice1"] = round(float(curves[neg, 0].mean()), 4)
        out["neg_dice2"] = round(float(curves[neg, 1].mean()), 4)
        out["neg_area2"] = round(float(np.median(np.array([s[1] for s in signs])[neg] / true_area[neg])), 3)
    for name, fn in SHIPPED.items():
        setattr(Session, name, fn)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="none,held,depth4")
    p.add_argument("--sets", default="nuclei", help="comma-separated: nuclei or folders with image.tif/labels.tif")
    p.add_argument("--weights", default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--fresh", action="store_true", help="a new session per target (first clicks identical)")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    results = json.loads(Path(args.out).read_text()) if args.out and Path(args.out).is_file() else {}
    for s in args.sets.split(","):
        pair = NUCLEI if s == "nuclei" else (f"{s}/image.tif", f"{s}/labels.tif")
        for v in args.variants.split(","):
            r = run(v, *pair, args.weights, fresh=args.fresh)
            results[f"{Path(s).name}/{v}"] = r
            d = r["dice"]
            print(
                f"{Path(s).name:<16} {v:<10} D@1 {d[0]:.3f} D@2 {d[1]:.3f} D@3 {d[2]:.3f} D@5 {d[4]:.3f} "
                f"D@10 {d[9]:.3f}  neg2 {r['negative_second']:>3} {r.get('neg_dice1', 0):.3f}->"
                f"{r.get('neg_dice2', 0):.3f} area2 {r.get('neg_area2', 0):.2f}",
                flush=True,
            )
            if args.out:
                Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
