"""Scene kinds of the procedural training data beyond isolated objects.

Each scene mimics a layout that real images have and isolated blobs lack: objects nested in
others, dark structures inside bright texture next to other dark structures, thin curved and
branching objects, touching cells of one intensity, smooth fields with speckle (MRI and
ultrasound-like), colour-free histology-like textures, strong intensity gradients and soft
blobs with a glow past their edge, low-contrast lesions in smooth tissue and elongated dark
cavities in bright tissue. A scene
function returns the clean image (before :func:`napari_oaims.training.synth.finish` adds
polarity, illumination, blur and noise), its instance labels, the blur range and the
probability of inverting it. Every instance is a region of one appearance: an object inside
another is its own instance and is cut out of the outer one. Nothing here reads real data.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage
from skimage.draw import disk, ellipse, line

from napari_oaims.training import synth

Scene = tuple[np.ndarray, np.ndarray, tuple[float, float], float]


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Zero-mean, unit-std texture mixing a fine and a coarse scale."""
    fine = synth._smooth_field(rng, size, rng.uniform(0.7, 2.0))
    coarse = synth._smooth_field(rng, size, rng.uniform(3.0, 10.0))
    w = rng.uniform(0.2, 0.8)
    t = w * fine + (1 - w) * coarse
    return t / max(t.std(), 1e-6)


def _blob(rng: np.random.Generator, size: int, cy: float, cx: float, r: float) -> np.ndarray:
    return synth.shape_at(rng, size, str(rng.choice(["ellipse", "star", "deformed"])), cy, cx, r)


def nested(rng: np.random.Generator, s: synth.SynthSettings) -> Scene:
    """Large objects holding smaller objects (down to three levels), each brighter or darker than
    its parent: cells with nuclei, nuclei with nucleoli, tumour cores in oedema."""
    size = s.size
    labels = np.zeros((size, size), np.int32)
    bg = rng.uniform(0.2, 0.6)
    image = bg + 0.05 * synth._smooth_field(rng, size, rng.uniform(4, 20))
    tex = _texture(rng, size)
    nid = 0

    def fill(mask: np.ndarray, parent_level: float, depth: int) -> None:
        nonlocal nid
        nid += 1
        labels[mask] = nid
        level = parent_level + rng.choice([-1.0, 1.0]) * rng.uniform(0.12, 0.45)
        image[mask] = level + rng.uniform(0.0, 0.12) * tex[mask]
        if depth >= 3 or rng.random() < 0.25 * depth:
            return
        core = ndimage.binary_erosion(mask, iterations=2)
        if core.sum() < 30:
            return
        radius = np.sqrt(mask.sum() / np.pi)
        pts = np.argwhere(core)
        for _ in range(int(rng.integers(1, 5))):
            cy, cx = pts[int(rng.integers(len(pts)))]
            inner = _blob(rng, size, cy, cx, max(3.0, rng.uniform(0.25, 0.6) * radius)) & core & (labels == nid)
            if inner.sum() >= 12:
                fill(inner, level, depth + 1)

    for _ in range(int(rng.integers(1, 4))):
        outer = synth.object_mask(rng, size, str(rng.choice(["ellipse", "star", "deformed"])), (14.0, 50.0))
        outer &= labels == 0
        if outer.sum() >= 150:
            fill(outer, bg, 1)
    return image, synth.relabel(labels), s.blur_sigma, 0.3


