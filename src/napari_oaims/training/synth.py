"""Procedural training data: domain-randomised images with instance labels.

Each sample is a square image with 1-14 instances of random kind (ellipses, star-convex blobs,
elastically deformed blobs, tubes and branching structures), which may touch and occlude each
other, over a random textured background, with random polarity, contrast, texture, blur,
Poisson and Gaussian noise, gamma and uneven illumination; optionally cell-like scenes and the
scene kinds of :mod:`napari_oaims.training.scenes`. Nothing here reads real data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.draw import ellipse, line, polygon
from skimage.transform import resize

KINDS = ("ellipse", "star", "deformed", "tube", "branch")
#: Scene kinds beyond the general and cell-like scenes (:mod:`napari_oaims.training.scenes`).
SCENES = (
    "nested",
    "dark_in_texture",
    "thin",
    "touching",
    "speckle",
    "histology",
    "gradient",
    "halo",
    "lesion",
    "cavity",
)


@dataclass(frozen=True)
class SynthSettings:
    """Ranges of the domain randomisation (recorded in the weights config)."""

    size: int = 128
    max_objects: int = 14
    radius: tuple[float, float] = (4.0, 40.0)
    level: tuple[float, float] = (0.4, 1.0)  # per-object brightness, as a share of the contrast
    kind_weights: tuple[float, ...] = (0.35, 0.3, 0.15, 0.1, 0.1)
    blur_sigma: tuple[float, float] = (0.0, 2.0)
    photons: tuple[float, float] = (5.0, 300.0)
    gaussian_noise: tuple[float, float] = (0.0, 0.15)
    p_inverted: float = 0.3
    #: Share of samples rendered as an upsampled low-resolution image, and the largest factor.
    #: Inference windows of small objects are enlarged (a 64 px window -> 128 working px), so
    #: their noise and texture are coarser than one working pixel. 0 (default): no such samples.
    p_lowres: float = 0.0
    lowres_factor: float = 3.0
    #: Share of samples drawn as a cell-like scene: only ellipses and star-convex blobs of
    #: radius ``blob_radius``, placed without overlap, over a smooth background, with
    #: brightness ``blob_level`` (dim beside bright objects, as in fluorescent nuclei). The
    #: general scenes make a single click very ambiguous, so a model trained on them alone
    #: answers a first click on a plain blob with a cautious small mask. 0 (default): none.
    p_blob_scene: float = 0.0
    blob_radius: tuple[float, float] = (5.0, 22.0)
    blob_level: tuple[float, float] = (0.15, 1.0)
    #: Blur of the cell-like scenes. Widefield nuclei have soft edges (a 10-90% rise over about
    #: 7 px, a Gaussian of sigma ~2.7 px), and a 64 px window enlarged to 128 working px doubles
    #: that: much softer than the general scenes' blur. The default is the general scenes' range.
    blob_blur_sigma: tuple[float, float] = (0.0, 2.0)
    #: Share of samples drawn as each of the :data:`SCENES` (in that order; their sum at most 1):
    #: nested objects, dark structures in bright texture, thin branching objects, touching cells
    #: of one intensity, smooth fields with speckle, histology-like textures, strong gradients,
    #: soft blobs with a glow, low-contrast lesions, elongated dark cavities
    #: (:mod:`napari_oaims.training.scenes`). The rest are general or cell-like scenes.
    #: All 0 (default): none, and no extra random draw.
    scene_p: tuple[float, ...] = (0.0,) * len(SCENES)

    def __post_init__(self) -> None:
        if len(self.scene_p) != len(SCENES) or min(self.scene_p) < 0 or sum(self.scene_p) > 1 + 1e-9:
            raise ValueError(
                f"scene_p needs {len(SCENES)} non-negative shares ({', '.join(SCENES)}) "
                f"with a sum of at most 1, got {self.scene_p}"
            )
        if not 0.0 <= self.p_lowres <= 1.0:
            raise ValueError(f"p_lowres must lie in [0, 1], got {self.p_lowres}")
        if self.lowres_factor < 1.2:
            raise ValueError(f"lowres_factor must be >= 1.2, got {self.lowres_factor}")
        if not 0.0 <= self.p_blob_scene <= 1.0:
            raise ValueError(f"p_blob_scene must lie in [0, 1], got {self.p_blob_scene}")
        if len(self.kind_weights) != len(KINDS) or min(self.kind_weights) < 0 or sum(self.kind_weights) <= 0:
            raise ValueError(
                f"kind_weights needs {len(KINDS)} non-negative numbers ({', '.join(KINDS)}) "
                f"with a positive sum, got {self.kind_weights}"
            )
        if not 0.0 <= self.blob_blur_sigma[0] <= self.blob_blur_sigma[1]:
            raise ValueError(
                f"blob_blur_sigma must be a range (low, high) with 0 <= low <= high, got {self.blob_blur_sigma}"
            )
        if not 0.0 < self.level[0] <= self.level[1]:
            raise ValueError(f"level must be a range (low, high) with 0 < low <= high, got {self.level}")

    def to_dict(self) -> dict:
        return asdict(self)


def _smooth_field(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), scale, mode="wrap")
    field -= field.mean()
    std = field.std()
    return field / std if std > 0 else field


def _star(rng, size, cy, cx, r, irregular) -> tuple[np.ndarray, np.ndarray]:
    n = 48
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    coeffs = rng.normal(0, irregular, size=(4, 2)) / (np.arange(1, 5)[:, None])
    radius = np.ones(n)
    for k, (a, b) in enumerate(coeffs, start=1):
        radius += a * np.cos(k * angles) + b * np.sin(k * angles)
    radius = r * np.clip(radius, 0.3, 2.0)
    aspect = rng.uniform(0.5, 1.0)
    rot = rng.uniform(0, np.pi)
    ys = radius * np.sin(angles) * aspect
    xs = radius * np.cos(angles)
    yr = ys * np.cos(rot) - xs * np.sin(rot)
    xr = ys * np.sin(rot) + xs * np.cos(rot)
    return polygon(cy + yr, cx + xr, shape=(size, size))


def _tube(rng, size, cy, cx, r, branches) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    width = rng.uniform(1.0, max(1.5, r / 4))
    for _ in range(branches):
        y, x = cy, cx
        heading = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(3, 8))):
            heading += rng.normal(0, 0.5)
            step = rng.uniform(0.3, 0.8) * r
            ny, nx = y + step * np.sin(heading), x + step * np.cos(heading)
            rr, cc = line(int(y), int(x), int(ny), int(nx))
            ok = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size)
            mask[rr[ok], cc[ok]] = True
            y, x = ny, nx
    return ndimage.distance_transform_edt(~mask) <= width


def _elastic(rng, mask: np.ndarray, strength: float) -> np.ndarray:
    size = mask.shape[0]
    dy = _smooth_field(rng, size, 8) * strength
    dx = _smooth_field(rng, size, 8) * strength
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    return ndimage.map_coordinates(mask.astype(np.float32), [yy + dy, xx + dx], order=1, mode="constant") > 0.5


def object_mask(rng: np.random.Generator, size: int, kind: str, radius: tuple[float, float]) -> np.ndarray:
    """One random object of ``kind`` somewhere in a ``size x size`` frame."""
    r = float(np.exp(rng.uniform(np.log(radius[0]), np.log(radius[1]))))
    cy, cx = rng.uniform(0.1 * size, 0.9 * size, size=2)
    return shape_at(rng, size, kind, cy, cx, r)


def shape_at(rng: np.random.Generator, size: int, kind: str, cy: float, cx: float, r: float) -> np.ndarray:
    """One random object of ``kind`` and size ``r`` centred at (``cy``, ``cx``) in a ``size x size`` frame."""
    mask = np.zeros((size, size), bool)
    if kind == "ellipse":
        rr, cc = ellipse(cy, cx, r * rng.uniform(0.5, 1.0), r, shape=(size, size), rotation=rng.uniform(0, np.pi))
        mask[rr, cc] = True
    elif kind == "star":
        rr, cc = _star(rng, size, cy, cx, r, irregular=rng.uniform(0.05, 0.35))
        mask[rr, cc] = True
    elif kind == "deformed":
        rr, cc = _star(rng, size, cy, cx, r, irregular=rng.uniform(0.1, 0.3))
        mask[rr, cc] = True
        mask = _elastic(rng, mask, strength=rng.uniform(1.0, 4.0))
    elif kind == "tube":
        mask = _tube(rng, size, cy, cx, r, branches=1)
    else:
        mask = _tube(rng, size, cy, cx, r, branches=int(rng.integers(2, 5)))
    return mask


def sample(rng: np.random.Generator, settings: SynthSettings = SynthSettings()) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic image (float32, arbitrary range) and its instance labels (int32, 0 = bg).

    With ``settings.scene_p`` a share of the samples is drawn as one of the :data:`SCENES`
    (:mod:`napari_oaims.training.scenes`); the rest are general or cell-like scenes.
    """
    s = settings
    if sum(s.scene_p) > 0:  # no random draw when every scene kind is off
        from napari_oaims.training import scenes

        u, edges = rng.random(), np.cumsum(s.scene_p)
        if u < edges[-1]:
            kind = SCENES[int(np.searchsorted(edges, u, side="right"))]
            image, labels, blur, p_inverted = scenes.draw(kind, rng, s)
            return finish(rng, image, s, blur, p_inverted), labels
    blob = s.p_blob_scene > 0 and rng.random() < s.p_blob_scene  # no random draw when off
    image, out = _general_scene(rng, s, blob)
    return finish(rng, image, s, s.blob_blur_sigma if blob else s.blur_sigma, s.p_inverted), out


