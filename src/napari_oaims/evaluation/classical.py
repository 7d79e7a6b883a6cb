"""Classical click-seeded baselines: scikit-image random walker and marker watershed.

Both see exactly the robot's clicks: positive clicks (disks of radius 2) seed the object,
negative clicks and the border of the local window seed the background. They run on the same
local window as the model (:func:`napari_oaims.core.guidance.choose_window`), so the comparison is fair in latency too.
"""

from __future__ import annotations

import numpy as np
from skimage.draw import disk
from skimage.filters import sobel
from skimage.segmentation import random_walker, watershed

from napari_oaims.core import guidance
from napari_oaims.core.source import ImageSource
from napari_oaims.simulate.robot import Click


class ClickSeeded:
    """Interactive segmentation of one target at a time by ``random_walker`` or ``watershed``."""

    def __init__(self, image: np.ndarray, kind: str = "random_walker"):
        if kind not in ("random_walker", "watershed"):
            raise ValueError(f"unknown classical method {kind!r}")
        self.kind = kind
        self.source = ImageSource(image)
        self.shape = self.source.plane_shape
        self.start()

    #: Positive clicks answered with an empty mask; clicks refused (never: every click is a seed).
    empty_positive = 0
    refused = 0

    def start(self) -> None:
        self.clicks: list[Click] = []
        self.mask = np.zeros(self.shape, bool)

    def click(self, c: Click) -> np.ndarray:
        self.clicks.append(c)
        pos = np.array([[k.y, k.x] for k in self.clicks if k.positive]).reshape(-1, 2)
        if len(pos) == 0:
            self.mask = np.zeros(self.shape, bool)
            return self.mask
        rows, cols = np.flatnonzero(self.mask.any(1)), np.flatnonzero(self.mask.any(0))
        bbox = (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1) if len(rows) else None
        win = guidance.choose_window(pos, self.shape, bbox)
        crop = self.source.crop((), win)
        markers = np.zeros(crop.shape, np.int32)
        markers[[0, -1], :] = 2
        markers[:, [0, -1]] = 2
        for k in self.clicks:
            cy, cx = k.y - win.y0, k.x - win.x0
            if 0 <= cy < win.size and 0 <= cx < win.size:
                rr, cc = disk((cy, cx), 2, shape=crop.shape)
                markers[rr, cc] = 1 if k.positive else 2
        if self.kind == "random_walker":
            seg = random_walker(crop, markers, beta=130, mode="cg_j", tol=1e-3)
        else:
            seg = watershed(sobel(crop), markers)
        ys, xs, wy, wx = win.clip(self.shape)
        self.mask = np.zeros(self.shape, bool)
        self.mask[ys, xs] = seg[wy, wx] == 1
        self.empty_positive += bool(c.positive and not self.mask.any())
        return self.mask

    def finish(self, mask: np.ndarray) -> None:
        self.start()