def dark_in_texture(rng: np.random.Generator, s: synth.SynthSettings) -> Scene:
    """Dark structures inside bright textured tissue, next to other dark structures: each has a
    neighbour of similar darkness at a gap of 0-3 px (no gap: a slightly different level)."""
    size = s.size
    labels = np.zeros((size, size), np.int32)
    tissue_level = rng.uniform(0.5, 0.8)
    image = tissue_level + rng.uniform(0.08, 0.25) * _texture(rng, size)
    if rng.random() < 0.5:  # the tissue ends: dark outside, like the space around an organ
        outside = synth._smooth_field(rng, size, rng.uniform(15, 30)) > rng.uniform(0.6, 1.5)
        image[outside] = rng.uniform(0.0, 0.2) + 0.03 * synth._smooth_field(rng, size, 3)[outside]
    tex = _texture(rng, size)
    nid = 0
    for _ in range(int(rng.integers(2, 8))):
        r = _log_uniform(rng, 3.5, 16.0)
        cy, cx = rng.uniform(0.1 * size, 0.9 * size, size=2)
        kind = str(rng.choice(["ellipse", "star", "deformed", "tube"], p=[0.35, 0.3, 0.2, 0.15]))
        a = synth.shape_at(rng, size, kind, cy, cx, r) & (labels == 0)
        if a.sum() < 12:
            continue
        level = rng.uniform(0.0, 0.3)
        nid += 1
        labels[a] = nid
        image[a] = level + rng.uniform(0.0, 0.06) * tex[a]
        if rng.random() < 0.8:  # a dark neighbour
            rb = _log_uniform(rng, 3.0, 20.0)
            ang = rng.uniform(0, 2 * np.pi)
            dist = np.sqrt(a.sum() / np.pi) + rb
            by, bx = cy + dist * np.sin(ang), cx + dist * np.cos(ang)
            b = synth.shape_at(rng, size, str(rng.choice(["ellipse", "star", "deformed"])), by, bx, rb)
            gap = int(rng.integers(0, 4))
            b &= (labels == 0) & ~(ndimage.binary_dilation(a, iterations=gap) if gap else a)
            if b.sum() >= 12:
                nid += 1
                labels[b] = nid
                delta = rng.uniform(0.0, 0.08) if gap else rng.uniform(0.06, 0.2)
                image[b] = np.clip(level + rng.choice([-1.0, 1.0]) * delta, 0, None) + 0.04 * tex[b]
    return image, synth.relabel(labels), s.blur_sigma, 0.15


def _curve(rng: np.random.Generator, size: int, width: float, branches: int) -> np.ndarray:
    """A smooth curve of ``width`` px with side branches that start on it and thin out."""
    skel = np.zeros((size, size), bool)
    wide = np.zeros((size, size), np.float32)
    starts = [(rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.9) * size, rng.uniform(0, 2 * np.pi), width)]
    drawn = []
    for b in range(branches):
        if b > 0 and drawn:
            y, x = drawn[int(rng.integers(len(drawn)))]
            starts.append((y, x, rng.uniform(0, 2 * np.pi), max(0.7, width * rng.uniform(0.5, 0.9))))
        y, x, heading, w = starts[-1]
        turn = rng.normal(0, 0.15)
        for _ in range(int(rng.integers(6, 20))):
            turn = 0.7 * turn + rng.normal(0, 0.12)
            heading += turn
            step = rng.uniform(3, 8)
            ny, nx = y + step * np.sin(heading), x + step * np.cos(heading)
            rr, cc = line(int(y), int(x), int(ny), int(nx))
            ok = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size)
            skel[rr[ok], cc[ok]] = True
            wide[rr[ok], cc[ok]] = np.maximum(wide[rr[ok], cc[ok]], w)
            drawn += list(zip(rr[ok], cc[ok]))
            y, x = ny, nx
            if not (-10 < y < size + 10 and -10 < x < size + 10):
                break
    if not skel.any():
        return skel
    dist, idx = ndimage.distance_transform_edt(~skel, return_indices=True)
    return dist <= wide[idx[0], idx[1]]


