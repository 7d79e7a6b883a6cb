"""First answers on the lesions suite drawn side by side: image, truth, the model's answer, the
answer grown along edges, the two-sided snap ``ws4`` (object where the logit > 4, background
where it is < -4), the package's snap (:func:`napari_oaims.core.edges.snap_to_edges`: the kept
answer's logit > 4 and the click as object, logit < -8 as background) and the classical marker
watershed of ``oaims bench clicks`` (same robot click), with the windows each used and their
Dice. The eight targets where the model loses most to the classical watershed are drawn.

The loop is that of ``oaims bench clicks`` (robot ``center``, 10 clicks, each target accepted);
the first click of each target is recorded.

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/first-answer/lesion_look.py [SET] [N_DRAWN]
    # -> research/first-answer/lesions/first_answers.txt, target_<id>.png, target_<id>_classical.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from skimage.filters import sobel
from skimage.segmentation import watershed

from napari_oaims import answer
from napari_oaims.core import edges
from napari_oaims.evaluation.classical import ClickSeeded
from napari_oaims.evaluation.common import ModelMethod, Protocol, load_pair, pyplot, run_targets, target_ids
from napari_oaims.evaluation.metrics import dice

OUT = Path("research/first-answer/lesions")
SHIPPED = answer.edge_answer
FIRST: dict = {}


def snap(crop, logits, t=4.0):
    """``ws4``: object where logit > t, background where logit < -t and the border; edges decide."""
    markers = np.zeros(crop.shape, np.int32)
    markers[logits < -t] = 2
    markers[[0, -1], :] = 2
    markers[:, [0, -1]] = 2
    markers[logits > t] = 1
    if not (markers == 1).any():
        return logits > 0
    return watershed(sobel(crop), markers) == 1


def recording(session, key, prompts, window, logits, inside, where, shown=None, flat=False):
    if answer.is_first_answer(session, prompts) and "model" not in FIRST:
        _, _, wy, wx = window.clip(session.source.plane_shape)
        crop = session.source.crop(key, window)[wy, wx]
        ys, xs = where
        pos = answer.positive_points(prompts) - np.array([ys.start, xs.start])
        FIRST.update(
            where=where,
            window=window.size,
            crop=crop,
            logits=logits[wy, wx],
            model=inside.copy(),
            grown=edges.grow_along_edges(crop, logits[wy, wx], inside, pos, np.zeros((0, 2))),
            ws4=snap(crop, logits[wy, wx]),
            snap=edges.snap_to_edges(crop, logits[wy, wx], inside, pos, np.zeros((0, 2))),
        )
    return SHIPPED(session, key, prompts, window, logits, inside, where, shown, flat)


def main() -> None:
    import torch

    torch.set_num_threads(1)
    answer.edge_answer = recording
    image_set = sys.argv[1] if len(sys.argv) > 1 else "runs/suites/lesions"
    n_drawn = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    img, lab = load_pair(f"{image_set}/image.tif", f"{image_set}/labels.tif")
    protocol = Protocol(clicks=10, device="cpu", edges="never")
    method = ModelMethod(protocol.make_engine(), img)
    classical = ClickSeeded(img, "watershed")
    rows = []

    class Recorder:
        def start(self):
            FIRST.clear()
            classical.start()

        def click(self, c):
            mask = method.click(c)
            if "classical" not in FIRST:
                FIRST["click"] = (c.y, c.x)
                FIRST["classical"] = classical.click(c).copy()
                from napari_oaims.core import guidance

                FIRST["classical_window"] = guidance.choose_window(np.array([[c.y, c.x]]), img.shape[:2]).size
            return mask

        def finish(self, mask):
            rows.append(dict(FIRST))
            method.finish(mask)

    ids = target_ids(lab)
    run_targets(Recorder(), lab, ids, protocol.make_robot(), 10)
    OUT.mkdir(parents=True, exist_ok=True)
    lines = ["target  model_win classical_win  model   grown   ws4     snap    classical  logit_in_truth_outside_mask"]
    scores = []
    for tid, r in zip(ids, rows):
        truth = lab == tid
        ys, xs = r["where"]
        t = truth[ys, xs]
        d = {k: dice(r[k], t) for k in ("model", "grown", "ws4", "snap")}
        d["classical"] = dice(r["classical"], truth)
        miss = r["logits"][t & ~r["model"]]
        lines.append(
            f"{tid:>6}  {r['window']:>9} {r['classical_window']:>13}  {d['model']:.3f}   {d['grown']:.3f}   "
            f"{d['ws4']:.3f}   {d['snap']:.3f}   {d['classical']:.3f}      "
            f"{np.median(miss) if miss.size else float('nan'):+.1f}"
        )
        scores.append(d)
    means = {k: np.mean([s[k] for s in scores]) for k in scores[0]}
    lines.append("mean    " + "  ".join(f"{k} {v:.3f}" for k, v in means.items()))
    (OUT / "first_answers.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plt = pyplot()
    order = np.argsort([s["model"] - s["classical"] for s in scores])[:n_drawn]
    for i in order:
        tid, r = ids[i], rows[i]
        ys, xs = r["where"]
        truth = lab == tid
        # The classical answer on the model's window region (it may reach beyond it).
        panels = [
            ("image", None),
            ("truth", truth[ys, xs]),
            ("model", r["model"]),
            ("grown", r["grown"]),
            ("ws4", r["ws4"]),
            ("snap", r["snap"]),
            ("classical", r["classical"][ys, xs]),
        ]
        fig, axes = plt.subplots(1, 8, figsize=(24, 3.4))
        for ax, (name, m) in zip(axes, panels):
            ax.imshow(r["crop"], cmap="gray")
            if m is not None:
                ax.contour(m, levels=[0.5], colors="r", linewidths=0.8)
                ax.contour(truth[ys, xs], levels=[0.5], colors="c", linewidths=0.5)
                ax.set_title(f"{name} {dice(m, truth[ys, xs]) if name != 'classical' else scores[i]['classical']:.2f}")
            else:
                ax.set_title(f"target {tid}, window {r['window']}")
            cy, cx = r["click"][0] - ys.start, r["click"][1] - xs.start
            ax.plot(cx, cy, "y+", ms=8)
            ax.axis("off")
        axes[7].imshow(r["logits"], cmap="RdBu_r", vmin=-10, vmax=10)
        axes[7].contour(truth[ys, xs], levels=[0.5], colors="k", linewidths=0.5)
        axes[7].set_title("logits (-10..10)")
        axes[7].axis("off")
        fig.tight_layout()
        fig.savefig(OUT / f"target_{tid}.png", dpi=48)
        plt.close(fig)
        # The classical answer on its own window, with the sobel gradient.
        cw = r["classical_window"]
        cy, cx = r["click"]
        y0, x0 = max(0, cy - cw // 2), max(0, cx - cw // 2)
        sl = (slice(y0, y0 + cw), slice(x0, x0 + cw))
        fig, axes = plt.subplots(1, 2, figsize=(8, 4))
        axes[0].imshow(img[sl], cmap="gray")
        axes[0].contour(r["classical"][sl], levels=[0.5], colors="r", linewidths=0.8)
        axes[0].contour(truth[sl], levels=[0.5], colors="c", linewidths=0.5)
        axes[1].imshow(sobel(img[sl].astype(float)), cmap="magma")
        axes[1].contour(truth[sl], levels=[0.5], colors="c", linewidths=0.5)
        for ax in axes:
            ax.plot(cx - x0, cy - y0, "y+", ms=8)
            ax.axis("off")
        axes[0].set_title(f"classical window ~{cw}")
        axes[1].set_title("sobel")
        fig.tight_layout()
        fig.savefig(OUT / f"target_{tid}_classical.png", dpi=56)
        plt.close(fig)


if __name__ == "__main__":
    main()
