import numpy as np
from napari_oaims.training.synth import volume
from napari_oaims.engine import Engine
from napari_oaims.session import Session
from scipy import ndimage as ndi
import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
img, lab = volume(np.random.default_rng(0))
eng = Engine.pretrained(device="cpu")
fig, axes = plt.subplots(2, 6, figsize=(18, 6))
for i, l in enumerate(range(1, lab.max() + 1)):
    zs = np.nonzero((lab == l).any((1, 2)))[0]
    z = int(zs[np.argmax([(lab[zz] == l).sum() for zz in zs])])
    m2 = lab[z] == l
    d = ndi.distance_transform_edt(m2); y, x = np.unravel_index(np.argmax(d), d.shape)
    s = eng.session(img)
    r = s.click((z, y, x))
    pm = s.plane_mask((z,))
    dice = 2 * (pm & m2).sum() / (pm.sum() + m2.sum())
    print(l, z, (y, x), round(dice, 3), pm.sum(), m2.sum(), "other", (pm & (lab[z] > 0) & ~m2).sum())
    ys, xs = np.nonzero(m2 | pm); sl = (slice(max(ys.min()-10,0), ys.max()+10), slice(max(xs.min()-10,0), xs.max()+10))
    axes[0, i].imshow(img[z][sl], cmap="gray"); axes[0, i].set_title(f"n{l} z{z} dice {dice:.2f}")
    axes[1, i].imshow(lab[z][sl], cmap="tab20", interpolation="nearest"); axes[1, i].contour(pm[sl], colors="r")
plt.savefig("/tmp/n6.png", dpi=60)
