"""The plugin's 3D sample (``plugin.sample_data.volume_3d``): one click per nucleus, then
*Propagate through stack* (frozen), through ``Session``; slice and 3D Dice and voxels taken from
other nuclei. Two clicks per nucleus, each in a fresh session: ``deep`` at the deepest point of
the nucleus on its fullest slice, ``mid`` at ``click_in_region`` on its middle slice.

    PYTHONPATH=SRC python research/first-answer/sample3d.py [OUT.json]
"""

import json
import sys

import numpy as np
import torch
from scipy import ndimage as ndi

from napari_oaims import Engine
from napari_oaims.evaluation.metrics import dice
from napari_oaims.plugin.sample_data import volume_3d
from napari_oaims.simulate.clicks import click_in_region

torch.set_num_threads(1)
(img, _, _), (lab, _, _) = volume_3d()
eng = Engine.pretrained(device="cpu")
out = {}
for tid in range(1, lab.max() + 1):
    t = lab == tid
    zs = np.flatnonzero(t.any((1, 2)))
    zf = int(zs[np.argmax([t[z].sum() for z in zs])])
    d = ndi.distance_transform_edt(t[zf])
    deep = (zf, *np.unravel_index(np.argmax(d), d.shape))
    zm = int((zs[0] + zs[-1]) // 2)
    mid = (zm, *click_in_region(t[zm]))
    for name, c in (("deep", deep), ("mid", mid)):
        s = eng.session(img, plane_axes=(1, 2))
        s.click(tuple(int(v) for v in c))
        sd = dice(s.plane_mask((c[0],)), t[c[0]])
        m = s.propagate(axis=0, method="frozen").mask
        other = int((m & (lab > 0) & ~t).sum())
        out[f"{tid}_{name}"] = {"slice": round(float(sd), 3), "3d": round(float(dice(m, t)), 3), "other": other}
        print(tid, name, c, f"slice {sd:.3f} 3d {dice(m, t):.3f} other {other} voxels {t.sum()}", flush=True)
if len(sys.argv) > 1:
    with open(sys.argv[1], "w") as f:
        json.dump(out, f, indent=1)