def relabel(labels: np.ndarray, min_area: int = 12) -> np.ndarray:
    """Consecutive ids 1..n for the instances of ``labels`` with at least ``min_area`` pixels."""
    ids = [i for i in np.unique(labels) if i and np.count_nonzero(labels == i) >= min_area]
    out = np.zeros_like(labels)
    for new, old in enumerate(ids, start=1):
        out[labels == old] = new
    return out


def _general_scene(rng: np.random.Generator, s: SynthSettings, blob: bool) -> tuple[np.ndarray, np.ndarray]:
    """Objects of random kind over a textured background (or a cell-like scene): image before
    polarity, illumination, blur and noise, and its labels."""
    size = s.size
    labels = np.zeros((size, size), np.int32)
    n = int(rng.integers(1, s.max_objects + 1))
    weights = np.asarray(s.kind_weights if not blob else (0.6, 0.4, 0, 0, 0), float)
    weights /= weights.sum()
    radius = s.blob_radius if blob else s.radius
    # Clustered layouts make touching instances common.
    for i in range(1, n + 1):
        kind = KINDS[rng.choice(len(KINDS), p=weights)]
        mask = object_mask(rng, size, kind, radius)
        if blob:
            if (mask & (labels > 0)).sum() > 0.2 * mask.sum():
                continue  # cells mostly do not overlap; a small overlap makes touching pairs
            mask &= labels == 0
        elif rng.random() < 0.5:  # occluded by what is already there -> touching instances
            mask &= labels == 0
        labels[mask] = i
    out = relabel(labels)

    # Intensities: background field, per-object level + texture, optional rim or dark spots.
    bg_level = rng.uniform(0.0, 0.4)
    image = bg_level + rng.uniform(0.0, 0.15 if not blob else 0.04) * _smooth_field(rng, size, rng.uniform(2, 20))
    texture = _smooth_field(rng, size, rng.uniform(0.7, 4))
    contrast = rng.uniform(0.15, 1.0)
    for i in range(1, out.max() + 1):
        m = out == i
        level = bg_level + contrast * rng.uniform(*(s.blob_level if blob else s.level))
        image[m] = level + rng.uniform(0.0, 0.3) * contrast * texture[m]
        if not blob and rng.random() < 0.2:  # bright rim, membrane-like
            rim = m & ~ndimage.binary_erosion(m, iterations=int(rng.integers(1, 3)))
            image[rim] += contrast * rng.uniform(0.2, 0.6)
    if not blob and rng.random() < 0.15:  # distractor blobs that are not labelled (debris)
        for _ in range(int(rng.integers(1, 6))):
            m = object_mask(rng, size, "ellipse", (2.0, 6.0)) & (out == 0)
            image[m] += contrast * rng.uniform(0.3, 1.0)
    return image, out


