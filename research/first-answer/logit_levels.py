"""How the first click's Dice would change if the model's mask were cut at a higher logit:
``logit > a * peak`` (peak: the largest logit in the window) for a few shares ``a``, with the
prompted-components rule after it. One fresh session per target, the click of
``click_in_region``; an analysis of the shipped model's logits, not a rule of the package.

    PYTHONPATH=SRC python research/first-answer/logit_levels.py NAME=IMAGE,LABELS ...
"""

import sys

import numpy as np

from napari_oaims import Engine, answer
from napari_oaims.core import regions
from napari_oaims.evaluation.common import load_pair, target_ids
from napari_oaims.evaluation.metrics import dice
from napari_oaims.simulate.clicks import click_in_region

SHARES = (0.0, 0.1, 0.2, 0.3, 0.4)
seen = []
plain = answer.window_answer


def window_answer(session, key, prompts, window, logits):
    out = plain(session, key, prompts, window, logits)
    seen.append((window, logits, out[1], answer.positive_points(prompts)))
    return out


answer.window_answer = window_answer
eng = Engine.pretrained(device="cpu")
for spec in sys.argv[1:]:
    name, paths = spec.split("=", 1)
    img, lab = load_pair(*paths.split(",")[:2])
    rows = []
    for tid in target_ids(lab):
        t = lab == tid
        y, x = click_in_region(t)
        seen.clear()
        s = eng.session(img)
        s.click((y, x))
        window, logits, (ys, xs), pts = seen[-1]
        _, _, wy, wx = window.clip(s.source.plane_shape)
        lg = logits[wy, wx]
        seeds = pts - np.array([ys.start, xs.start])
        row = []
        for a in SHARES:
            m = np.zeros_like(t)
            m[ys, xs] = regions.keep_prompted(lg > max(0.0, a * float(lg.max())), seeds)
            row.append(dice(m, t))
        rows.append(row)
    mean = np.mean(rows, 0)
    print(name, len(rows), " ".join(f"{a}:{v:.4f}" for a, v in zip(SHARES, mean)), flush=True)
