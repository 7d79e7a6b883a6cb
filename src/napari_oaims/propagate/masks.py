"""Sparse plane masks (a box and the values in it) and what propagation derives from them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from napari_oaims.core import clicks, geometry, guidance, overlap


@dataclass(frozen=True)
class Sparse:
    """Values (bool mask or float probability) of one plane inside ``box`` (plane coordinates);
    zero elsewhere. ``box`` None: the plane is empty."""

    box: geometry.Box | None
    values: np.ndarray | None

    @staticmethod
    def empty() -> "Sparse":
        return Sparse(None, None)

    @staticmethod
    def of_mask(mask: np.ndarray, offset=(0, 0)) -> "Sparse":
        """The bool mask ``mask`` (placed at ``offset``), trimmed to its bounding box."""
        mask = np.asarray(mask, bool)
        bb = geometry.bbox(mask)
        if bb is None:
            return Sparse.empty()
        crop = mask[bb[0] : bb[2], bb[1] : bb[3]].copy()
        return Sparse((bb[0] + offset[0], bb[1] + offset[1], bb[2] + offset[0], bb[3] + offset[1]), crop)

    @property
    def area(self) -> int:
        return 0 if self.values is None else int(np.count_nonzero(self.values > 0.5))

    def threshold(self) -> "Sparse":
        """A probability map as a trimmed bool mask (``> 0.5``)."""
        if self.box is None:
            return self
        return Sparse.of_mask(self.values > 0.5, (self.box[0], self.box[1]))

    def in_box(self, box: geometry.Box, dtype=np.float32) -> np.ndarray:
        """The values inside ``box`` (which may be larger or overlap partly), zero elsewhere."""
        out = np.zeros((box[2] - box[0], box[3] - box[1]), dtype)
        if self.box is None:
            return out
        y0, x0 = max(box[0], self.box[0]), max(box[1], self.box[1])
        y1, x1 = min(box[2], self.box[2]), min(box[3], self.box[3])
        if y1 > y0 and x1 > x0:
            out[y0 - box[0] : y1 - box[0], x0 - box[1] : x1 - box[1]] = self.values[
                y0 - self.box[0] : y1 - self.box[0], x0 - self.box[1] : x1 - self.box[1]
            ]
        return out

    def window(self, window: guidance.Window) -> np.ndarray:
        """The values on ``window`` (window size, native resolution; zero outside the plane)."""
        return self.in_box((window.y0, window.x0, window.y0 + window.size, window.x0 + window.size))

    def plane(self, shape: tuple[int, int]) -> np.ndarray:
        """The whole plane (bool)."""
        return self.in_box((0, 0, shape[0], shape[1]), bool) if self.box is not None else np.zeros(shape, bool)


def iou(a: Sparse, b: Sparse) -> float:
    """Intersection over union of two bool sparse masks (1.0 when both are empty)."""
    if a.box is None or b.box is None:
        return 1.0 if a.box is None and b.box is None else 0.0
    box = geometry.union(a.box, b.box)
    ma, mb = a.in_box(box, bool), b.in_box(box, bool)
    union = np.count_nonzero(ma | mb)
    return float(np.count_nonzero(ma & mb)) / union if union else 1.0


def dice(a: Sparse, b: Sparse) -> float:
    """Dice of two bool sparse masks (1.0 when both are empty)."""
    if a.box is None or b.box is None:
        return 1.0 if a.box is None and b.box is None else 0.0
    box = geometry.union(a.box, b.box)
    return overlap.dice(a.in_box(box, bool), b.in_box(box, bool))


def xor_area(a: Sparse, b: Sparse) -> int:
    """Pixels where two bool sparse masks disagree."""
    if a.box is None or b.box is None:
        return (a.area if b.box is None else 0) + (b.area if a.box is None else 0)
    box = geometry.union(a.box, b.box)
    return int(np.count_nonzero(a.in_box(box, bool) ^ b.in_box(box, bool)))


def deepest_points(mask: Sparse, share: float | None) -> np.ndarray:
    """Plane pixels (N, 2) at the deepest point (distance-transform maximum) of each component of
    ``mask`` with at least ``share`` of the largest component's area; none if ``share`` is None."""
    if share is None or mask.box is None:
        return np.zeros((0, 2), int)
    return clicks.deepest_points(mask.values > 0.5, share) + np.array(mask.box[:2], int)


def contrast(image: np.ndarray, mask: np.ndarray) -> float | None:
    """Mean image inside ``mask`` minus the mean on a ring around it (same-shape 2D arrays);
    None when the mask or the ring is empty."""
    if not mask.any():
        return None
    diameter = geometry.diameter(np.count_nonzero(mask))
    width = int(np.clip(round(0.2 * diameter), 2, 12))
    ring = ndimage.binary_dilation(mask, iterations=width) & ~mask
    if not ring.any():
        return None
    return float(image[mask].mean() - image[ring].mean())
