"""The plugin's 3D sample: slice Dice of one click's answer (deepest point of each nucleus on its
fullest slice) with the automatic first window and with fixed windows, and the model's sureness
(mean logit over the answer) on each.

    PYTHONPATH=src python research/first-answer/window_sizes_sample3d.py
"""

import numpy as np

from napari_oaims import Engine, answer
from napari_oaims.core import guidance, regions
from napari_oaims.core.prompts import Prompt
from napari_oaims.evaluation.metrics import dice
from napari_oaims.plugin.sample_data import volume_3d

(img, _, _), (lab, _, _) = volume_3d()
eng = Engine.pretrained(device="cpu")
clicks = {6: (17, 35, 50), 1: (19, 34, 22), 4: (19, 42, 77), 2: (17, 68, 66), 3: (23, 50, 36), 5: (9, 60, 49)}
for tid, c in clicks.items():
    t = lab[c[0]] == tid
    s = eng.session(img, plane_axes=(1, 2))
    s.click(c)
    row = [f"auto {dice(s.plane_mask((c[0],)), t):.3f} (side {s.events[-1]['extra']['window'][2]})"]
    prompts = [Prompt("click", True, np.array([[c[1], c[2]]], float))]
    for size in (32, 48, 64, 96):
        s = eng.session(img, plane_axes=(1, 2))
        window = guidance.choose_window(prompts[0].points, s.source.plane_shape, min_size=size)
        logits = s.predict_window((c[0],), prompts, window)
        inside, (ys, xs) = answer.window_answer(s, (c[0],), prompts, window, logits)
        m = np.zeros_like(t)
        m[ys, xs] = inside
        _, _, wy, wx = window.clip(s.source.plane_shape)
        row.append(f"{window.size}: {dice(m, t):.3f} sure {regions.sureness(logits[wy, wx], inside):.2f}")
    print(tid, " | ".join(row), flush=True)
