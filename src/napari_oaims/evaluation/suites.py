"""Procedural failure suites: images on which a click model's first answer or online learning is
put at risk (``oaims synth --suite NAME`` writes them; ``oaims bench clicks`` and
``oaims bench adapt`` run on them).

First-answer suites (:data:`SUITES`, each a mosaic of :data:`SUITE_TILE`-px scenes):

* ``cavities``: thin dark cavities (6-14 px wide) inside bright textured tissue, whose blob scale
  is that of the tissue around them;
* ``uniform``: large objects of one exact value (60-220 px across) on an all-zero background, as
  in masks, phantoms and the outside of a scan;
* ``lesions``: low-contrast lesions (a tenth of the tissue's range) in smooth textured tissue
  with noise (CT/MRI-like);
* ``neighbours``: clusters of touching cells of one intensity, at most a faint line between them.
* ``organs``: one or two large textured objects (130-380 px across, in 512-px scenes) brighter
  or darker than the textured tissue or dark outside around them, with small unlabelled spots
  inside: a window of a nucleus's size lies wholly inside them.

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

from napari_oaims.core.clicks import distance_to_border
from napari_oaims.training import scenes, synth

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


#: Side (px) of one scene of the first-answer suites.
SUITE_TILE = 256


def _tissue(rng: np.random.Generator, s: int, level: float, spread: float) -> tuple[np.ndarray, np.ndarray]:
    """A large lobed tissue region (mask) and a textured image of it over a dark outside."""
    yy, xx = np.mgrid[:s, :s].astype(np.float32)
    radius = s * (0.42 + 0.05 * _field(rng, (s, s), 20.0))
    mask = np.hypot(yy - s / 2, xx - s / 2) < radius
    image = np.full((s, s), 0.06, np.float32)
    texture = 0.6 * _field(rng, (s, s), 1.5) + 0.4 * _field(rng, (s, s), 6.0)
    image[mask] = level + spread * texture[mask]
    return image, mask


def _place(rng: np.random.Generator, free: np.ndarray, shape_of, tries: int = 60) -> np.ndarray | None:
    """A mask from ``shape_of(cy, cx)`` that lies inside ``free`` (None if none fits)."""
    ys, xs = np.nonzero(free)
    for _ in range(tries if len(ys) else 0):
        k = int(rng.integers(len(ys)))
        m = shape_of(ys[k], xs[k])
        if m.sum() >= 12 and not (m & ~free).any():
            return m
    return None


def cavities(rng: np.random.Generator, s: int = SUITE_TILE) -> tuple[np.ndarray, np.ndarray]:
    """Bright textured tissue holding 2-4 thin dark cavities (elongated, 6-14 px wide, some curved)."""
    image, tissue = _tissue(rng, s, 0.72, 0.08)
    labels = np.zeros((s, s), np.int32)
    inner = ndimage.binary_erosion(tissue, iterations=10)
    for i in range(1, int(rng.integers(2, 5)) + 1):
        free = inner & (ndimage.distance_transform_edt(labels == 0) > 12)
        half = rng.uniform(3.0, 7.0)
        if rng.random() < 0.5:
            length = rng.uniform(3.0, 7.0) * half

            def shape_of(cy, cx, half=half, length=length):
                m = np.zeros((s, s), bool)
                rr, cc = ellipse(cy, cx, half, length, shape=(s, s), rotation=rng.uniform(0, np.pi))
                m[rr, cc] = True
                return m
        else:

            def shape_of(cy, cx, half=half):
                m = np.zeros((s, s), bool)
                heading, y, x = rng.uniform(0, 2 * np.pi), float(cy), float(cx)
                for _ in range(int(rng.integers(3, 7))):
                    heading += rng.normal(0, 0.4)
                    ny, nx = y + 8 * np.sin(heading), x + 8 * np.cos(heading)
                    rr, cc = line(int(y), int(x), int(ny), int(nx))
                    ok = (rr >= 0) & (rr < s) & (cc >= 0) & (cc < s)
                    m[rr[ok], cc[ok]] = True
                    y, x = ny, nx
                return ndimage.distance_transform_edt(~m) <= half

        m = _place(rng, free, shape_of)
        if m is not None:
            labels[m] = i
    image[labels > 0] = rng.uniform(0.12, 0.28) + 0.03 * _field(rng, (s, s), 2.0)[labels > 0]
    image = ndimage.gaussian_filter(image, 0.8) + rng.normal(0, 0.02, (s, s))
    return image.astype(np.float32), synth.relabel(labels)


def uniform(rng: np.random.Generator, s: int = SUITE_TILE) -> tuple[np.ndarray, np.ndarray]:
    """1-3 large objects (60-220 px across), each of one exact value, on an exactly zero background."""
    labels = np.zeros((s, s), np.int32)
    for i in range(1, int(rng.integers(1, 4)) + 1):
        r = rng.uniform(30.0, 110.0 if i == 1 else 50.0)
        kind = str(rng.choice(["ellipse", "star", "deformed"]))
        m = synth.shape_at(rng, s, kind, *rng.uniform(0.3 * s, 0.7 * s, 2), r) & (labels == 0)
        labels[m] = i
    labels = synth.relabel(labels, min_area=200)
    levels = rng.uniform(0.3, 1.0, int(labels.max()) + 1)
    levels[0] = 0.0
    return levels[labels].astype(np.float32), labels


def lesions(rng: np.random.Generator, s: int = SUITE_TILE) -> tuple[np.ndarray, np.ndarray]:
    """Smooth textured tissue with 2-4 lesions (8-30 px radius) a little brighter or darker than it."""
    image, tissue = _tissue(rng, s, 0.5, 0.04)
    image += 0.06 * _field(rng, (s, s), 25.0) * tissue
    labels = np.zeros((s, s), np.int32)
    inner = ndimage.binary_erosion(tissue, iterations=12)
    for i in range(1, int(rng.integers(2, 5)) + 1):
        free = inner & (ndimage.distance_transform_edt(labels == 0) > 10)
        r = float(np.exp(rng.uniform(np.log(8.0), np.log(30.0))))
        m = _place(rng, free, lambda cy, cx, r=r: synth.shape_at(rng, s, "deformed", cy, cx, r))
        if m is not None:
            labels[m] = i
            image[m] += rng.choice([-1.0, 1.0]) * rng.uniform(0.07, 0.12)
    image = ndimage.gaussian_filter(image, 1.2) + rng.normal(0, 0.025, (s, s))
    return image.astype(np.float32), synth.relabel(labels)


def neighbours(rng: np.random.Generator, s: int = SUITE_TILE) -> tuple[np.ndarray, np.ndarray]:
    """Clusters of touching cells of one intensity (:func:`napari_oaims.training.scenes.touching`),
    lightly blurred, with noise."""
    image, labels, _, _ = scenes.touching(rng, synth.SynthSettings(size=s))
    image = ndimage.gaussian_filter(image, 1.0) + rng.normal(0, 0.02, (s, s))
    return image.astype(np.float32), labels


#: Side (px) of one scene of the ``organs`` suite.
ORGAN_TILE = 512


def organs(rng: np.random.Generator, s: int = ORGAN_TILE) -> tuple[np.ndarray, np.ndarray]:
    """1-2 large deformed objects (65-190 px radius), each textured, shaded and dotted with small
    dark spots, 0.15-0.4 above or below what surrounds them (textured tissue or a dark outside)."""
    outside = rng.random() < 0.4
    level = 0.08 if outside else rng.uniform(0.3, 0.55)
    image = level + (0.01 if outside else 0.04) * _field(rng, (s, s), 3.0)
    labels = np.zeros((s, s), np.int32)
    for i in range(1, int(rng.integers(1, 3)) + 1):
        r = rng.uniform(65.0, 190.0 if i == 1 else 110.0)
        free = distance_to_border(labels == 0) > 8  # off the other objects and the scene's edge
        m = _place(rng, free, lambda cy, cx, r=r: synth.shape_at(rng, s, "deformed", cy, cx, r))
        if m is None:
            continue
        labels[m] = i
        step = rng.uniform(0.15, 0.4) * (1.0 if outside or rng.random() < 0.6 else -1.0)
        texture = 0.04 * _field(rng, (s, s), 4.0) + 0.03 * _field(rng, (s, s), 40.0)
        image[m] = level + step + texture[m]
        spots = (_field(rng, (s, s), 2.0) > 2.4) & ndimage.binary_erosion(m, iterations=6)
        image[spots] -= 0.5 * abs(step)
    image = ndimage.gaussian_filter(image, 1.0) + rng.normal(0, 0.03, (s, s))
    return image.astype(np.float32), synth.relabel(labels, min_area=400)


#: The first-answer suites: name -> scene function.
SUITES = {"cavities": cavities, "uniform": uniform, "lesions": lesions, "neighbours": neighbours, "organs": organs}
#: Scene side of each suite whose scenes are not :data:`SUITE_TILE` px.
SUITE_TILES = {"organs": ORGAN_TILE}


def suite(name: str, seed: int = 0, tiles: tuple[int, int] = (3, 3)) -> tuple[np.ndarray, np.ndarray]:
    """The suite ``name`` (one of :data:`SUITES`, or ``"flooding"``) as a ``tiles`` mosaic of
    scenes drawn from one seed: ``image`` (float32) and integer ``labels``.

    Examples
    --------
    >>> image, labels = suite("uniform", seed=0, tiles=(1, 2))
    >>> image.shape, float(image[0, 0])
    ((256, 512), 0.0)
    """
    if name == "flooding":
        return flooding(seed, tiles)
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; choose from {('flooding', *SUITES)}")
    rng = np.random.default_rng(seed)
    ty, tx = tiles
    t = SUITE_TILES.get(name, SUITE_TILE)
    image = np.zeros((ty * t, tx * t), np.float32)
    labels = np.zeros(image.shape, np.int32)
    for i in range(ty):
        for j in range(tx):
            img, lab = SUITES[name](rng, t)
            sl = np.s_[i * t : (i + 1) * t, j * t : (j + 1) * t]
            image[sl] = img
            labels[sl] = np.where(lab > 0, lab + labels.max(), 0)
    return image, labels


def write_suite(out, name: str, seed: int = 0, tiles: tuple[int, int] = (3, 3)) -> dict:
    """Write :func:`suite` ``name`` as ``image.tif`` and ``labels.tif`` into folder ``out``; returns
    their paths, the shape and the number of objects."""
    from pathlib import Path

    import tifffile

    image, labels = suite(name, seed, tiles)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(out / "image.tif", image)
    tifffile.imwrite(out / "labels.tif", labels)
    n = int(labels.max())
    return {"image": out / "image.tif", "labels": out / "labels.tif", "shape": image.shape, "objects": n}
