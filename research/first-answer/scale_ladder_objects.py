"""Ellipses of radius 5-160 px (bright on dark, dark in bright texture, textured organ in textured
tissue), one click at the centre, a fresh session each: first-click Dice, area ratio, window.

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/first-answer/scale_ladder_objects.py
"""
import numpy as np
from scipy import ndimage as ndi
from napari_oaims import Engine
from napari_oaims.evaluation.metrics import dice
eng = Engine.pretrained(device="cpu")
rng = np.random.default_rng(0)
for kind in ("bright_on_dark", "dark_in_bright_texture", "organ_textured"):
    for r in (5, 15, 40, 100, 160):
        S = max(256, 2 * r + 120)
        yy, xx = np.mgrid[:S, :S]
        obj = (yy - S / 2) ** 2 / (r * 1.0) ** 2 + (xx - S / 2) ** 2 / (r * 0.8) ** 2 <= 1
        if kind == "bright_on_dark":
            img = np.where(obj, 0.8, 0.2) + rng.normal(0, 0.05, (S, S))
        elif kind == "dark_in_bright_texture":
            tex = ndi.gaussian_filter(rng.normal(0, 1, (S, S)), 3); tex /= tex.std()
            img = np.where(obj, 0.2, 0.7 + 0.08 * tex) + rng.normal(0, 0.03, (S, S))
        else:
            tex = ndi.gaussian_filter(rng.normal(0, 1, (S, S)), 2); tex /= tex.std()
            img = np.where(obj, 0.6 + 0.05 * tex, 0.3 + 0.05 * tex) + rng.normal(0, 0.03, (S, S))
        img = ndi.gaussian_filter(img, 1.0).astype(np.float32)
        s = eng.session(img)
        res = s.click((S // 2, S // 2))
        m = s.mask
        ev = [e for e in s.events if e["kind"] == "predict"][-1]["extra"]
        print(f"{kind:24s} r={r:3d} dice={dice(m, obj):.3f} area ratio={m.sum()/obj.sum():.2f} window={ev.get('window_size', ev.get('window'))} fb={res.fallback}")