def thin(rng: np.random.Generator, s: synth.SynthSettings) -> Scene:
    """Thin, curved and branching objects (vessels, neurites, fibres) of width 1-10 px that may
    cross, over a textured background, sometimes beside blobs."""
    size = s.size
    labels = np.zeros((size, size), np.int32)
    bg = rng.uniform(0.0, 0.4)
    image = bg + rng.uniform(0.0, 0.12) * _texture(rng, size)
    tex = _texture(rng, size)
    contrast = rng.uniform(0.2, 1.0)
    for i in range(1, int(rng.integers(1, 6)) + 1):
        if rng.random() < 0.25:
            m = synth.object_mask(rng, size, "ellipse", (4.0, 14.0))
        else:
            m = _curve(rng, size, _log_uniform(rng, 0.7, 5.0), int(rng.integers(1, 6)))
        if rng.random() < 0.5:
            m &= labels == 0
        labels[m] = i
        image[m] = bg + contrast * rng.uniform(0.3, 1.0) + rng.uniform(0.0, 0.2) * contrast * tex[m]
    return image, synth.relabel(labels), (0.0, 1.5), s.p_inverted


def touching(rng: np.random.Generator, s: synth.SynthSettings) -> Scene:
    """Clusters of touching cells of one intensity, split by their shapes (a weighted Voronoi
    of overlapping disks) and at most a faint line between them."""
    size = s.size
    labels = np.zeros((size, size), np.int32)
    bg = rng.uniform(0.0, 0.3)
    image = bg + rng.uniform(0.0, 0.04) * synth._smooth_field(rng, size, rng.uniform(4, 20))
    tex = _texture(rng, size)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    nid = 0
    for _ in range(int(rng.integers(1, 3))):
        seeds: list[tuple[float, float, float]] = []
        first = (rng.uniform(0.2, 0.8) * size, rng.uniform(0.2, 0.8) * size, _log_uniform(rng, 6.0, 18.0))
        seeds.append(first)
        for _ in range(int(rng.integers(1, 10))):
            py, px, pr = seeds[int(rng.integers(len(seeds)))]
            r = pr * rng.uniform(0.7, 1.3)
            ang = rng.uniform(0, 2 * np.pi)
            d = (pr + r) * rng.uniform(0.6, 0.95)
            seeds.append((py + d * np.sin(ang), px + d * np.cos(ang), float(np.clip(r, 4.0, 25.0))))
        scaled = np.stack([np.hypot(yy - y, xx - x) / r for y, x, r in seeds])
        cell = np.argmin(scaled, axis=0)
        inside = np.min(scaled, axis=0) <= 1.0
        inside = synth._elastic(rng, inside, rng.uniform(0.5, 2.0)) & (labels == 0)
        level = bg + rng.uniform(0.25, 0.9)
        line_strength = rng.uniform(0.0, 0.25) if rng.random() < 0.5 else 0.0
        for k in range(len(seeds)):
            m = inside & (cell == k)
            if m.sum() < 12:
                continue
            nid += 1
            labels[m] = nid
            image[m] = level + rng.normal(0, 0.02) + rng.uniform(0.0, 0.1) * tex[m]
        if line_strength:
            edges = inside & (ndimage.maximum_filter(cell, 3) != ndimage.minimum_filter(cell, 3))
            image[edges] -= line_strength * (level - bg)
    return image, synth.relabel(labels), (0.0, 3.0), s.p_inverted


def speckle(rng: np.random.Generator, s: synth.SynthSettings) -> Scene:
    """Piecewise-smooth regions over a smooth field, with multiplicative speckle (ultrasound-like)
    or Rician noise (MRI-like) added before the shared rendering."""
    size = s.size
    labels = np.zeros((size, size), np.int32)
    image = rng.uniform(0.2, 0.5) + rng.uniform(0.05, 0.2) * synth._smooth_field(rng, size, rng.uniform(10, 30))
    for i in range(1, int(rng.integers(1, 7)) + 1):
        m = synth.object_mask(rng, size, str(rng.choice(["ellipse", "star", "deformed"])), (5.0, 40.0))
        if rng.random() < 0.6:
            m &= labels == 0
        labels[m] = i
        shade = rng.uniform(0.0, 0.1) * synth._smooth_field(rng, size, rng.uniform(6, 20))
        image[m] = np.clip(image[m] + rng.choice([-1.0, 1.0]) * rng.uniform(0.12, 0.5), 0.02, None) + shade[m]
    image = np.clip(ndimage.gaussian_filter(image, rng.uniform(0.0, 1.5)), 0.01, None)
    if rng.random() < 0.5:  # ultrasound: fully developed speckle, spatially correlated
        looks = rng.uniform(1.0, 8.0)
        noise = rng.gamma(looks, 1.0 / looks, size=image.shape)
        noise = ndimage.gaussian_filter(noise, rng.uniform(0.5, 1.5))
        image = image * noise / noise.mean()
    else:  # MRI magnitude image: Rician noise
        sigma = rng.uniform(0.02, 0.12)
        image = np.hypot(image + rng.normal(0, sigma, image.shape), rng.normal(0, sigma, image.shape))
    return image.astype(np.float32), synth.relabel(labels), (0.0, 0.5), 0.15


