"""Smoke run: propagate each procedural kind from its largest GT slice, per-slice Dice."""
import sys, time
import numpy as np, torch
torch.set_num_threads(1)
from napari_oaims import Engine
from napari_oaims.training.volumes import suite, make_volume
from napari_oaims.simulate.clicks import click_in_region
from napari_oaims.evaluation.metrics import dice

method = sys.argv[1] if len(sys.argv) > 1 else "frozen"
e = Engine.pretrained(device="cpu")
for spec in suite(1):
    im, lb = make_volume(spec)
    t = lb == 1
    z = int(np.argmax(t.sum((1, 2))))
    s = e.session(im, plane_axes=(1, 2))
    y, x = click_in_region(t[z])
    r = s.click((z, y, x))
    # up to 4 more correction clicks on the anchor
    from napari_oaims.simulate.clicks import largest_error_component
    for _ in range(4):
        if dice(r.mask[z], t[z]) >= 0.9: break
        c = largest_error_component(r.mask[z], t[z]); yy, xx = click_in_region(c[0])
        r = s.click((z, yy, xx), positive=c[1])
    t0 = time.perf_counter()
    m = s.propagate(method=method)
    dt = time.perf_counter() - t0
    per = [round(dice(m.mask[k], t[k]), 2) if (t[k].any() or m.mask[k].any()) else None for k in range(t.shape[0])]
    print(f"{spec.kind:9s} z={z} anchorD={dice(r.mask[z], t[z]):.2f} 3D={dice(m.mask, t):.3f} {dt:.1f}s", per)
    print("   chains", [(c['direction'], c['slices'], c['stop'], c['stopped_at']) for c in m.info['chains']])
    print("   gt z-range", np.nonzero(t.any((1,2)))[0][[0,-1]], "pred", np.nonzero(m.mask.any((1,2)))[0][[0,-1]] if m.mask.any() else None)
