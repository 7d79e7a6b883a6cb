"""What stage 2 of PI learns from an uncorrected accept: the clicks it generates (old API)."""

import sys, json, random
import numpy as np, torch

torch.set_num_threads(1)
from napari_oaims import Engine, sample_nuclei
from napari_oaims.adapt import oaims as mod
from scipy import ndimage

image, labels = sample_nuclei()
ids = [int(i) for i in np.unique(labels) if i]


def centre(lid):
    m = labels == lid
    d = ndimage.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
    return tuple(int(v) for v in np.unravel_index(np.argmax(d), d.shape))


log = []
orig = mod.correction_clicks


def spy(p1, target, n, mode="center"):
    cs = orig(p1, target, n, mode=mode)
    err = p1 != target
    log.append(
        {
            "err_px": int(err.sum()),
            "target_px": int(target.sum()),
            "p1_px": int(p1.sum()),
            "clicks": len(cs),
            "neg": sum(not c.positive for c in cs),
        }
    )
    return cs


mod.correction_clicks = spy
order = ids[:]
random.Random(int(sys.argv[1])).shuffle(order)
e = Engine.pretrained(device="cpu", adaptation=sys.argv[2])
s = e.session(image)
for lid in order[:30]:
    m = s.click(centre(lid)).mask
    s.accept() if m.any() else s.clear()
a = log
print(
    json.dumps(
        {
            "objects": len(a),
            "mean_err_px": np.mean([x["err_px"] for x in a]),
            "mean_target_px": np.mean([x["target_px"] for x in a]),
            "share_err": float(np.mean([x["err_px"] / max(x["target_px"], 1) for x in a])),
            "clicks_per_object": np.mean([x["clicks"] for x in a]),
            "neg_share": sum(x["neg"] for x in a) / max(sum(x["clicks"] for x in a), 1),
            "p1_over_target_first5": [round(x["p1_px"] / max(x["target_px"], 1), 2) for x in a[:5]],
            "last5": [round(x["p1_px"] / max(x["target_px"], 1), 2) for x in a[-5:]],
        }
    )
)
