"""Draw first-click answers beside the truth for the worst targets of a labelled image
(the robot's first click, one fresh session per target, no accepted objects).

    PYTHONPATH=SRC python research/first-answer/neck_look.py IMAGE LABELS OUT.png [N]
"""

import sys

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from napari_oaims import Engine  # noqa: E402
from napari_oaims.evaluation.common import load_pair, target_ids  # noqa: E402
from napari_oaims.evaluation.metrics import dice  # noqa: E402
from napari_oaims.simulate.clicks import click_in_region  # noqa: E402

img, lab = load_pair(sys.argv[1], sys.argv[2])
n = int(sys.argv[4]) if len(sys.argv) > 4 else 8
eng = Engine.pretrained(device="cpu")
rows = []
for tid in target_ids(lab):
    t = lab == tid
    y, x = click_in_region(t)
    m = eng.session(img).click((y, x)).mask
    rows.append((dice(m, t), tid, (y, x), m, t))
rows.sort(key=lambda r: r[0])
fig, axes = plt.subplots(2, n, figsize=(3 * n, 6))
for i, (d, tid, (y, x), m, t) in enumerate(rows[:n]):
    ys, xs = np.nonzero(m | t)
    sl = (slice(max(ys.min() - 10, 0), ys.max() + 10), slice(max(xs.min() - 10, 0), xs.max() + 10))
    axes[0, i].imshow(img[sl], cmap="gray")
    axes[0, i].contour(m[sl], colors="r", linewidths=0.8)
    axes[0, i].plot([x - sl[1].start], [y - sl[0].start], "c+")
    axes[0, i].set_title(f"{tid} dice {d:.2f}")
    axes[1, i].imshow(lab[sl], cmap="tab20", interpolation="nearest")
    axes[1, i].contour(m[sl], colors="k", linewidths=0.8)
    print(tid, round(d, 3), int(m.sum()), int(t.sum()), "other", int((m & (lab > 0) & ~t).sum()), flush=True)
plt.tight_layout()
plt.savefig(sys.argv[3], dpi=60)
