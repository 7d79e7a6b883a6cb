"""First click of fresh sessions on every set with estimate_diameter variants (run from the
repository root): VARIANT=none (the package as it is) or first:T (the smallest peak over scales
that is at least T x the strongest). PYTHONPATH=src OMP_NUM_THREADS=1 VARIANT=first:0.7 python ..."""
import glob, os, sys
import numpy as np, tifffile
from napari_oaims import Engine
from napari_oaims.core import guidance
from napari_oaims.simulate.clicks import click_in_region
from napari_oaims.evaluation.metrics import dice
orig = guidance.estimate_diameter
V = os.environ.get("VARIANT", "none")
def variant(patch, sigmas=guidance.DIAMETER_SIGMAS, peak_share=None):  # the package's own share is ignored
    patch = np.asarray(patch, dtype=np.float64)
    c = patch.shape[0] // 2
    resp = []
    for sigma in sigmas:
        h = int(4 * sigma) + 1
        yy, xx = np.mgrid[-h : h + 1, -h : h + 1]
        r2 = (yy * yy + xx * xx) / (sigma * sigma)
        k = (r2 - 2.0) * np.exp(-r2 / 2.0); k -= k.mean()
        resp.append(abs(float(np.sum(k * patch[c - h : c + h + 1, c - h : c + h + 1]))) / (2 * np.pi * sigma * sigma))
    resp = np.array(resp)
    T = float(V.split(":")[1])
    top = resp.max()
    for i in range(len(resp)):
        left = resp[i - 1] if i > 0 else -1
        right = resp[i + 1] if i + 1 < len(resp) else -1
        if resp[i] >= left and resp[i] >= right and resp[i] >= T * top:
            return 2.0 * np.sqrt(2.0) * float(sigmas[i])
    return 2.0 * np.sqrt(2.0) * float(sigmas[int(np.argmax(resp))])
if V != "none":
    guidance.estimate_diameter = variant
eng = Engine.pretrained(device="cpu", adaptation="none")
sets = ["runs/suites/%s" % k for k in ("cavities", "lesions", "uniform", "neighbours", "organs")] + sorted(glob.glob("runs/val/*")) + ["nuclei"]
res = []
for d in sets:
    if d == "nuclei":
        img = tifffile.imread("src/napari_oaims/data/nuclei2d_image.tif"); lab = tifffile.imread("src/napari_oaims/data/nuclei2d_labels.tif")
    else:
        img = tifffile.imread(d + "/image.tif"); lab = tifffile.imread(d + "/labels.tif")
    ds = []
    for i in [i for i in np.unique(lab) if i][:30]:
        t = lab == i
        s = eng.session(img)
        s.click(click_in_region(t))
        ds.append(dice(s.mask, t))
    res.append(np.mean(ds))
print(V.ljust(10), " ".join(f"{v:.3f}" for v in res), f" mean {np.mean(res):.3f}", flush=True)
