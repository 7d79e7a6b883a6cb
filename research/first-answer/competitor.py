"""Tried: a first answer's weakly held part is asked whether it is another object. Patched into
``answer.edge_answer`` (the step after the window's answer) for a scratch run of the CLI; the
package is unchanged.

The rule, on an object's first answer (one positive click): the part of the answer where the
model's logit is below ``LOW`` is the weak part. When it holds at least ``MIN_SHARE`` of the
answer and is a lobe, not a rim (its deepest pixel at least ``DEPTH`` times the answer's
equivalent radius from its edge), a second prediction on the same window asks for the object under the weak part's
deepest pixel (one positive click there: the competitor). Pixels of the weak part where the
competitor's logit is above ``LOW`` and above the answer's own are dropped, and the prompted
component is kept. A competitor that is sure of the first click's pixel too is the same object:
nothing is dropped.

Usage (repository root):
``PYTHONPATH=src python research/first-answer/competitor.py LOW MIN_SHARE -- CLI ARGS`` (LOW 0: off).
"""

from __future__ import annotations

import numpy as np
from first_answer_rule import patch_first_answers, run
from scipy import ndimage as ndi

from napari_oaims import answer
from napari_oaims.core import regions
from napari_oaims.core.prompts import Prompt

DEPTH = float(__import__("os").environ.get("DEPTH", "0.3"))
COUNT = {"first": 0, "asked": 0, "cut": 0, "same": 0}


def patch(low: float, min_share: float) -> None:
    def rule(session, key, prompts, window, logits, inside, where):
        COUNT["first"] += 1
        ys, xs = where
        _, _, wy, wx = window.clip(session.source.plane_shape)
        own = logits[wy, wx]
        weak = inside & (own < low)
        depth = ndi.distance_transform_edt(weak)
        if weak.sum() < min_share * inside.sum() or depth.max() < DEPTH * np.sqrt(inside.sum() / np.pi):
            return inside
        seed = np.array(np.unravel_index(int(np.argmax(depth)), depth.shape)) + [ys.start, xs.start]
        COUNT["asked"] += 1
        other = session.predict_window(key, [Prompt("click", True, seed[None].astype(float))], window)[wy, wx]
        clicks = answer.positive_points(prompts) - [ys.start, xs.start]
        if other[int(clicks[0, 0]), int(clicks[0, 1])] > low:
            COUNT["same"] += 1
            return inside
        kept = regions.keep_prompted(inside & ~(weak & (other > low) & (other > own)), clicks)
        if not kept.any() or kept.sum() == inside.sum():
            return inside
        COUNT["cut"] += 1
        return kept

    patch_first_answers(rule)


if __name__ == "__main__":
    run(patch, COUNT)
