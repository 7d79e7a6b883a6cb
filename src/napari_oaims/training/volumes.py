"""Procedural 3D volumes for propagation tests and benchmarks (nothing here reads real data).

Each volume holds one *target* object (label 1) of a given kind, a few neighbours (labels 2, 3,
...) that may touch it, and the nuisances a microscope adds. The target is what a propagation
benchmark carries through the stack along axis 0 (z).

Kinds (:data:`KINDS`):

* ``ellipsoid``: a smoothly deformed, rotated ellipsoid (the "smooth shape");
* ``tube``: a tube winding through the stack, its cross-section moving from slice to slice;
* ``branch``: a tube that splits into two branches (one component, then two, along z);
* ``merge``: two tubes that join into one (``branch`` upside down);
* ``abrupt``: an extruded star-convex blob with flat ends (full area, then nothing), the case
  where propagation must stop instead of growing into the empty slices beyond.

Failure kinds (:data:`FAILURE_KINDS`), each the situation where carrying an object by area and
overlap alone goes wrong:

* ``touching``: nuclei of one intensity stacked along z, the target flattened against one above
  and one beside it, with only a one-voxel seam between them (the mask walks into the neighbour
  where the target ends);
* ``bright_end``: an object that ends inside brighter tissue (beyond its end the model still
  finds "something bright" under the prior);
* ``low_contrast``: a lesion barely brighter than a textured background;
* ``wall``: a large mass pressed against a wall of similar intensity (the mask spills along the wall);
* ``stacked``: columns of 2-4 nuclei along z, each 3-11 slices thick and 0-2 slices from the next,
  overlapping in y/x, of low contrast and blurred more along z than in the plane, so that the slice
  just past a nucleus's end is about as bright as its end slice (the mask runs on through the end
  into the nucleus above or below). The target is a middle nucleus of the central column.

Nuisances (:class:`VolumeSpec`): Gaussian/Poisson noise, blur, anisotropic sampling (``z_step``:
physical z pixels per slice, so shapes change faster between slices), intensity drift along z
(bleaching: the last slice keeps ``1 - drift`` of the signal), and neighbours. :func:`volume` in
:mod:`napari_oaims.training.synth` is the older, simpler sample stack.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import ndimage

KINDS = ("ellipsoid", "tube", "branch", "merge", "abrupt")
#: Kinds built for the failures of propagation (see the module docstring).
FAILURE_KINDS = ("touching", "bright_end", "low_contrast", "wall", "stacked")
#: Shape of the failure volumes in the benchmark (z, y, x).
FAILURE_SHAPE = (28, 96, 96)
#: Kinds whose shape changes smoothly along z (the benchmark's "smooth shapes").
SMOOTH_KINDS = ("ellipsoid", "abrupt")
#: Blur along z of the ``stacked`` kind (slices), as a multiple of its in-plane blur (pixels).
STACKED_Z_BLUR = 1.5


@dataclass(frozen=True)
class VolumeSpec:
    """How one procedural volume is drawn (``seed`` makes it reproducible)."""

    kind: str = "ellipsoid"
    shape: tuple[int, int, int] = (24, 64, 64)
    seed: int = 0
    z_step: float = 1.0  # physical z per slice, in xy pixels (anisotropy); > 1: coarser z sampling
    noise: float = 0.05  # Gaussian noise, share of the object-background contrast
    photons: float = 80.0  # Poisson noise (photons at the object level); 0: none
    blur: float = 1.0  # Gaussian blur sigma (xy pixels; z is scaled by z_step)
    drift: float = 0.0  # share of the signal lost from the first to the last slice
    neighbours: int = 2

    def __post_init__(self) -> None:
        if self.kind not in KINDS + FAILURE_KINDS:
            raise ValueError(f"unknown volume kind {self.kind!r}; use one of {KINDS + FAILURE_KINDS}")
        if len(self.shape) != 3 or min(self.shape) < 4:
            raise ValueError(f"a volume shape is (z, y, x) with sides >= 4, got {self.shape}")
        if self.z_step <= 0 or not 0 <= self.drift < 1 or self.noise < 0 or self.blur < 0:
            raise ValueError("need z_step > 0, 0 <= drift < 1, noise >= 0 and blur >= 0")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d


def _smooth(rng: np.random.Generator, shape, sigma) -> np.ndarray:
    f = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    return f / max(float(f.std()), 1e-6)


def _grid(spec: VolumeSpec):
    z, y, x = spec.shape
    zz, yy, xx = np.meshgrid(
        np.arange(z, dtype=np.float32) * spec.z_step,
        np.arange(y, dtype=np.float32),
        np.arange(x, dtype=np.float32),
        indexing="ij",
    )
    return zz, yy, xx


def _ellipsoid(rng, spec: VolumeSpec, centre=None, radius=None) -> np.ndarray:
    zz, yy, xx = _grid(spec)
    zmax = spec.shape[0] * spec.z_step
    side = min(spec.shape[1:])
    if centre is None:
        centre = np.array([rng.uniform(0.35, 0.65) * zmax, *(rng.uniform(0.35, 0.65, 2) * spec.shape[1:])])
    if radius is None:
        radius = np.array([rng.uniform(0.22, 0.35) * zmax, *rng.uniform(0.14, 0.24, 2) * side])
    a = rng.uniform(0, np.pi)
    dy, dx = yy - centre[1], xx - centre[2]
    ry, rx = np.cos(a) * dy - np.sin(a) * dx, np.sin(a) * dy + np.cos(a) * dx
    r2 = ((zz - centre[0]) / radius[0]) ** 2 + (ry / radius[1]) ** 2 + (rx / radius[2]) ** 2
    warp = 1.0 + 0.18 * _smooth(rng, spec.shape, (2.0 / spec.z_step, 5.0, 5.0))
    return r2 <= warp


def _centreline(rng, spec: VolumeSpec, start, amplitude) -> np.ndarray:
    """(z, 2) in-plane centre per slice: a smooth random walk from ``start``."""
    n = spec.shape[0]
    t = np.arange(n) * spec.z_step
    out = np.empty((n, 2))
    for k in range(2):
        w, phase = rng.uniform(0.08, 0.2), rng.uniform(0, 2 * np.pi)
        out[:, k] = start[k] + amplitude * (np.sin(w * t + phase) - np.sin(phase))
    return out


def _tube_slices(spec: VolumeSpec, centres: np.ndarray, radius: np.ndarray, z0: int, z1: int) -> np.ndarray:
    _, h, w = spec.shape
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    out = np.zeros(spec.shape, bool)
    for z in range(max(z0, 0), min(z1, spec.shape[0])):
        out[z] = (yy - centres[z, 0]) ** 2 + (xx - centres[z, 1]) ** 2 <= radius[z] ** 2
    return out


def _tube(rng, spec: VolumeSpec) -> np.ndarray:
    n, h, w = spec.shape
    side = min(h, w)
    start = np.array([h, w]) * rng.uniform(0.35, 0.65, 2)
    centres = _centreline(rng, spec, start, amplitude=rng.uniform(0.06, 0.14) * side)
    radius = rng.uniform(0.07, 0.11) * side * (1 + 0.15 * np.sin(np.arange(n) * spec.z_step * 0.2 + rng.uniform(0, 6)))
    z0, z1 = int(rng.integers(0, max(1, n // 6))), n - int(rng.integers(0, max(1, n // 6)))
    return _tube_slices(spec, centres, radius, z0, z1)


def _branch(rng, spec: VolumeSpec) -> np.ndarray:
    """A trunk that splits into two tubes drifting apart (one component, then two, along z)."""
    n, h, w = spec.shape
    side = min(h, w)
    start = np.array([h, w]) * rng.uniform(0.4, 0.6, 2)
    trunk = _centreline(rng, spec, start, amplitude=0.05 * side)
    zs = int(n * rng.uniform(0.35, 0.5))  # split slice
    direction = rng.normal(size=2)
    direction /= np.linalg.norm(direction)
    r = rng.uniform(0.07, 0.1) * side
    out = _tube_slices(spec, trunk, np.full(n, r), 0, zs + 1)
    # per physical z pixel, each branch; the branches end at most 0.3 sides from the trunk
    spread = min(rng.uniform(0.02, 0.035) * side, 0.3 * side / max((n - zs) * spec.z_step, 1.0))
    for sign in (1.0, -1.0):
        c = trunk.copy()
        dz = np.clip(np.arange(n) - zs, 0, None) * spec.z_step
        c += sign * dz[:, None] * spread * direction[None, :]
        out |= _tube_slices(spec, c, np.full(n, r * 0.85), zs, n)
    return out


def _abrupt(rng, spec: VolumeSpec) -> np.ndarray:
    """A star-convex blob extruded over a z range, slowly deforming, with flat ends."""
    from skimage.draw import polygon

    n, h, w = spec.shape
    side = min(h, w)
    z0 = int(rng.integers(2, max(3, n // 4)))
    z1 = n - int(rng.integers(2, max(3, n // 4)))
    r = rng.uniform(0.16, 0.24) * side
    cy, cx = np.array([h, w]) * rng.uniform(0.4, 0.6, 2)
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    c0 = rng.normal(0, 0.12, size=(3, 2))
    c1 = rng.normal(0, 0.12, size=(3, 2))
    out = np.zeros(spec.shape, bool)
    for z in range(z0, z1):
        t = (z - z0) / max(z1 - z0 - 1, 1)
        coeffs = (1 - t) * c0 + t * c1
        radius = np.ones_like(angles)
        for k, (a, b) in enumerate(coeffs, start=1):
            radius += a * np.cos(k * angles) + b * np.sin(k * angles)
        rad = r * np.clip(radius, 0.4, 1.8) * (1 + 0.1 * np.sin(2 * np.pi * t))
        yy = cy + 0.1 * side * t + rad * np.sin(angles)
        xx = cx - 0.05 * side * t + rad * np.cos(angles)
        rr, cc = polygon(yy, xx, shape=(h, w))
        out[z, rr, cc] = True
    return out


def target_mask(rng: np.random.Generator, spec: VolumeSpec) -> np.ndarray:
    """The target object of ``spec`` (bool, ``spec.shape``)."""
    if spec.kind == "ellipsoid":
        return _ellipsoid(rng, spec)
    if spec.kind == "tube":
        return _tube(rng, spec)
    if spec.kind == "branch":
        return _branch(rng, spec)
    if spec.kind == "merge":
        return _branch(rng, spec)[::-1].copy()
    return _abrupt(rng, spec)


def _column(rng: np.random.Generator, n: int, count: int, middle: int | None) -> list[tuple[int, int]]:
    """First and last slice of ``count`` nuclei stacked along z (3-11 slices thick, 0-2 slices
    apart), placed in ``n`` slices; with ``middle``, nucleus ``middle`` is centred."""
    thick = rng.integers(3, 12, size=count)
    gaps = rng.integers(0, 3, size=max(count - 1, 0))
    starts = np.concatenate([[0], np.cumsum(thick[:-1] + gaps)])
    if middle is None:
        offset = int(rng.integers(-int(starts[-1] + thick[-1]) + 3, n - 2))
    else:
        offset = n // 2 - int(starts[middle] + thick[middle] // 2)
    return [(int(s + offset), int(s + offset + t - 1)) for s, t in zip(starts, thick)]


def _stacked(rng: np.random.Generator, spec: VolumeSpec, put) -> np.ndarray:
    """The ``stacked`` kind: draws columns of nuclei with ``put`` (the target first: the second
    nucleus of a column of 3-4 at the centre) and returns the intensity of each label."""
    n, h, w = spec.shape
    r_xy = rng.uniform(0.06, 0.08) * min(h, w)
    spacing = 3.2 * r_xy
    centre = np.array([h, w]) / 2 + rng.uniform(-0.5, 0.5, 2) * r_xy
    columns = [centre] + [
        centre + spacing * np.array([dy, dx]) + rng.uniform(-0.3, 0.3, 2) * r_xy
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if (dy or dx)
    ]
    for k, (cy, cx) in enumerate(columns):
        if not (r_xy <= cy < h - r_xy and r_xy <= cx < w - r_xy):
            continue
        count = int(rng.integers(3, 5)) if k == 0 else int(rng.integers(2, 5))
        spans = _column(rng, n, count, 1 if k == 0 else None)
        if k == 0:  # the target first (label 1), then its column
            spans = [spans[1], spans[0], *spans[2:]]
        for z0, z1 in spans:
            if z1 < 0 or z0 >= n:
                continue
            shift = rng.uniform(-0.35, 0.35, 2) * r_xy  # nuclei of a column overlap in y/x
            radius = np.array([(z1 - z0 + 1) / 2 * spec.z_step, *(r_xy * rng.uniform(0.85, 1.15, 2))])
            centre = np.array([(z0 + z1) / 2 * spec.z_step, cy + shift[0], cx + shift[1]])
            nucleus = _ellipsoid(rng, spec, centre, radius)
            nucleus[: max(z0, 0)] = False
            nucleus[z1 + 1 :] = False
            put(nucleus)
    bg = rng.uniform(0.25, 0.35)
    levels = bg + rng.uniform(0.12, 0.22) * rng.uniform(0.8, 1.2, 64)
    levels[0] = bg
    return levels


def _failure_labels(rng: np.random.Generator, spec: VolumeSpec) -> tuple[np.ndarray, np.ndarray, float]:
    """Labels (1 = the target), the intensity level of each label and the background texture
    amplitude of a failure kind."""
    n, h, w = spec.shape
    side = min(h, w)
    zmax = n * spec.z_step
    labels = np.zeros(spec.shape, np.int32)

    def put(mask: np.ndarray) -> None:
        labels[mask & (labels == 0)] = labels.max() + 1

    bg_texture = 0.02
    if spec.kind == "touching":
        rz, rxy = rng.uniform(0.17, 0.22) * zmax, rng.uniform(0.15, 0.2) * side
        c = np.array([rng.uniform(0.3, 0.38) * zmax, *(rng.uniform(0.42, 0.58, 2) * (h, w))])
        put(_ellipsoid(rng, spec, c, np.array([rz, rxy, rxy])))
        shift = rng.normal(size=2)
        shift *= 0.2 * rxy / np.linalg.norm(shift)
        above = np.array([c[0] + 1.3 * rz, c[1] + shift[0], c[2] + shift[1]])  # flattened against the target
        put(_ellipsoid(rng, spec, above, np.array([rz, rxy, rxy])))
        angle = rng.uniform(0, 2 * np.pi)
        beside = c + np.array([0.0, 1.8 * rxy * np.sin(angle), 1.8 * rxy * np.cos(angle)])
        put(_ellipsoid(rng, spec, beside, np.array([rz, rxy, rxy])))
        # where two nuclei touch, a one-voxel seam of background (their envelopes)
        grown = ndimage.grey_dilation(labels, size=(3, 3, 3))
        labels[(labels > 0) & (grown > labels)] = 0
        levels = np.full(labels.max() + 1, rng.uniform(0.7, 0.9))
        levels[0] = 0.1
    elif spec.kind == "bright_end":
        rxy = 0.18 * side
        c = np.array([0.35 * zmax, 0.5 * h, 0.5 * w])
        put(_ellipsoid(rng, spec, c, np.array([0.22 * zmax, rxy, rxy])))
        end = int(np.flatnonzero(labels.any((1, 2)))[-1])
        zz, yy, xx = _grid(spec)
        tissue = ((yy - c[1]) / (1.3 * rxy)) ** 2 + ((xx - c[2]) / (1.2 * rxy)) ** 2 <= 1
        put(tissue & (zz >= (end + 1) * spec.z_step))
        levels = np.array([0.1, rng.uniform(0.45, 0.55), rng.uniform(0.9, 1.0)])
    elif spec.kind == "low_contrast":
        c = np.array([rng.uniform(0.4, 0.6) * zmax, *(rng.uniform(0.4, 0.6, 2) * (h, w))])
        put(_ellipsoid(rng, spec, c, np.array([0.25 * zmax, *rng.uniform(0.14, 0.2, 2) * side])))
        for _ in range(2):
            oc = np.array([rng.uniform(0.2, 0.8) * zmax, *(rng.uniform(0.1, 0.9, 2) * (h, w))])
            put(_ellipsoid(rng, spec, oc, np.array([0.2 * zmax, *[0.1 * side] * 2])))
        bg = rng.uniform(0.35, 0.45)
        levels = np.array([bg, bg + rng.uniform(0.1, 0.14), bg + 0.12, bg - 0.1])
        bg_texture = 0.06
    elif spec.kind == "stacked":
        levels = _stacked(rng, spec, put)
        bg_texture = 0.03
    else:  # wall
        r = rng.uniform(0.24, 0.3) * side
        wall_y = int(rng.uniform(0.12, 0.18) * h)
        c = np.array([0.5 * zmax, wall_y + 0.75 * r, rng.uniform(0.45, 0.55) * w])
        put(_ellipsoid(rng, spec, c, np.array([rng.uniform(0.3, 0.36) * zmax, r, r * rng.uniform(0.9, 1.1)])))
        _, yy, _ = _grid(spec)
        put(yy < wall_y + 0.02 * h * np.sin(np.arange(w, dtype=np.float32) / 6.0)[None, None, :])
        level = rng.uniform(0.6, 0.8)
        levels = np.array([0.1, level, level * rng.uniform(0.92, 1.02)])
    return labels, levels[: labels.max() + 1].astype(np.float32), bg_texture


def _render(
    rng: np.random.Generator,
    spec: VolumeSpec,
    labels: np.ndarray,
    levels: np.ndarray,
    bg_texture: float | None,
    z_blur: float | None = None,
):
    """The image of ``labels`` at ``levels`` with texture, blur, drift and noise (float32). The
    background has a coarser texture of its own of strength ``bg_texture``, or with None a faint
    copy of the objects' texture. ``z_blur``: the blur along z in slices (default: the in-plane
    blur scaled by ``z_step``)."""
    texture = 0.08 * _smooth(rng, spec.shape, (1.0, 1.5, 1.5))
    if bg_texture is None:
        bg = 0.02 * texture
    else:
        bg = bg_texture * _smooth(rng, spec.shape, (1.5, 3.0, 3.0))
    image = levels[labels].astype(np.float32) + np.where(labels > 0, texture, bg)
    if spec.blur > 0:
        sz = spec.blur / spec.z_step if z_blur is None else z_blur
        image = ndimage.gaussian_filter(image, (sz, spec.blur, spec.blur))
    if spec.drift > 0:
        image = image * (1 - spec.drift * np.linspace(0, 1, spec.shape[0], dtype=np.float32))[:, None, None]
    image = np.clip(image, 0, None)
    if spec.photons > 0:
        image = rng.poisson(image * spec.photons) / spec.photons
    image = image + rng.normal(0, spec.noise, size=image.shape)
    return (image * 500 + 100).astype(np.float32)


def make_volume(spec: VolumeSpec) -> tuple[np.ndarray, np.ndarray]:
    """The image (float32, arbitrary range) and instance labels (int32; 1 = the target) of ``spec``."""
    rng = np.random.default_rng(spec.seed)
    if spec.kind in FAILURE_KINDS:
        labels, levels, bg_texture = _failure_labels(rng, spec)
        z_blur = STACKED_Z_BLUR * spec.blur if spec.kind == "stacked" else None
        return _render(rng, spec, labels, levels, bg_texture, z_blur), labels
    labels = np.zeros(spec.shape, np.int32)
    target = target_mask(rng, spec)
    labels[target] = 1
    side = min(spec.shape[1:])
    zmax = spec.shape[0] * spec.z_step
    for i in range(2, 2 + spec.neighbours):
        centre = np.array([rng.uniform(0.2, 0.8) * zmax, *(rng.uniform(0.1, 0.9, 2) * spec.shape[1:])])
        radius = np.array([rng.uniform(0.15, 0.3) * zmax, *rng.uniform(0.07, 0.13, 2) * side])
        m = _ellipsoid(rng, spec, centre, radius) & (labels == 0)
        labels[m] = i
    # Intensities: background, per-object level and texture, blur, drift, noise.
    bg = 0.1
    levels = rng.uniform(0.5, 1.0, labels.max() + 1)
    levels[1] = rng.uniform(0.6, 1.0)
    levels[0] = bg
    return _render(rng, spec, labels, levels, None), labels


def failure_suite(n_per_kind: int = 1, shape: tuple[int, int, int] = FAILURE_SHAPE, seed: int = 0) -> list[VolumeSpec]:
    """The failure kinds (:data:`FAILURE_KINDS`), ``n_per_kind`` each, with mild nuisances; seeded."""
    rng = np.random.default_rng(seed)
    return [
        VolumeSpec(
            kind=kind,
            shape=tuple(shape),
            seed=int(rng.integers(2**31)),
            z_step=float(rng.choice([1.0, 1.5])),
            noise=float(rng.uniform(0.02, 0.05)),
            photons=float(rng.choice([0.0, 150.0])),
            blur=float(rng.uniform(0.8, 1.4)),
            neighbours=0,
        )
        for kind in FAILURE_KINDS
        for _ in range(n_per_kind)
    ]


def suite(
    n_per_kind: int = 2, shape: tuple[int, int, int] = (24, 64, 64), seed: int = 0, kinds=KINDS
) -> list[VolumeSpec]:
    """A benchmark suite: ``n_per_kind`` volumes of each kind with nuisances that vary by case
    (anisotropy 1-2.5, noise, blur, drift up to 40 %); seeded, so the same every time."""
    rng = np.random.default_rng(seed)
    specs = []
    for kind in kinds:
        for _i in range(n_per_kind):
            specs.append(
                VolumeSpec(
                    kind=kind,
                    shape=tuple(shape),
                    seed=int(rng.integers(2**31)),
                    z_step=float(rng.choice([1.0, 1.5, 2.5])),
                    noise=float(rng.uniform(0.02, 0.1)),
                    photons=float(rng.choice([0.0, 40.0, 150.0])),
                    blur=float(rng.uniform(0.5, 1.8)),
                    drift=float(rng.choice([0.0, 0.2, 0.4])),
                    neighbours=int(rng.integers(1, 4)),
                )
            )
    return specs


def with_(spec: VolumeSpec, **changes) -> VolumeSpec:
    """``spec`` with some fields changed (a shorthand for :func:`dataclasses.replace`)."""
    return replace(spec, **changes)
