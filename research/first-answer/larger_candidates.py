"""For each first click (fresh session per target) whose first answer's outline contrast is below
TRIGGER: the answers on the first window and on three larger windows climbing to the whole plane
(plane masks as boxes and crops), their outline contrast, whether the window cuts them, Dice.
``larger_rules.py`` then evaluates acceptance rules offline on the pickle.

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/first-answer/larger_candidates.py OUT.pkl TRIGGER
    python research/first-answer/larger_rules.py OUT.pkl
"""
import glob, pickle, sys
import numpy as np, tifffile
from napari_oaims import Engine, answer
from napari_oaims.core import regions, guidance
from napari_oaims.simulate.clicks import click_in_region
from napari_oaims.evaluation.metrics import dice
eng = Engine.pretrained(device="cpu")
TRIGGER = float(sys.argv[2])
rec = []
def spy(session, key, prompts, window, logits):
    plane_shape = session.source.plane_shape
    def one(w, lg):
        inside, where = answer.window_answer(session, key, prompts, w, lg)
        ys, xs, wy, wx = w.clip(plane_shape)
        cut = guidance.grown_window(w, inside, plane_shape) is not None
        c = regions.outline_contrast(session.source.crop(key, w)[wy, wx], inside)
        full = np.zeros(plane_shape, bool); full[where] = inside
        return dict(size=w.size, contrast=c, cut=cut, mask=full)
    cands = [one(window, logits)]
    if cands[0]["contrast"] < TRIGGER or cands[0]["cut"]:
        pts = answer.positive_points(prompts)
        whole = 1.1 * max(plane_shape)
        step = float(np.clip((whole / window.size) ** (1 / 3), 2.0, 4.0))
        for k in range(1, 4):
            w = guidance.choose_window(pts, plane_shape, min_size=int(np.ceil(window.size * step**k)))
            if w.size > cands[-1]["size"]:
                cands.append(one(w, session.predict_window(key, prompts, w)))
    rec.append(cands)
    return window, logits
answer.enlarge = spy
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
        rec.clear()
        s = eng.session(img)
        s.click(click_in_region(t))
        cands = rec[0] if rec else []
        if len(cands) > 1:
            for c in cands:
                c["dice"] = dice(c["mask"], t)
                ys, xs = np.nonzero(c["mask"]) if c["mask"].any() else (np.array([0]), np.array([0]))
                c["box"] = (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
                c["crop"] = c["mask"][c["box"][0]:c["box"][2], c["box"][1]:c["box"][3]]
                del c["mask"]
        rows.append((int(i), cands))
    out[d] = rows
    print(d, sum(len(c) > 1 for _, c in rows), flush=True)
pickle.dump(out, open(sys.argv[1], "wb"))
