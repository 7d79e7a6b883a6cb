"""The neck rule of necks.py on drawn shapes (the cases its tests would have held): area of the
mask before and after, for a click at the given points.

    PYTHONPATH=src python research/first-answer/necks_shapes.py
"""

import sys

import numpy as np
from skimage.draw import disk

sys.path.insert(0, "research/first-answer")
import necks  # noqa: E402


def discs(gap: float) -> np.ndarray:
    m = np.zeros((100, 140), bool)
    m[disk((50, 40), 20, shape=m.shape)] = True
    m[disk((50, 40 + gap), 20, shape=m.shape)] = True
    return m


dumbbell = discs(45)
dumbbell[46:55, 40:85] = True
yy, xx = np.mgrid[:100, :200]
centre = 50 + 20 * np.sin(xx / 15.0)
curve = (np.abs(yy - centre) < 3 + 0.5 * np.sin(xx / 4.0)) & (xx > 10) & (xx < 190)
wobbly = (np.abs(yy - centre) < 3 + 1.5 * np.sin(xx / 4.0)) & (xx > 10) & (xx < 190)
ellipse = ((yy - 50) / 10.0) ** 2 + ((xx - 100) / 70.0) ** 2 < 1
cases = {
    "two discs r 20, centres 1.5 r apart, click on one": (discs(30), [[50, 40]]),
    "two discs r 20, centres 1.75 r apart, click on one": (discs(35), [[50, 40]]),
    "dumbbell (discs r 20, bar 9 px), click on one end": (dumbbell, [[50, 40]]),
    "dumbbell, clicks on both ends": (dumbbell, [[50, 40], [50, 85]]),
    "sine curve 5-7 px wide": (curve, [[int(centre[0, 100]), 100]]),
    "sine curve 3-9 px wide": (wobbly, [[int(centre[0, 100]), 100]]),
    "ellipse 140 x 20": (ellipse, [[50, 100]]),
}
for share, min_part in ((0.6, 8), (0.8, 4), (0.95, 4)):
    print(f"share {share}, parts >= {min_part} px")
    for name, (mask, pts) in cases.items():
        necks.NECK_MIN_PART = min_part
        kept = necks.cut_necks(mask, np.array(pts), None, share)
        print(f"  {name}: {int(mask.sum())} -> {int(kept.sum())}")
