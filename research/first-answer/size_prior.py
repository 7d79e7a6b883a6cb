"""Tried: a first answer far larger than the objects accepted so far is cut at a higher logit
level. Patched into ``answer.edge_answer`` (the step after the window's answer) for a scratch
run of the CLI; the package is unchanged.

The rule: on an object's first answer (one positive click), when at least ``MIN_OBJECTS``
objects were accepted and their diameters agree (coefficient of variation at most ``MAX_CV``),
an answer whose area is over ``RATIO`` times the median accepted area is cut at the lowest
level ``a * peak`` (a = 0.1, 0.2, ... 0.6; peak: the highest logit of the answer) whose prompted
component is at most that big; when no level gets there, the answer stays.

Usage (repository root):
``PYTHONPATH=src python research/first-answer/size_prior.py RATIO MAX_CV -- CLI ARGS`` (RATIO 0: off).
"""

from __future__ import annotations

import numpy as np
from first_answer_rule import patch_first_answers, run

from napari_oaims import answer
from napari_oaims.core import regions

MIN_OBJECTS = 5
LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
COUNT = {"first": 0, "cut": 0}


def patch(ratio: float, max_cv: float) -> None:
    def rule(session, key, prompts, window, logits, inside, where):
        COUNT["first"] += 1
        diam = np.array(list(session.accepted_diameters.values()), float)
        if len(diam) < MIN_OBJECTS or diam.std() > max_cv * diam.mean():
            return inside
        typical = np.pi * (np.median(diam) / 2) ** 2
        if inside.sum() <= ratio * typical:
            return inside
        ys, xs = where
        _, _, wy, wx = window.clip(session.source.plane_shape)
        lg = logits[wy, wx]
        peak = float(lg[inside].max())
        seeds = answer.positive_points(prompts) - [ys.start, xs.start]
        for a in LEVELS:
            cut = regions.keep_prompted((lg > a * peak) & inside, seeds)
            if cut.any() and cut.sum() <= ratio * typical:
                COUNT["cut"] += 1
                return cut
        return inside

    patch_first_answers(rule)


if __name__ == "__main__":
    run(patch, COUNT)
