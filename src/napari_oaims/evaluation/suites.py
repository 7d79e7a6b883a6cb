"""Procedural failure suites for ``oaims bench adapt``: images where online learning is put at risk.

``flooding`` (:func:`flooding`): small dark objects (70-150 px) inside bright textured tissue,
each lying on a network of thin dark channels of the same darkness that runs through the tissue.
With the wide first window of larger structures (``oaims bench adapt --suite flooding`` uses
256 px) the frozen model's first click on such an object spills over the tissue (thousands of
pixels, Dice about 0.05), so the robot corrects with many negative clicks: the workflow in which
learning from the user's clicks can teach the model "background everywhere". Each tile of the
mosaic holds one tissue region with two objects (like two structures per slice of a scan);
everything is drawn from one seed.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.draw import ellipse, line

#: Side of one tile of the flooding mosaic (px) and objects per tile.
TILE = 160
PER_TILE = 2
#: Object area range (px).
AREA = (70, 150)
#: Intensity of the objects and of the dark channels they lie on (tissue: 0.75, outside: 0.12).
LEVEL = 0.45


def _field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """A smooth random field with zero mean and unit standard deviation."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return (f - f.mean()) / max(float(f.std()), 1e-9)


def _tile(rng: np.random.Generator, level: float) -> tuple[np.ndarray, np.ndarray]:
    """One tile: bright textured tissue crossed by dark channels, two small dark objects on them."""
    s = TILE
    yy, xx = np.mgrid[:s, :s].astype(np.float32)
    # Tissue: a large lobed region covering most of the tile.
    radius = s * (0.36 + 0.05 * _field(rng, (s, s), 12.0))
    tissue = np.hypot(yy - s / 2, xx - s / 2) < radius
    # Dark regions: a network of dark channels through the tissue, joined to the dark outside.
    lines = np.zeros((s, s), bool)
    for _ in range(3):
        y, x = rng.uniform(0.2 * s, 0.8 * s, 2)
        heading = rng.uniform(0, 2 * np.pi)
        for _ in range(12):
            heading += rng.normal(0, 0.35)
            ny, nx = y + 9 * np.sin(heading), x + 9 * np.cos(heading)
            rr, cc = line(int(y), int(x), int(ny), int(nx))
            ok = (rr >= 0) & (rr < s) & (cc >= 0) & (cc < s)
            lines[rr[ok], cc[ok]] = True
            y, x = ny, nx
    dark = ndimage.distance_transform_edt(~lines) <= rng.uniform(1.0, 1.8)
    labels = np.zeros((s, s), np.int32)
    # Objects: small dark ellipses centred on a channel inside the tissue (so the first click floods).
    inner = tissue & ndimage.binary_erosion(tissue, iterations=8) & lines
    for i in range(1, PER_TILE + 1):
        for _ in range(200):
            area = rng.uniform(*AREA)
            a = np.sqrt(area / np.pi) * rng.uniform(1.0, 1.3)
            b = area / (np.pi * a)
            ok = inner & (ndimage.distance_transform_edt(labels == 0) > 3 * a + 6)
            ys, xs = np.nonzero(ok)
            if len(ys) == 0:
                break
            k = int(rng.integers(len(ys)))
            rr, cc = ellipse(ys[k], xs[k], b, a, shape=(s, s), rotation=rng.uniform(0, np.pi))
            m = np.zeros((s, s), bool)
            m[rr, cc] = True
            if AREA[0] <= m.sum() <= AREA[1]:
                labels[m] = i
                break
    image = np.full((s, s), 0.12, np.float32)  # dark surroundings
    image[tissue] = 0.75
    image += tissue * (0.12 * _field(rng, (s, s), 1.2) + 0.08 * _field(rng, (s, s), 4.0))
    image[(dark & tissue) | (labels > 0)] = level
    image = ndimage.gaussian_filter(image, 1.0)
    image += rng.normal(0, 0.03, image.shape)
    return image.astype(np.float32), labels


def flooding(seed: int = 0, tiles: tuple[int, int] = (3, 4), level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """The flooding suite: a ``tiles`` mosaic of :data:`TILE`-px tiles (``image`` float32 in about
    [0, 1], integer ``labels``), :data:`PER_TILE` objects of :data:`AREA` px per tile.

    Examples
    --------
    >>> image, labels = flooding(seed=0, tiles=(1, 2))
    >>> image.shape, int(labels.max()) <= 4
    ((160, 320), True)
    """
    rng = np.random.default_rng(seed)
    ty, tx = tiles
    image = np.zeros((ty * TILE, tx * TILE), np.float32)
    labels = np.zeros(image.shape, np.int32)
    for i in range(ty):
        for j in range(tx):
            img, lab = _tile(rng, level)
            sl = np.s_[i * TILE : (i + 1) * TILE, j * TILE : (j + 1) * TILE]
            image[sl] = img
            labels[sl] = np.where(lab > 0, lab + labels.max(), 0)
    return image, labels
