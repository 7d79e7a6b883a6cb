"""Accepted objects' connected components and the pixels they share with objects accepted before
them, with the robot user (centre clicks on the largest error, 5 clicks, accept): python
fragments.py IMAGE LABELS [TARGETS]. Prints JSON."""
import json
import sys

import numpy as np
from scipy import ndimage

from napari_oaims.engine import Engine
from napari_oaims.evaluation.common import load_pair, target_ids
from napari_oaims.simulate.robot import Robot

image, labels = load_pair(sys.argv[1], sys.argv[2])
n = int(sys.argv[3]) if len(sys.argv) > 3 else 30
s = Engine.pretrained(device="cpu").session(image)
robot = Robot(strategy="center", seed=0)
taken = np.zeros(labels.shape, np.int32)
pieces, shared, extra_px = [], 0, 0
for tid in target_ids(labels)[:n]:
    t = labels == tid
    robot.reset(int(tid))
    pred = np.zeros_like(t)
    for _ in range(5):
        c = robot.next_click(pred, t)
        if c is None:
            break
        pred = s.click((c.y, c.x), positive=c.positive).mask
    if not pred.any():
        s.clear()
        continue
    mask = s.accept().mask
    lab, k = ndimage.label(mask, structure=np.ones((3, 3)))
    pieces.append(k)
    if k > 1:  # pixels outside the largest component
        extra_px += int(mask.sum() - np.bincount(lab.ravel())[1:].max())
    shared += int((mask & (taken > 0)).sum())
    taken[mask & (taken == 0)] = tid
print(json.dumps({"objects": len(pieces), "multi_component": int(sum(p > 1 for p in pieces)),
                  "pixels_outside_largest_component": extra_px, "pixels_on_earlier_objects": shared}))
