"""The plugin's 3D sample: slice Dice of the first click's answer when the model's mask is cut at
``logit > a * peak`` (peak: the largest logit in the window), for nuclei 6, 1 and 4 (the deepest
point of each on its fullest slice, as sample3d.py), and pixels in other nuclei.

    PYTHONPATH=src python research/first-answer/logit_levels_sample3d.py
"""

import numpy as np

from napari_oaims import Engine, answer
from napari_oaims.core import regions
from napari_oaims.evaluation.metrics import dice
from napari_oaims.plugin.sample_data import volume_3d

seen = []
plain = answer.window_answer


def window_answer(session, key, prompts, window, logits):
    out = plain(session, key, prompts, window, logits)
    seen.append((window, logits, out[1], answer.positive_points(prompts)))
    return out


answer.window_answer = window_answer
(img, _, _), (lab, _, _) = volume_3d()
eng = Engine.pretrained(device="cpu")
for tid, c in ((6, (17, 35, 50)), (1, (19, 34, 22)), (4, (19, 42, 77))):
    s = eng.session(img, plane_axes=(1, 2))
    s.click(c)
    window, logits, (ys, xs), pts = seen[-1]
    _, _, wy, wx = window.clip(s.source.plane_shape)
    lg = logits[wy, wx]
    t = lab[c[0]] == tid
    row = []
    for a in (0.0, 0.1, 0.2, 0.3, 0.4):
        m = np.zeros_like(t)
        m[ys, xs] = regions.keep_prompted(lg > max(0.0, a * float(lg.max())), pts - np.array([ys.start, xs.start]))
        row.append(f"{a}: {dice(m, t):.3f} other {int((m & (lab[c[0]] > 0) & ~t).sum())}")
    print(tid, " | ".join(row))
