"""Predict each suite target's first click on a ladder of window sides (32-512 px) in one batch and
save Dice, mask size, border contact and mean logit per side (collect.pkl) for scale_ladder_rules.py:
python scale_ladder_collect.py cavities lesions neighbours uniform halo."""
import sys, tifffile, numpy as np, pickle
from napari_oaims.engine import Engine
from napari_oaims.simulate.robot import Robot
from napari_oaims.evaluation.metrics import dice
from napari_oaims.core import guidance
from napari_oaims.core.prompts import Prompt
from scipy import ndimage
SIZES = [32, 45, 64, 90, 128, 181, 256, 362, 512]
eng = Engine.pretrained(device="cpu")
data = {}
for suite in sys.argv[1:]:
    im = tifffile.imread(f"/tmp/i35/suites/{suite}/image.tif"); lab = tifffile.imread(f"/tmp/i35/suites/{suite}/labels.tif")
    s = eng.session(im); H, W = im.shape
    robot = Robot(strategy="center", seed=0)
    ids = [i for i in np.unique(lab) if i and (lab == i).sum() >= 10][:30]
    rows = []
    for tid in ids:
        t = lab == tid; robot.reset(int(tid)); c = robot.next_click(np.zeros_like(t), t)
        p = Prompt("click", True, np.array([[c.y, c.x]]))
        try:
            log = s._first_window((), p.points)
        except Exception:
            log = None
        wins = [guidance.choose_window(p.points, (H, W), None, min_size=sz) for sz in SIZES]
        x = np.stack([s._encode((), [p], w) for w in wins])
        logits = eng.predict(x)
        out = []
        masks = []
        for w, lg in zip(wins, logits):
            pred = guidance.resize_window(lg, w.size) > 0
            ys, xs, wy, wx = w.clip((H, W)); inside = pred[wy, wx]
            m = np.zeros((H, W), bool); m[ys, xs] = inside
            lab_, n = ndimage.label(m)
            mc = (lab_ == lab_[c.y, c.x]) if m[c.y, c.x] else np.zeros_like(m)
            # border touch of the click component where the plane continues
            ci = mc[ys, xs]
            border = (ys.start > 0 and ci[0].any()) or (ys.stop < H and ci[-1].any()) or (xs.start > 0 and ci[:, 0].any()) or (xs.stop < W and ci[:, -1].any())
            out.append(dict(size=w.size, dice=dice(mc, t), dice_all=dice(m, t), area=int(mc.sum()), area_all=int(m.sum()), border=bool(border), mean_logit=float(lg[lg > 0].mean()) if (lg > 0).any() else 0.0))
            masks.append(mc)
        agree = [dice(masks[i], masks[i + 1]) for i in range(len(masks) - 1)]
        rows.append(dict(tid=int(tid), area=int(t.sum()), log=log, out=out, agree=agree))
    data[suite] = rows
    print(suite, "done", flush=True)
pickle.dump(data, open("/tmp/i35/collect.pkl", "wb"))
