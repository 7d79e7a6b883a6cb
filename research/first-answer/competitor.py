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

import sys

import numpy as np
from scipy import ndimage as ndi

from napari_oaims import answer
from napari_oaims.cli import main
from napari_oaims.core import regions
from napari_oaims.core.prompts import Prompt

DEPTH = float(__import__("os").environ.get("DEPTH", "0.3"))
COUNT = {"first": 0, "asked": 0, "cut": 0, "same": 0}


def patch(low: float, min_share: float) -> None:
    original = answer.edge_answer

    def edge_answer(session, key, prompts, window, logits, inside, where, shown=None, flat=False):
        if answer.is_first_answer(session, prompts) and not flat and inside.any():
            COUNT["first"] += 1
            ys, xs = where
            _, _, wy, wx = window.clip(session.source.plane_shape)
            own = logits[wy, wx]
            weak = inside & (own < low)
            depth = ndi.distance_transform_edt(weak)
            radius = np.sqrt(inside.sum() / np.pi)
            if weak.sum() >= min_share * inside.sum() and depth.max() >= DEPTH * radius:
                seed = np.array(np.unravel_index(int(np.argmax(depth)), depth.shape)) + [ys.start, xs.start]
                COUNT["asked"] += 1
                other = session.predict_window(key, [Prompt("click", True, seed[None].astype(float))], window)[wy, wx]
                click = (answer.positive_points(prompts)[0] - [ys.start, xs.start]).astype(int)
                if other[click[0], click[1]] > low:
                    COUNT["same"] += 1
                else:
                    drop = weak & (other > low) & (other > own)
                    if drop.any():
                        kept = regions.keep_prompted(
                            inside & ~drop, answer.positive_points(prompts) - [ys.start, xs.start]
                        )
                        if kept.any():
                            COUNT["cut"] += 1
                            inside = kept
        return original(session, key, prompts, window, logits, inside, where, shown, flat)

    answer.edge_answer = edge_answer


if __name__ == "__main__":
    low, min_share = float(sys.argv[1]), float(sys.argv[2])
    args = sys.argv[sys.argv.index("--") + 1 :]
    if low > 0:
        patch(low, min_share)
    code = main(args)
    print("first answers {first}, asked {asked}, same object {same}, cut {cut}".format(**COUNT))
    sys.exit(code)