def histology(rng: np.random.Generator, s: synth.SynthSettings) -> Scene:
    """Colour-free histology-like textures: fibrous stroma dotted with small nuclei, holding
    either glands (granular regions with a ring of nuclei, maybe a lumen) or large nuclei."""
    size = s.size
    labels = np.zeros((size, size), np.int32)
    noise = rng.standard_normal((size, size)).astype(np.float32)
    fibres = ndimage.gaussian_filter(noise, (rng.uniform(0.6, 1.2), rng.uniform(3.0, 8.0)), mode="wrap")
    fibres = ndimage.rotate(fibres, rng.uniform(0, 180), reshape=False, mode="wrap")
    fibres /= max(fibres.std(), 1e-6)
    stroma = rng.uniform(0.55, 0.85)
    image = stroma + rng.uniform(0.05, 0.15) * fibres + 0.05 * synth._smooth_field(rng, size, 15)
    dots = np.zeros((size, size), bool)
    for _ in range(int(rng.integers(15, 90))):
        rr, cc = disk(rng.uniform(0, size, 2), rng.uniform(1.2, 3.0), shape=(size, size))
        dots[rr, cc] = True
    nid = 0
    if rng.random() < 0.5:  # glands
        for _ in range(int(rng.integers(1, 5))):
            g = synth.object_mask(rng, size, "deformed", (10.0, 35.0)) & (labels == 0)
            if g.sum() < 80:
                continue
            nid += 1
            labels[g] = nid
            grain = ndimage.gaussian_filter(rng.standard_normal((size, size)), 0.8)
            image[g] = stroma - rng.uniform(0.1, 0.35) + 0.06 * grain[g] / max(grain.std(), 1e-6)
            ring = g & ~ndimage.binary_erosion(g, iterations=int(rng.integers(2, 4)))
            dots |= ring & (rng.random((size, size)) < 0.5)
            core = ndimage.binary_erosion(g, iterations=5)
            if core.sum() > 40 and rng.random() < 0.6:
                pts = np.argwhere(core)
                cy, cx = pts[int(rng.integers(len(pts)))]
                lumen = _blob(rng, size, cy, cx, np.sqrt(core.sum() / np.pi) * rng.uniform(0.3, 0.7)) & core
                if lumen.sum() >= 12:
                    nid += 1
                    labels[lumen] = nid
                    image[lumen] = rng.uniform(0.85, 1.0) + 0.02 * fibres[lumen]
        rims = (labels > 0) & ~ndimage.binary_erosion(labels > 0, iterations=3)
        image[dots & ((labels == 0) | rims)] = rng.uniform(0.05, 0.3)
    else:  # large nuclei among small ones
        image[dots] = rng.uniform(0.1, 0.35)
        for _ in range(int(rng.integers(3, 14))):
            m = synth.object_mask(rng, size, str(rng.choice(["ellipse", "star"])), (3.5, 10.0)) & (labels == 0)
            if m.sum() < 12:
                continue
            nid += 1
            labels[m] = nid
            chrom = ndimage.gaussian_filter(rng.standard_normal((size, size)), 0.7)
            image[m] = rng.uniform(0.05, 0.35) + 0.08 * chrom[m] / max(chrom.std(), 1e-6)
    return image.astype(np.float32), synth.relabel(labels), (0.0, 1.5), 0.15


