"""Draw slices of a traced run (``lc6_trace.py``): for correction k, the clicked slice and a
slice that changed most, before and after, with the truth's outline.

    python research/propagation/lc6_draw.py TRACEDIR NAME_METHOD K OUT.png
"""

import json
import sys
from pathlib import Path

import numpy as np
from skimage.segmentation import find_boundaries

from napari_oaims.evaluation.common import pyplot


def main(trace: str, stem: str, k: int, out: str) -> None:
    d = np.load(Path(trace) / f"{stem}.npz")
    rec = json.loads((Path(trace) / f"{stem}.json").read_text())[k - 1]
    image, target, snaps = d["image"], d["target"], d["snaps"]
    before, after = snaps[k - 1], snaps[k]
    z = rec["z"]
    worse = min(rec["changed"], key=lambda c: c[2] - c[1])[0]
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(7, 7))
    for row, p in enumerate((z, worse)):
        for col, (m, what) in enumerate(((before, "before"), (after, "after"))):
            ax = axes[row, col]
            rgb = np.repeat(((image[p] - image.min()) / np.ptp(image))[..., None], 3, -1)
            rgb[m[p]] = 0.5 * rgb[m[p]] + 0.5 * np.array([0.0, 0.6, 1.0])
            rgb[find_boundaries(target[p])] = (1.0, 0.8, 0.0)
            ax.imshow(rgb)
            from napari_oaims.evaluation.metrics import dice

            label = "clicked" if p == z else "neighbour"
            ax.set_title(f"slice {p} ({label}) {what}: Dice {dice(m[p], target[p]):.2f}", fontsize=9)
            if p == z:
                ax.plot(rec["yx"][1], rec["yx"][0], "g+" if rec["positive"] else "rx", ms=10, mew=2)
            ax.axis("off")
    fig.suptitle(
        f"{stem}, correction {k}: {'positive' if rec['positive'] else 'negative'} click on slice {z}; "
        f"3D Dice {rec['dice3d'][0]:.3f} -> {rec['dice3d'][1]:.3f}\n(blue: mask, yellow: truth's outline)",
        fontsize=9,
    )
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