def finish(
    rng: np.random.Generator, image: np.ndarray, s: SynthSettings, blur: tuple[float, float], p_inverted: float
) -> np.ndarray:
    """Polarity, uneven illumination, blur, gamma, optional low resolution, Poisson and Gaussian
    noise and an arbitrary raw range: the rendering shared by every scene kind."""
    size = image.shape[0]
    if rng.random() < p_inverted:
        image = image.max() - image
    # Uneven illumination, blur, gamma, noise.
    if rng.random() < 0.4:
        yy, xx = np.mgrid[:size, :size] / size
        image = image * (1 + rng.uniform(-0.6, 0.6) * (yy - 0.5) + rng.uniform(-0.6, 0.6) * (xx - 0.5))
    image = ndimage.gaussian_filter(image, rng.uniform(*blur))
    image = np.clip(image - image.min(), 0, None)
    image = image / max(image.max(), 1e-6)
    image = image ** rng.uniform(0.6, 1.6)
    factor = 1.0
    if s.p_lowres > 0 and rng.random() < s.p_lowres:
        factor = float(rng.uniform(1.2, s.lowres_factor))
        image = ndimage.zoom(image, 1.0 / factor, order=1, grid_mode=True, mode="nearest")
    if rng.random() < 0.7:
        photons = float(np.exp(rng.uniform(np.log(s.photons[0]), np.log(s.photons[1]))))
        image = rng.poisson(image * photons) / photons
    image = image + rng.normal(0, rng.uniform(*s.gaussian_noise), size=image.shape)
    if factor > 1.0:  # back to the label grid, as a window is resized to the working size
        image = resize(image, (size, size), order=1, mode="edge", anti_aliasing=False)
    scale = rng.uniform(0.5, 1000.0)  # arbitrary raw range: the model must rely on normalisation
    return (image * scale + rng.uniform(0, 100)).astype(np.float32)