def gradient(rng: np.random.Generator, s: synth.SynthSettings) -> Scene:
    """General objects under a strong intensity gradient (linear ramp or radial bias field)
    as large as the object contrast: one threshold cannot separate them."""
    size = s.size
    image, labels = synth._general_scene(rng, s, blob=False)
    yy, xx = np.mgrid[:size, :size].astype(np.float32) / size
    if rng.random() < 0.5:
        ang = rng.uniform(0, 2 * np.pi)
        ramp = (yy - 0.5) * np.sin(ang) + (xx - 0.5) * np.cos(ang)
    else:
        cy, cx = rng.uniform(-0.2, 1.2, size=2)
        ramp = -np.hypot(yy - cy, xx - cx)
        ramp -= ramp.mean()
    ramp /= max(np.ptp(ramp), 1e-6)
    spread = max(float(np.ptp(image)), 0.1)
    image = image + rng.uniform(0.5, 1.5) * spread * ramp
    image = (image - image.min()) * (1 + rng.uniform(0.5, 3.0) * (ramp - ramp.min()))
    return image.astype(np.float32), labels, s.blur_sigma, s.p_inverted


def halo(rng: np.random.Generator, s: synth.SynthSettings) -> Scene:
    """Cell-like blobs with soft, dome-shaped profiles and a dim glow reaching past their edge
    (out-of-focus light of widefield nuclei): the labelled object is the dome, not the glow, so
    the edge lies part-way down a soft ramp."""
    size = s.size
    labels = np.zeros((size, size), np.int32)
    image = rng.uniform(0.0, 0.3) + 0.03 * synth._smooth_field(rng, size, rng.uniform(4, 20))
    glow = np.zeros((size, size), np.float32)
    contrast = rng.uniform(0.3, 1.0)
    n = 0
    for _ in range(int(rng.integers(2, 12))):
        mask = synth.object_mask(rng, size, str(rng.choice(["ellipse", "star"])), s.blob_radius)
        if (mask & (labels > 0)).any() or mask.sum() < 20:
            continue
        n += 1
        labels[mask] = n
        depth = ndimage.distance_transform_edt(mask)
        dome = np.sqrt(np.clip(depth / max(depth.max(), 1e-6), 0, 1))  # dim edge, bright middle
        level = contrast * rng.uniform(*s.blob_level)
        image[mask] += level * (rng.uniform(0.3, 0.7) + rng.uniform(0.3, 0.7) * dome[mask])
        glow += rng.uniform(0.15, 0.45) * level * ndimage.gaussian_filter(mask.astype(np.float32), rng.uniform(2, 6))
    image = image + glow
    return image.astype(np.float32), synth.relabel(labels), (1.0, max(1.0, s.blob_blur_sigma[1])), 0.2


def _tissue(rng: np.random.Generator, size: int, spread: float) -> tuple[np.ndarray, np.ndarray]:
    """Textured tissue (level 0.45-0.8, texture of ``spread``) that may end in dark space: the
    image and the tissue mask."""
    image = rng.uniform(0.45, 0.8) + spread * _texture(rng, size)
    tissue = np.ones((size, size), bool)
    if rng.random() < 0.4:  # the tissue ends: dark outside, like the space around an organ
        tissue = synth._smooth_field(rng, size, rng.uniform(15, 30)) < rng.uniform(0.6, 1.5)
        image[~tissue] = rng.uniform(0.0, 0.15) + 0.02 * synth._smooth_field(rng, size, 3)[~tissue]
    return image, tissue


