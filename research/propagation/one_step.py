"""One propagation step from the ground-truth mask of slice z to slice z+1 (both directions),
for variants of the derived prompts: mean Dice per kind. Measures the model's tracking quality
without drift. Usage: python one_step.py"""
import numpy as np, torch
torch.set_num_threads(1)
from napari_oaims import Engine
from napari_oaims.core import guidance
from napari_oaims.training.volumes import suite, make_volume
from napari_oaims.propagate.masks import Sparse, deepest_points
from napari_oaims.evaluation.metrics import dice

e = Engine.pretrained(device="cpu")
VARIANTS = {"prior+click": (True, 0.15), "prior": (True, None), "click": (False, 0.15), "prior+allclicks": (True, 0.0)}
rows = {}
for spec in suite(2):
    im, lb = make_volume(spec)
    t = lb == 1
    s = e.session(im, plane_axes=(1, 2))
    s.click((int(np.argmax(t.sum((1, 2)))), *np.argwhere(t[int(np.argmax(t.sum((1, 2))))])[0]))  # sets the window scale
    for name, (use_prior, share) in VARIANTS.items():
        ds = []
        for z in range(t.shape[0]):
            for dz in (1, -1):
                z2 = z + dz
                if not (0 <= z2 < t.shape[0]) or not t[z].any() or not t[z2].any():
                    continue
                prev = Sparse.of_mask(t[z])
                pts = deepest_points(prev, share)
                from napari_oaims.core.prompts import Prompt
                window = s._choose_window((z2,), [Prompt("click", True, p[None]) for p in pts], prev.box)
                crop = s.source.crop((z2,), window)
                prior = guidance.resize_window(prev.window(window), 128) if use_prior else None
                x = guidance.encode(guidance.resize_window(crop, 128), window.to_work(pts).reshape(-1, 2), np.zeros((0, 2)), prior)
                lg = guidance.resize_window(e.predict(x[None])[0], window.size)
                ys, xs, wy, wx = window.clip(s.source.plane_shape)
                pred = np.zeros_like(t[z2]); pred[ys, xs] = lg[wy, wx] > 0
                ds.append(dice(pred, t[z2]))
        rows.setdefault(name, {}).setdefault(spec.kind, []).extend(ds)
for name, per in rows.items():
    print(f"{name:16s}", " ".join(f"{k}={np.mean(v):.3f}" for k, v in per.items()), f"all={np.mean(sum(per.values(), [])):.3f}")

# copy baseline and area bias of prior+click
cp, bias = {}, {}
for spec in suite(2):
    im, lb = make_volume(spec)
    t = lb == 1
    for z in range(t.shape[0] - 1):
        if t[z].any() and t[z + 1].any():
            cp.setdefault(spec.kind, []).append(dice(t[z], t[z + 1]))
print("copy            ", " ".join(f"{k}={np.mean(v):.3f}" for k, v in cp.items()))
