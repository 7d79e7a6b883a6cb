"""The plugin's 3D sample, one click on each nucleus's middle slice and one propagation, with and
without ``cross_from_larger``: the masks must be the same (one anchor, no gap).

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/propagation/sample_gap_check.py
"""

import numpy as np
import torch

from napari_oaims import Engine
from napari_oaims.evaluation.metrics import dice
from napari_oaims.plugin.sample_data import volume_3d
from napari_oaims.simulate.clicks import click_in_region

torch.set_num_threads(1)

(image, _, _), (labels, _, _) = volume_3d()
eng = Engine.pretrained(device="cpu")
for lid in [int(v) for v in np.unique(labels) if v]:
    t = labels == lid
    z = int(np.argmax(t.sum((1, 2))))
    out = []
    for flag in (True, False):
        s = eng.session(image, plane_axes=(1, 2))
        s.click((z, *click_in_region(t[z])))
        out.append(s.propagate(axis=0, cross_from_larger=flag).mask)
    print(lid, round(dice(out[0], t), 3), "same as without the rule:", np.array_equal(*out))