def lesion(rng: np.random.Generator, s: synth.SynthSettings) -> Scene:
    """Low-contrast lesions in smooth textured tissue (CT/MRI-like): 1-5 soft-edged regions whose
    level differs from the tissue's by 0.04-0.15 (one to a few times its texture), under a slow
    shading of the same size, so the edge is found only by comparing regions, not by a threshold."""
    size = s.size
    spread = rng.uniform(0.01, 0.05)
    image, tissue = _tissue(rng, size, spread)
    image += rng.uniform(0.0, 0.06) * synth._smooth_field(rng, size, rng.uniform(12, 30)) * tissue
    labels = np.zeros((size, size), np.int32)
    inner = ndimage.binary_erosion(tissue, iterations=4)
    nid = 0
    for _ in range(int(rng.integers(1, 6))):
        r = _log_uniform(rng, 3.5, 0.3 * size)
        cy, cx = rng.uniform(0.1 * size, 0.9 * size, size=2)
        m = _blob(rng, size, cy, cx, r) & (labels == 0) & inner
        if m.sum() < 12:
            continue
        nid += 1
        labels[m] = nid
        delta = rng.choice([-1.0, 1.0]) * rng.uniform(0.04, 0.15)
        soft = ndimage.gaussian_filter(m.astype(np.float32), rng.uniform(0.0, 1.5))
        image += delta * soft + m * rng.uniform(0.0, 0.5) * spread * _texture(rng, size)
    return image.astype(np.float32), synth.relabel(labels), (0.0, 1.5), 0.15


def cavity(rng: np.random.Generator, s: synth.SynthSettings) -> Scene:
    """Elongated dark cavities (ducts, vessels in section, clefts) in bright textured tissue:
    straight or curved, 2-10 px wide and 3-8 times as long, darker than the tissue by far more
    than its texture, with dark distractors that are not labelled."""
    size = s.size
    image, tissue = _tissue(rng, size, rng.uniform(0.04, 0.12))
    labels = np.zeros((size, size), np.int32)
    inner = ndimage.binary_erosion(tissue, iterations=3)
    tex = _texture(rng, size)
    nid = 0
    for _ in range(int(rng.integers(1, 6))):
        half = rng.uniform(1.0, 5.0)
        cy, cx = rng.uniform(0.1 * size, 0.9 * size, size=2)
        if rng.random() < 0.5:
            m = np.zeros((size, size), bool)
            length = half * rng.uniform(3.0, 8.0)
            rr, cc = ellipse(cy, cx, half, length, shape=(size, size), rotation=rng.uniform(0, np.pi))
            m[rr, cc] = True
        else:
            skel = np.zeros((size, size), bool)
            heading, y, x = rng.uniform(0, 2 * np.pi), cy, cx
            for _ in range(int(rng.integers(2, 6))):
                heading += rng.normal(0, 0.4)
                ny, nx = y + 6 * np.sin(heading), x + 6 * np.cos(heading)
                rr, cc = line(int(y), int(x), int(ny), int(nx))
                ok = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size)
                skel[rr[ok], cc[ok]] = True
                y, x = ny, nx
            m = ndimage.distance_transform_edt(~skel) <= half if skel.any() else skel
        m &= (labels == 0) & inner
        if m.sum() < 12:
            continue
        nid += 1
        labels[m] = nid
        image[m] = rng.uniform(0.05, 0.3) + 0.04 * tex[m]
    for _ in range(int(rng.integers(0, 4))):  # unlabelled dark specks: the tissue's own texture
        d = synth.object_mask(rng, size, "ellipse", (1.0, 2.5)) & (labels == 0)
        image[d] = rng.uniform(0.1, 0.35)
    return image.astype(np.float32), synth.relabel(labels), (0.0, 1.2), 0.15


GENERATORS: dict[str, Callable[[np.random.Generator, synth.SynthSettings], Scene]] = {
    "nested": nested,
    "dark_in_texture": dark_in_texture,
    "thin": thin,
    "touching": touching,
    "speckle": speckle,
    "histology": histology,
    "gradient": gradient,
    "halo": halo,
    "lesion": lesion,
    "cavity": cavity,
}


def draw(kind: str, rng: np.random.Generator, s: synth.SynthSettings) -> Scene:
    """A clean scene of ``kind`` (one of :data:`napari_oaims.training.synth.SCENES`)."""
    if kind not in GENERATORS:
        raise ValueError(f"unknown scene kind {kind!r}; choose from {tuple(GENERATORS)}")
    return GENERATORS[kind](rng, s)
