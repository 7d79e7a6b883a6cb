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


for spec in sys.argv[2:]:
    order = ids[:]
    random.Random(int(sys.argv[1])).shuffle(order)
    order = order[:30]
    e = Engine.pretrained(device="cpu", adaptation=spec)
    s = e.session(image)
    rows = []
    for lid in order:
        m = s.click(centre(lid)).mask
        t = labels == lid
        rows.append((2 * (m & t).sum() / (m.sum() + t.sum()), m.sum() / t.sum()))
        s.accept() if m.any() else s.clear()
    d = np.array(rows)
    print(
        json.dumps(
            {
                "spec": spec,
                "seed": int(sys.argv[1]),
                "dice": round(d[:, 0].mean(), 3),
                "dice_last10": round(d[-10:, 0].mean(), 3),
                "area_last10": round(float(np.median(d[-10:, 1])), 2),
                "updates": e.updates,
            }
        )
    )
