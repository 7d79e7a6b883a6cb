"""In a session whose earlier objects are accepted, the first window comes from their median size;
a session's first object sizes it from the blob under the click. Per target (centre click; the
truth accepted after it, so that the median is the objects' own), the answer on each window:
Dice, the model's sureness (mean logit over the answer), outline contrast, area.

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/first-answer/two_windows.py OUT.json
"""

import glob
import json
import sys

import numpy as np
import tifffile

from napari_oaims import Engine, answer, session_windows
from napari_oaims.core import guidance, regions
from napari_oaims.core.prompts import Prompt
from napari_oaims.evaluation.metrics import dice
from napari_oaims.simulate.clicks import click_in_region

eng = Engine.pretrained(device="cpu", adaptation="none")
sets = ["runs/suites/%s" % k for k in ("cavities", "lesions", "uniform", "neighbours", "organs")]
sets += sorted(glob.glob("runs/val/*")) + ["nuclei"]
out = {}
for d in sets:
    if d == "nuclei":
        img = tifffile.imread("src/napari_oaims/data/nuclei2d_image.tif")
        lab = tifffile.imread("src/napari_oaims/data/nuclei2d_labels.tif")
    else:
        img, lab = tifffile.imread(d + "/image.tif"), tifffile.imread(d + "/labels.tif")
    s = eng.session(img)
    rows = []
    for i in [int(i) for i in np.unique(lab) if i][:30]:
        t = lab == i
        yx = np.array([click_in_region(t)], float)
        p = [Prompt("click", True, yx)]
        row = {"id": i, "diameter": float(2 * np.sqrt(t.sum() / np.pi))}
        sizes = {"median": session_windows.object_window(s)}
        sizes["blob"] = min(guidance.AUTO_MAX_WINDOW, guidance.window_for_diameter(
            guidance.diameter_at(lambda w: s.source.crop((), w), yx, s.source.plane_shape)))
        for name, size in sizes.items():
            if size is None:
                continue
            w = guidance.choose_window(yx, s.source.plane_shape, min_size=size)
            lg = s.predict_window((), p, w)
            inside, where = answer.window_answer(s, (), p, w, lg)
            full = np.zeros(t.shape, bool)
            full[where] = inside
            ys, xs, wy, wx = w.clip(s.source.plane_shape)
            row[name] = {
                "size": w.size,
                "dice": dice(full, t),
                "sure": regions.sureness(lg[wy, wx], inside),
                "contrast": regions.outline_contrast(s.source.crop((), w)[wy, wx], inside),
                "area": int(inside.sum()),
            }
        rows.append(row)
        s.set_mask(t)
        s.accept()
    out[d] = rows
    both = [r for r in rows if "median" in r]
    m = np.mean([r["median"]["dice"] for r in both])
    b = np.mean([r["blob"]["dice"] for r in both])
    best = np.mean([max(r["median"]["dice"], r["blob"]["dice"]) for r in both])
    print(f"{d:28s} median {m:.3f} blob {b:.3f} best-of-two {best:.3f}", flush=True)
json.dump(out, open(sys.argv[1], "w"))
