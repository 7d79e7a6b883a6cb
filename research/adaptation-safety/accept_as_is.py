"""Accept-as-is robot on the shipped nuclei: one centre click, accept.
Prints mean Dice (all / last 10) and mask/true area (last 10) per adapter spec."""

import sys, json, random
import numpy as np, torch

torch.set_num_threads(1)
from napari_oaims import Engine, sample_nuclei
from scipy import ndimage

image, labels = sample_nuclei()
ids = [int(i) for i in np.unique(labels) if i]


def centre(lid):
    m = labels == lid
    d = ndimage.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
    return tuple(int(v) for v in np.unravel_index(np.argmax(d), d.shape))


def run(spec, seed, n=30):
    order = ids[:]
    random.Random(seed).shuffle(order)
    order = order[:n]
    e = Engine.pretrained(device="cpu", adaptation=spec)
    s = e.session(image)
    rows = []
    for lid in order:
        m = s.click(centre(lid)).mask
        t = labels == lid
        dice = 2 * (m & t).sum() / (m.sum() + t.sum())
        rows.append((float(dice), float(m.sum() / t.sum())))
        if m.any():
            s.accept()
        else:
            s.clear()
    d = np.array(rows)
    return {
        "spec": spec,
        "seed": seed,
        "dice": round(d[:, 0].mean(), 3),
        "dice_last10": round(d[-10:, 0].mean(), 3),
        "area_last10": round(float(np.median(d[-10:, 1])), 2),
        "updates": e.updates,
    }


for spec in sys.argv[2:]:
    print(json.dumps(run(spec, int(sys.argv[1]))), flush=True)
