"""Prompts -> network input channels.

Everything that turns an image plane plus clicks, scribbles, a box or a prior mask into the
four input channels of the click model lives here, and is shared by training and inference so
that both see exactly the same encoding:

* channel 0: the image window, robustly normalised (percentiles 1 and 99.8 of the whole image);
* channel 1: foreground guidance, ``exp(-d^2 / 2 sigma^2)`` of the distance ``d`` to the nearest
  positive click or scribble pixel (so a click is a Gaussian with peak 1, a scribble a Gaussian
  tube along its path);
* channel 2: background guidance, the same for negative prompts;
* channel 3: prior mask (a given mask, a soft box prior, or the neighbouring slice in 3D), zero
  when there is none.

Local inference: the network never sees the whole image. :func:`choose_window` picks a square
window around the object (clicks, box and current mask plus context); the window is cropped and
resized to the fixed working size, so click latency does not depend on the image size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.transform import resize as _sk_resize

from napari_oaims.core import geometry

#: Working size (pixels) of the square window the network sees.
WORK_SIZE = 128
#: Gaussian sigma (working-size pixels) of the click and scribble guidance.
GUIDANCE_SIGMA = 3.0
#: Robust normalisation percentiles.
NORM_PERCENTILES = (1.0, 99.8)
#: Smallest window side in image pixels, and context factor around the object's extent.
MIN_WINDOW = 64
CONTEXT = 2.0
#: First window for an object's first prompt (no mask yet), as exported with new weights:
#: ``"auto"`` sizes it to the blob under the click (see below). The network is trained on 128-px
#: tiles at native scale; a fixed 64-px first window shows a nucleus at twice its size and answers
#: with too small a mask, and fails on objects 2-3x larger. Weights whose config has no
#: ``window.first_size`` keep ``MIN_WINDOW`` (64 px).
FIRST_WINDOW: int | str = "auto"
#: ``first_window="auto"``: the first window is this many times the diameter of the blob under
#: the click (:func:`estimate_diameter`), at least ``AUTO_MIN_WINDOW`` px (about four diameters
#: answered nuclei equally well from 12 to 71 px across).
AUTO_WINDOW_DIAMETERS = 4.0
AUTO_MIN_WINDOW = 32
#: The first window sized from the blob at one point is at most this many px: a small object
#: inside larger structures (a cavity in an organ) answers the blob filter most strongly at the
#: larger structure's scale. A larger object reaches the window's border and the window grows.
AUTO_MAX_WINDOW = 256
#: Windows after the first (the object has a mask) are at least this share of the object's first
#: window, so the mask-based ``CONTEXT`` rule does not show the object at another scale (a jump of
#: scale at the second click lost 3-7 points of Dice@2 with ``"auto"``).
LATER_WINDOW_SHARE = 1.0
#: Gaussian scales (px) searched by :func:`estimate_diameter`: objects about 4 to 110 px across.
DIAMETER_SIGMAS = tuple(float(s) for s in np.geomspace(1.5, 40.0, 24))
#: The share of the strongest blob response that a smaller scale's peak needs to be the blob
#: under a session's first click (:func:`estimate_diameter`, ``Session.first_peak``).
BLOB_PEAK_SHARE = 0.7


@dataclass(frozen=True)
class Window:
    """A square window ``[y0, y0+size) x [x0, x0+size)`` in plane coordinates (may overhang)."""

    y0: int
    x0: int
    size: int

    @property
    def scale(self) -> float:
        """Working pixels per image pixel."""
        return WORK_SIZE / self.size

    def to_work(self, yx: np.ndarray) -> np.ndarray:
        """Map plane coordinates ``(..., 2)`` to working-window coordinates."""
        yx = np.asarray(yx, dtype=np.float64)
        return (yx - np.array([self.y0, self.x0]) + 0.5) * self.scale - 0.5

    def contains(self, yx) -> bool:
        y, x = yx
        return self.y0 <= y < self.y0 + self.size and self.x0 <= x < self.x0 + self.size

    def clip(self, shape: tuple[int, int]) -> tuple[slice, slice, slice, slice]:
        """Slices of the plane covered by the window and the matching slices of the window."""
        ys, xs = max(self.y0, 0), max(self.x0, 0)
        ye, xe = min(self.y0 + self.size, shape[0]), min(self.x0 + self.size, shape[1])
        return (
            slice(ys, ye),
            slice(xs, xe),
            slice(ys - self.y0, ye - self.y0),
            slice(xs - self.x0, xe - self.x0),
        )


def diameter_patch_radius(sigmas=DIAMETER_SIGMAS) -> int:
    """Half-side of the patch :func:`estimate_diameter` needs (4 of the largest sigmas)."""
    return int(4 * max(sigmas)) + 1


def estimate_diameter(patch: np.ndarray, sigmas=DIAMETER_SIGMAS, peak_share: float | None = None) -> float:
    """Diameter (px) of the bright or dark blob at the centre of a square ``patch``.

    The scale of the strongest scale-normalised Laplacian-of-Gaussian response at the centre
    (Lindeberg's blob scale: a disc of diameter ``d`` answers most at ``sigma = d / (2 sqrt 2)``),
    or with ``peak_share`` the smallest scale whose response is a peak over the scales and at
    least that share of the strongest (a cell in a cluster of cells answers at its own scale
    and, more strongly, at the cluster's). Each scale is one dot product with a zero-sum kernel,
    so this costs a few milliseconds. ``patch`` must have an odd side of at least
    ``2 * diameter_patch_radius(sigmas) + 1``.
    """
    patch = np.asarray(patch, dtype=np.float64)
    c = patch.shape[0] // 2
    if (
        patch.ndim != 2
        or patch.shape[0] != patch.shape[1]
        or patch.shape[0] % 2 == 0
        or c < diameter_patch_radius(sigmas)
    ):
        raise ValueError(
            f"estimate_diameter needs a square patch with an odd side >= "
            f"{2 * diameter_patch_radius(sigmas) + 1}, got {patch.shape}"
        )
    if not np.isfinite(patch).all():
        raise ValueError("estimate_diameter needs finite values (normalise the patch first: NaN/inf -> 0)")
    responses = []
    for sigma in sigmas:
        h = int(4 * sigma) + 1
        yy, xx = np.mgrid[-h : h + 1, -h : h + 1]
        r2 = (yy * yy + xx * xx) / (sigma * sigma)
        kernel = (r2 - 2.0) * np.exp(-r2 / 2.0)
        kernel -= kernel.mean()  # zero sum: a constant offset gives no response
        responses.append(
            abs(float(np.sum(kernel * patch[c - h : c + h + 1, c - h : c + h + 1]))) / (2 * np.pi * sigma * sigma)
        )
    best = int(np.argmax(responses))
    if peak_share is not None:
        r = np.pad(np.asarray(responses), 1, constant_values=-np.inf)
        peaks = (r[1:-1] >= r[:-2]) & (r[1:-1] >= r[2:]) & (r[1:-1] >= peak_share * r[1 + best])
        best = int(np.argmax(peaks))
    return 2.0 * np.sqrt(2.0) * float(sigmas[best])


def choose_window(
    points: np.ndarray,
    shape: tuple[int, int],
    extra_bbox: tuple[int, int, int, int] | None = None,
    min_size: int = MIN_WINDOW,
    context: float = CONTEXT,
) -> Window:
    """Square window centred on ``points`` (N x 2, y/x) and ``extra_bbox`` (y0, x0, y1, x1).

    The side is ``context`` times the extent of what it must hold, at least ``min_size`` and at
    most the larger plane side (times 1.1, so a whole-image object still has a margin).
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if extra_bbox is not None:
        y0, x0, y1, x1 = extra_bbox
        pts = np.concatenate([pts, [[y0, x0], [y1 - 1, x1 - 1]]])
    if len(pts) == 0:
        raise ValueError("a window needs at least one point or a bounding box")
    lo, hi = pts.min(0), pts.max(0)
    extent = float(np.max(hi - lo + 1))
    size = int(np.ceil(max(min_size, extent * context)))
    size = int(min(size, max(int(1.1 * max(shape)), 8)))
    size = max(size, int(np.ceil(extent)) + 2)
    centre = (lo + hi) / 2.0
    y0 = int(np.floor(centre[0] - size / 2 + 0.5))
    x0 = int(np.floor(centre[1] - size / 2 + 0.5))
    return Window(y0, x0, size)


def window_for_diameter(diameter: float) -> int:
    """The first-window side for objects ``diameter`` px across: :data:`AUTO_WINDOW_DIAMETERS`
    diameters, at least :data:`AUTO_MIN_WINDOW` px (the model answers best at this scale)."""
    if not (np.isfinite(diameter) and diameter > 0):
        raise ValueError(f"an object diameter must be a positive number of pixels, got {diameter!r}")
    return max(AUTO_MIN_WINDOW, int(round(AUTO_WINDOW_DIAMETERS * float(diameter))))


def diameter_at(crop, points: np.ndarray, plane_shape: tuple[int, int], peak_share: float | None = None) -> float:
    """:func:`estimate_diameter` of the blob at the centre of ``points`` (N x 2). ``crop(window)``
    gives a window of the plane; beyond the plane's border the patch is mirrored, not zero-filled
    (no false edge)."""
    centre = np.rint((points.min(0) + points.max(0)) / 2).astype(int)
    r = diameter_patch_radius()
    window = Window(int(centre[0]) - r, int(centre[1]) - r, 2 * r + 1)
    patch = crop(window)
    _, _, wy, wx = window.clip(plane_shape)
    pad = ((wy.start, window.size - wy.stop), (wx.start, window.size - wx.stop))
    inside = patch[wy, wx]
    patch = np.pad(inside, pad, mode="reflect" if min(inside.shape) > 1 else "edge")
    return estimate_diameter(patch, peak_share=peak_share)


#: Re-predict on a larger window (this factor) when the mask touches the window border, at most
#: ``MAX_GROW_PASSES`` times.
GROW = 1.8
MAX_GROW_PASSES = 2


def grown_window(
    window: Window, inside: np.ndarray, plane_shape: tuple[int, int], known_box=None, passes: int = 1
) -> Window | None:
    """The larger window to predict again on when the mask ``inside`` (the part of the window on
    the plane) touches a window border that is not the plane's; None when the mask fits (or after
    ``MAX_GROW_PASSES``, or when the window already covers the plane). ``known_box`` is a box the
    new window must also hold (the object's mask so far)."""
    h, w = plane_shape
    ys, xs, _, _ = window.clip((h, w))
    touches = (
        (ys.start > 0 and inside[0].any())
        or (ys.stop < h and inside[-1].any())
        or (xs.start > 0 and inside[:, 0].any())
        or (xs.stop < w and inside[:, -1].any())
    )
    if not touches or passes > MAX_GROW_PASSES or window.size >= 1.1 * max(h, w):
        return None
    bb = geometry.bbox(inside, (ys.start, xs.start))
    if known_box is not None:
        bb = (min(bb[0], known_box[0]), min(bb[1], known_box[1]), max(bb[2], known_box[2]), max(bb[3], known_box[3]))
    return choose_window(np.zeros((0, 2)), (h, w), bb, min_size=int(window.size * GROW), context=1.0)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Probabilities of logits (the model's output), elementwise."""
    return 1.0 / (1.0 + np.exp(-logits))


def robust_range(image: np.ndarray, max_samples: int = 2_000_000) -> tuple[float, float]:
    """Percentiles (1, 99.8) of the finite values of ``image``, on a strided subsample if big."""
    flat = np.asarray(image).reshape(-1)
    if flat.size > max_samples:
        flat = flat[:: int(np.ceil(flat.size / max_samples))]
    flat = flat[np.isfinite(flat)] if flat.dtype.kind == "f" else flat
    if flat.size == 0:
        raise ValueError("image has no finite pixels")
    lo, hi = np.percentile(flat, NORM_PERCENTILES)
    if hi <= lo:
        lo, hi = float(flat.min()), float(flat.max())
    return float(lo), float(hi)


def normalise(crop: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map ``[lo, hi]`` to ``[0, 1]`` (float32, clipped to [-0.5, 1.5]); NaN/inf become 0."""
    out = (np.asarray(crop, dtype=np.float32) - np.float32(lo)) / np.float32(max(hi - lo, 1e-12))
    np.nan_to_num(out, copy=False, nan=0.0, posinf=1.5, neginf=-0.5)
    return np.clip(out, -0.5, 1.5, out=out)


def crop_plane(plane, window: Window, fill: float = 0.0) -> np.ndarray:
    """Crop ``window`` out of a 2D array-like (numpy, zarr, dask), padding outside with ``fill``."""
    shape = plane.shape[:2]
    ys, xs, wy, wx = window.clip(shape)
    out = np.full((window.size, window.size), fill, dtype=np.float32)
    if ys.stop > ys.start and xs.stop > xs.start:
        out[wy, wx] = np.asarray(plane[ys, xs], dtype=np.float32)
    return out


def guidance_map(points: np.ndarray, size: int = WORK_SIZE, sigma: float = GUIDANCE_SIGMA) -> np.ndarray:
    """``exp(-d^2 / 2 sigma^2)`` of the distance to the nearest of ``points`` (working coords).

    Points outside the window are ignored; no point gives an all-zero map.
    """
    pts = np.rint(np.asarray(points, dtype=np.float64).reshape(-1, 2)).astype(int)
    inside = np.all((pts >= 0) & (pts < size), axis=1)
    pts = pts[inside]
    if len(pts) == 0:
        return np.zeros((size, size), np.float32)
    seeds = np.ones((size, size), bool)
    seeds[pts[:, 0], pts[:, 1]] = False
    dist = ndimage.distance_transform_edt(seeds)
    return np.exp(-(dist**2) / (2 * sigma**2)).astype(np.float32)


def rasterise_path(points: np.ndarray) -> np.ndarray:
    """All integer pixels on the polyline through ``points`` (N x 2, y/x), as an (M, 2) array."""
    from skimage.draw import line

    pts = np.rint(np.asarray(points, dtype=np.float64).reshape(-1, 2)).astype(int)
    if len(pts) == 1:
        return pts
    rr, cc = [], []
    for (ya, xa), (yb, xb) in zip(pts[:-1], pts[1:]):
        r, c = line(ya, xa, yb, xb)
        rr.append(r)
        cc.append(c)
    out = np.stack([np.concatenate(rr), np.concatenate(cc)], axis=1)
    return np.unique(out, axis=0)


def box_prior(box_work: tuple[float, float, float, float], size: int = WORK_SIZE) -> np.ndarray:
    """Soft box prior: 1 inside the box, falling off smoothly (sigma 2 px) at its border."""
    y0, x0, y1, x1 = box_work
    yy = np.arange(size, dtype=np.float32)[:, None]
    xx = np.arange(size, dtype=np.float32)[None, :]

    def ramp(v, a, b):
        return sigmoid((v - a) / 1.5) / (1.0 + np.exp((v - b) / 1.5))  # rises at a, falls at b

    return (0.5 * ramp(yy, y0, y1) * ramp(xx, x0, x1)).astype(np.float32)


def encode(
    image_work: np.ndarray,
    pos_work: np.ndarray,
    neg_work: np.ndarray,
    prior_work: np.ndarray | None = None,
) -> np.ndarray:
    """Stack the four input channels (4, S, S) from working-size pieces."""
    size = image_work.shape[0]
    prior = np.zeros((size, size), np.float32) if prior_work is None else prior_work
    return np.stack([image_work, guidance_map(pos_work, size), guidance_map(neg_work, size), prior]).astype(np.float32)


def resize_window(array: np.ndarray, size: int) -> np.ndarray:
    """Resize a square window (image crop or logits) to ``size x size`` for inference:
    bilinear, anti-aliased when shrinking."""
    if array.shape[0] == size:
        return array.astype(np.float32, copy=False)
    return _sk_resize(array, (size, size), order=1, anti_aliasing=array.shape[0] > size, preserve_range=True).astype(
        np.float32
    )


def encode_prompts(crop: np.ndarray, prompts, window: Window) -> np.ndarray:
    """The (4, S, S) network input for ``prompts`` (:class:`~napari_oaims.core.prompts.Prompt`)
    on ``window``, whose normalised image crop (window size) is ``crop``."""
    image = resize_window(crop, WORK_SIZE)
    pos = [window.to_work(p.points) for p in prompts if p.positive and p.kind in ("click", "scribble")]
    neg = [window.to_work(p.points) for p in prompts if not p.positive]
    prior = None
    for p in prompts:
        if p.kind == "box":
            y0, x0 = window.to_work(np.array([p.box[0], p.box[1]]) - 0.5)
            y1, x1 = window.to_work(np.array([p.box[2], p.box[3]]) - 0.5)
            layer = box_prior((y0, x0, y1, x1))
        elif p.kind == "prior":
            layer = resize_window(crop_plane(p.mask, window), WORK_SIZE)
        else:
            continue
        prior = layer if prior is None else np.maximum(prior, layer)
    return encode(
        image, np.concatenate(pos) if pos else np.zeros((0, 2)), np.concatenate(neg) if neg else np.zeros((0, 2)), prior
    )
