"""Negative clicks carried along a chain (tried for the walls of issue 36): each step of the
model's chains also gets, as negative clicks, the negative clicks of the line's anchors within
``--reach`` slices of the slice it predicts, except those inside the chain's start anchor's mask.
Runs ``oaims bench propagate`` in this process with the step patched.

    OMP_NUM_THREADS=1 python research/propagation/carried_negatives.py --reach 3 -- \
        --data failures --methods frozen --device cpu --n-per-kind 3 --out OUT
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

import numpy as np

from napari_oaims.cli.main import main as oaims_main
from napari_oaims.core import guidance
from napari_oaims.core.prompts import Prompt
from napari_oaims.propagate import steps
from napari_oaims.propagate.masks import Sparse, deepest_points

run_mod = importlib.import_module("napari_oaims.propagate.run")

#: A negative click is carried only this far (times the side of its anchor's mask) from that mask.
FAR = 0.0


def carried(walk, reach: int) -> np.ndarray:
    """Negative click points (N, 2) of the line's anchors within ``reach`` of the next slice."""
    pos = walk.chain.positions[walk.index]
    own = walk.carry.anchors[walk.akey].sparse
    pts = []
    for p, key in walk.ln.anchors.items():
        if abs(p - pos) > reach:
            continue
        anchor = walk.carry.anchors[key]
        there = np.argwhere(anchor.crop) + np.array(anchor.box[:2]) if anchor.box is not None else np.zeros((0, 2))
        margin = FAR * np.sqrt(len(there)) if len(there) else 0.0
        for prompt in anchor.prompts:
            if prompt.kind == "click" and not prompt.positive:
                for y, x in prompt.points:
                    if own.box is not None and own.in_box((int(y), int(x), int(y) + 1, int(x) + 1))[0, 0] > 0.5:
                        continue
                    if len(there) and np.min(np.hypot(*(there - (y, x)).T)) < margin:
                        continue  # near the object's outline on its own slice: it may be the object nearby
                    pts.append((int(y), int(x)))
    return np.array(pts, float).reshape(-1, 2)


def patch(reach: int) -> None:
    predict = run_mod.Walk.predict

    def walk_predict(self):
        self.carry.ctx._negatives = carried(self, reach) if self.carry.ctx.method in ("ema", "frozen") else None
        return predict(self)

    run_mod.Walk.predict = walk_predict

    def model_step(self, key, prev: Sparse, rng, anchors: list, prev_key=None, cap: bool = False):
        h, w = self.source.plane_shape
        neg = getattr(self, "_negatives", None)
        neg = np.zeros((0, 2)) if neg is None else neg
        if self.settings.warp_prior and prev_key is not None:
            moved = self.warped(key, prev_key, prev)
            prev = moved if moved.box is not None else prev
        pts = deepest_points(prev, self.settings.click_share)
        prompts = [Prompt("click", True, p[None]) for p in pts]
        window = self.session.window(key, prompts, prev.box, min_size=self.settings.min_window)
        passes, led = 0, True
        while True:
            passes += 1
            crop = self.source.crop(key, window)
            ys, xs, wy, wx = window.clip((h, w))
            inside_img = crop[wy, wx]
            if inside_img.size == 0 or float(inside_img.max() - inside_img.min()) < 1e-6:
                return Sparse.empty(), {"passes": passes, "blank": True, "moved": prev}
            prior = guidance.resize_window(prev.window(window) * led, guidance.WORK_SIZE)
            wn = window.to_work(neg).reshape(-1, 2) if len(neg) else np.zeros((0, 2))
            inside = (wn >= 0).all(1) & (wn < guidance.WORK_SIZE).all(1) if len(wn) else np.zeros(0, bool)
            x = guidance.encode(
                guidance.resize_window(crop, guidance.WORK_SIZE),
                window.to_work(pts).reshape(-1, 2),
                wn[inside],
                prior,
            )
            logits = self.predict(x[None])[0]
            pred = guidance.resize_window(logits, window.size)[wy, wx] > 0
            if cap and led and np.count_nonzero(pred) < max(self.settings.min_area_px, prev.area):
                led = False
                continue
            larger = guidance.grown_window(window, pred, (h, w), prev.box, passes)
            if larger is None:
                break
            window = larger
        info: dict[str, Any] = {"passes": passes, "window": [window.y0, window.x0, window.size], "moved": prev}
        if self.teacher is not None:
            self.slices_seen += 1
            if (self.slices_seen - 1) % self.settings.adapt_every == 0 and self.uncertain(logits):
                info.update(self.teacher.adapt(x, logits, rng, anchors))
                logits = self.teacher.predict(x[None])[0]
        prob = guidance.sigmoid(guidance.resize_window(logits, window.size)[wy, wx])
        return Sparse((ys.start, xs.start, ys.stop, xs.stop), prob.astype(np.float32)), info

    steps.Context.model_step = model_step


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--reach", type=int, default=3)
    parser.add_argument("--far", type=float, default=0.0)
    args, rest = parser.parse_known_args()
    FAR = args.far
    patch(args.reach)
    sys.exit(oaims_main(["bench", "propagate", *[r for r in rest if r != "--"]]))
