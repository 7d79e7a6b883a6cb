"""The ``through`` rule on the failure volumes of seeds 0 and 1 from an anchor set to the truth
(the fullest slice, ``Session.set_mask``), one frozen propagation with the rule off and on: 3D
Dice, the extent along z, voxels spilled and missed.

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/propagation/through_probe.py [frozen|ema]
"""
import sys, numpy as np
from napari_oaims import Engine
from napari_oaims.evaluation.propagate import procedural_cases
from napari_oaims.evaluation.metrics import dice
eng = Engine.pretrained(device="cpu")
method = sys.argv[1] if len(sys.argv) > 1 else "frozen"
for seed in (0, 1):
    for c in procedural_cases(3, (28, 96, 96), seed, failures=True):
        img, t = c["image"], c["target"]
        z0 = int(np.argmax(t.sum((1, 2))))
        out = []
        for th in (0.0, 0.5):
            s = eng.session(img, plane_axes=(1, 2))
            s.set_mask(t[z0], plane=(z0,))
            m = s.propagate(axis=0, method=method, settings={"through": th}).mask
            zs = np.flatnonzero(m.any((1,2)))
            out.append(f"{dice(m,t):.3f} z{zs.min()}-{zs.max()} spill {(m&~t).sum():5d} miss {(t&~m).sum():4d}")
        tz = np.flatnonzero(t.any((1,2)))
        print(f"s{seed} {c['name']:15s} truth z{tz.min()}-{tz.max()} | off {out[0]} | on {out[1]}", flush=True)
