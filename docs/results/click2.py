"""How the frozen model answers the robot's second click, split by that click's polarity.

Two robot clicks (``center``) on every nucleus of a (shifted) nuclei image, frozen model, accept
after each. Prints the mean Dice change at click 2 for positive and negative second clicks, how
many targets lose more than 0.05, and the worst targets.

    python docs/results/click2.py --weights runs/soft_blob_6000_w.safetensors --first-window auto --shift illum
    python docs/results/click2.py --first-window auto --shift illum          # shipped weights
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from napari_oaims import Engine
from napari_oaims.bench.clicks import first_window_arg, load_pair
from napari_oaims.bench.common import ModelMethod, run_targets, target_ids
from napari_oaims.bench.shifts import SHIFTS, apply_shift
from napari_oaims.robot import Robot


class _Recording(ModelMethod):
    """The model method, remembering each target's click polarities."""

    def __init__(self, engine, image):
        super().__init__(engine, image)
        self.polarities: list[list[int]] = []

    def start(self) -> None:
        self.polarities.append([])

    def click(self, c):
        self.polarities[-1].append(int(c.positive))
        return super().click(c)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", default="../shared/data/nuclei2d/image.tif")
    p.add_argument("--labels", default="../shared/data/nuclei2d/labels.tif")
    p.add_argument("--weights", default=None, help="weights file (default: the shipped weights)")
    p.add_argument("--first-window", type=first_window_arg, default=None)
    p.add_argument("--shift", default="none", choices=sorted(SHIFTS))
    args = p.parse_args()
    torch.set_num_threads(1)

    image, labels = apply_shift(args.shift, *load_pair(args.image, args.labels))
    ids = target_ids(labels)
    engine = Engine.pretrained(device="cpu", adaptation="none", weights=args.weights)
    if args.first_window is not None:
        engine.first_window = args.first_window
    method = _Recording(engine, image)
    curves = np.array(run_targets(method, labels, ids, Robot(strategy="center", seed=0), 2)["curves"])
    polarity = np.array([v[1] if len(v) > 1 else -1 for v in method.polarities])  # -1: no second click
    change = curves[:, 1] - curves[:, 0]
    for label, name in ((1, "positive"), (0, "negative")):
        sel = polarity == label
        print(f"{args.shift}: {name} second clicks {sel.sum()}, mean Dice change {change[sel].mean():+.3f}, "
              f"{(change[sel] < -0.05).sum()} lose more than 0.05")
    print(f"Dice@1 {curves[:, 0].mean():.3f}, Dice@2 {curves[:, 1].mean():.3f}")
    for i in np.argsort(change)[:5]:
        print(f"  target {ids[i]}: {curves[i, 0]:.2f} -> {curves[i, 1]:.2f} ({'+' if polarity[i] == 1 else '-'} click)")


if __name__ == "__main__":
    main()