def mosaic(
    rng: np.random.Generator, tiles: int = 4, settings: SynthSettings = SynthSettings()
) -> tuple[np.ndarray, np.ndarray]:
    """A ``tiles x tiles`` grid of samples as one image (float32 in about [0, 1]) and its labels.

    Each tile is put on a common intensity scale (its 1-99.8 percentile range) before it is
    placed, so that whole-image normalisation treats every tile alike. Used as a synthetic
    validation set for choosing training recipes without touching real data.
    """
    from napari_oaims.core.guidance import normalise, robust_range

    if tiles < 1:
        raise ValueError(f"tiles must be >= 1, got {tiles}")
    size = settings.size
    image = np.zeros((tiles * size, tiles * size), np.float32)
    labels = np.zeros(image.shape, np.int32)
    for ty in range(tiles):
        for tx in range(tiles):
            img, lab = sample(rng, settings)
            sl = np.s_[ty * size : (ty + 1) * size, tx * size : (tx + 1) * size]
            image[sl] = normalise(img, *robust_range(img))
            labels[sl] = np.where(lab > 0, lab + labels.max(), 0)
    return image, labels


def write_mosaic(out: str | Path, tiles: int = 4, seed: int = 1000, settings: SynthSettings = SynthSettings()) -> dict:
    """Write a :func:`mosaic` of seed ``seed`` as ``image.tif`` and ``labels.tif`` into folder ``out``
    (a synthetic validation pair); returns their paths, the shape and the number of objects."""
    import tifffile

    image, labels = mosaic(np.random.default_rng(seed), tiles, settings)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(out / "image.tif", image)
    tifffile.imwrite(out / "labels.tif", labels)
    return {
        "image": out / "image.tif",
        "labels": out / "labels.tif",
        "shape": image.shape,
        "objects": int(labels.max()),
    }


def volume(
    rng: np.random.Generator, shape: tuple[int, int, int] = (32, 96, 96), n_objects: int = 6
) -> tuple[np.ndarray, np.ndarray]:
    """A small 3D stack of deformed ellipsoids and a tube, with noise and blur (sample data, tests)."""
    zz, yy, xx = np.mgrid[: shape[0], : shape[1], : shape[2]].astype(np.float32)
    labels = np.zeros(shape, np.int32)
    for i in range(1, n_objects + 1):
        c = rng.uniform(0.2, 0.8, size=3) * np.asarray(shape)
        r = rng.uniform(0.1, 0.22, size=3) * np.asarray(shape)
        r[0] = max(r[0], 3)
        warp = 1 + 0.15 * np.sin(yy / rng.uniform(4, 10) + rng.uniform(0, 6))
        inside = ((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + ((xx - c[2]) / r[2]) ** 2 <= warp
        labels[inside & (labels == 0)] = i
    image = np.where(labels > 0, 0.6 + 0.3 * rng.random(n_objects + 1)[labels], 0.1).astype(np.float32)
    image = ndimage.gaussian_filter(image, (1.0, 1.5, 1.5))
    image = rng.poisson(image * 60) / 60 + rng.normal(0, 0.03, size=shape)
    return (image * 1000).astype(np.float32), labels
