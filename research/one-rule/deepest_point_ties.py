"""How often the deepest-point click of propagation moves when its tie-break becomes the one of
the robot user (the first pixel of largest distance in row-major order) instead of
``scipy.ndimage.maximum_position``'s, on the planes of procedural volumes.

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/one-rule/deepest_point_ties.py
"""

import numpy as np
from scipy import ndimage
from napari_oaims.core.clicks import deepest_points
from napari_oaims.training.synth import volume

def old(crop, share):
    crop = np.pad(crop, 1)
    lab, n = ndimage.label(crop)
    if n == 0:
        return np.zeros((0, 2), int)
    sizes = np.bincount(lab.ravel())[1:]
    ids = [i + 1 for i in np.argsort(sizes)[::-1] if sizes[i] >= share * sizes.max()]
    dist = ndimage.distance_transform_edt(crop)
    pts = ndimage.maximum_position(dist, lab, ids)
    return np.array([(y - 1, x - 1) for y, x in pts], int).reshape(-1, 2)

same = diff = 0; shift = []
for seed in range(20):
    img, lab = volume(np.random.default_rng(seed), shape=(8, 96, 96), n_objects=4)
    for oid in np.unique(lab)[1:]:
        for z in range(lab.shape[0]):
            m = lab[z] == oid
            if not m.any():
                continue
            a, b = old(m, 0.3), deepest_points(m, 0.3)
            if a.shape == b.shape and np.array_equal(a, b):
                same += 1
            else:
                diff += 1
                if a.shape == b.shape:
                    shift.append(float(np.abs(a - b).max()))
print(f"planes {same + diff}: same click {same}, different {diff}; largest shift {max(shift) if shift else 0} px, median {np.median(shift) if shift else 0}")
