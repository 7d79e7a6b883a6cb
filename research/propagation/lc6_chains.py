"""The chains of one re-propagation of low_contrast_6 (frozen), run by hand after the robot's corrections K
(comma list): each slice's mask from each chain, with its Dice. ``off``: without
``cross_from_larger`` (both chains across a gap, fused by distance).

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/propagation/lc6_chains.py 1,5,6 off
"""

import sys

import numpy as np

from napari_oaims.engine import Engine
from napari_oaims.evaluation.metrics import dice
from napari_oaims.evaluation.propagate import procedural_cases
from napari_oaims.propagate.run import prepare
from napari_oaims.simulate.clicks import click_in_region, largest_error_component

K = [int(v) for v in sys.argv[1].split(",")]
SET = {"cross_from_larger": False} if sys.argv[2:] == ["off"] else {}
cases = {c["name"]: c for c in procedural_cases(3, (28, 96, 96), failures=True)}
case = cases["low_contrast_6"]
image, target = case["image"], case["target"]
s = Engine.pretrained(device="cpu").session(image, plane_axes=(1, 2))
z0 = int(np.argmax(target.sum((1, 2))))
mask = np.zeros(target.shape, bool)
for _ in range(5):
    err = largest_error_component(mask[z0], target[z0])
    mask = s.click((z0, *click_in_region(err[0])), positive=err[1]).mask
    if dice(mask[z0], target[z0]) >= 0.9:
        break
mask = s.propagate(axis=0, method="frozen", **SET).mask


def sd(m, t):
    return 1.0 if not m.any() and not t.any() else round(float(dice(m, t)), 3)


for k in range(1, max(K) + 1):
    wrong = (mask ^ target).sum((1, 2))
    z = int(np.argmax(wrong))
    err = largest_error_component(mask[z], target[z])
    yx = click_in_region(err[0])
    s.click((z, *yx), positive=err[1])
    if k in K:
        carry = prepare(s, 0, "frozen", overrides=SET)
        while (w := carry.walk) is not None:
            w.commit(w.predict())
        shape = s.source.plane_shape
        print(f"--- correction {k}: slice {z} {'pos' if err[1] else 'neg'}; old 3D {dice(mask, target):.4f}")
        for ln in carry.lines:
            for pos, got in sorted(carry.results[ln.line].items()):
                parts = []
                for a, p in got:
                    m = p.threshold().plane(shape)
                    parts.append(f"from {a}: area {m.sum()} dice {sd(m, target[pos])}")
                print(
                    pos,
                    "truth",
                    target[pos].sum(),
                    "old",
                    mask[pos].sum(),
                    sd(mask[pos], target[pos]),
                    "|",
                    "; ".join(parts),
                    "gap" if pos in ln.gaps else "",
                )
    mask = s.propagate(axis=0, method="frozen", **SET).mask
