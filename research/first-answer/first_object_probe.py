"""The first object of a session: one click at the centre of each target, a fresh session per
target, on every first-answer suite, validation set and the bundled nuclei; Dice@1 with
``Session.larger_windows`` off and on, how many first answers the rule checked (a second pass was
made) and how many it changed.

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/first-answer/first_object_probe.py OUT.json
"""
import glob, json, sys
import numpy as np, tifffile
from napari_oaims import Engine
from napari_oaims.core import regions
from napari_oaims.simulate.clicks import click_in_region
from napari_oaims.evaluation.metrics import dice
eng = Engine.pretrained(device="cpu")
seen = []
orig = regions.outline_contrast
def spy(crop, inside):
    c = orig(crop, inside); seen.append(c); return c
regions.outline_contrast = spy
sets = ["runs/suites/%s" % k for k in ("cavities", "lesions", "uniform", "neighbours", "organs")] + sorted(glob.glob("runs/val/*")) + ["nuclei"]
out = {}
for d in sets:
    if d == "nuclei":
        img = tifffile.imread("src/napari_oaims/data/nuclei2d_image.tif"); lab = tifffile.imread("src/napari_oaims/data/nuclei2d_labels.tif")
    else:
        img = tifffile.imread(d + "/image.tif"); lab = tifffile.imread(d + "/labels.tif")
    ids = [i for i in np.unique(lab) if i][:30]
    rows = []
    for i in ids:
        t = lab == i
        yx = click_in_region(t)
        r = {}
        for on in (False, True):
            s = eng.session(img); s.larger_windows = on
            seen.clear()
            s.click(yx)
            r[on] = (dice(s.mask, t), seen[0] if seen else None, len(seen))
        rows.append((int(i), r[False][0], r[True][0], r[True][1], r[True][2]))
    a = np.array([(x[1], x[2]) for x in rows])
    trig = [x for x in rows if x[4] > 1]
    print(f"{d:32s} n={len(rows)} off {a[:,0].mean():.3f} on {a[:,1].mean():.3f} triggered {len(trig)} changed {sum(abs(x[1]-x[2])>1e-6 for x in rows)} worse {sum(x[2] < x[1]-0.01 for x in rows)}", flush=True)
    out[d] = rows
json.dump(out, open(sys.argv[1], "w"))
