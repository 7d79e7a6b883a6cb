"""Input images: validation, channel handling, planes and normalisation.

Channel handling (documented contract):

* A grayscale image is used as is.
* ``rgb=True`` (or auto: last axis of length 3 or 4 and dtype ``uint8``): luminance
  ``0.299 R + 0.587 G + 0.114 B``; an alpha channel is ignored.
* ``channel_axis=k``: every channel is normalised on its own (percentiles 1 / 99.8) and the
  normalised channels are averaged, so a bright channel does not drown a dim one. Pass
  ``channel=i`` as well to use only channel ``i``.
* Neither given: a last axis of 2-8 that is at most 1/8 of each of the two axes before it
  (e.g. ``(256, 256, 4)`` float or ``(20, 256, 256, 2)``) is read as channels
  (:func:`looks_like_channels`). Pass ``channel_axis=NO_CHANNELS`` (``"none"``) to read it as a
  spatial axis anyway; an explicit ``rgb`` (``True`` or ``False``) turns the guess off too.

NaN and +-inf pixels are allowed: they are excluded from the normalisation statistics and read
as the lowest value (0 after normalisation). Constant, empty and sub-4-pixel-wide planes are
rejected with ``ValueError``; complex, object, string and other non-numeric dtypes with
``TypeError``. A prompt point on a NaN or infinite pixel is refused by
:meth:`ImageSource.check_point` with ``ValueError``: the model could only invent an object there.
A point whose finite neighbours within :data:`FLAT_RADIUS` px are all one value lies on a flat
spot (:meth:`ImageSource.is_flat`): the object there is the connected region of that value
(:meth:`ImageSource.uniform_region`). Arrays are read lazily (NumPy,
Zarr and Dask arrays all work): only the windows the model looks at are loaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_oaims.core import geometry, guidance

MIN_PLANE_SIDE = 4
#: ``channel_axis`` value that reads the image as having no channel axis (no guess).
NO_CHANNELS = "none"
#: Channel axes this long are guessed (:func:`looks_like_channels`).
GUESSED_CHANNELS = range(2, 9)
#: A prompt point whose finite neighbours within this many pixels are all equal lies on a flat spot.
FLAT_RADIUS = 5
#: Side (px) of the first window :meth:`ImageSource.uniform_region` searches (it doubles as needed).
UNIFORM_WINDOW = 512
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _check_dtype(dtype: np.dtype) -> None:
    if dtype.kind not in "biuf":
        raise TypeError(
            f"unsupported image dtype {dtype}: use bool, integer or real floating point pixels "
            "(complex, object and string arrays cannot be segmented)"
        )


def looks_like_channels(shape: tuple[int, ...]) -> bool:
    """True if the last axis of ``shape`` is almost surely channels: 2-8 long and at most 1/8 of
    each of the two axes before it."""
    shape = tuple(int(n) for n in shape)
    return len(shape) >= 3 and shape[-1] in GUESSED_CHANNELS and 8 * shape[-1] <= min(shape[-3:-1])


#: Integers up to this magnitude are exact in float32.
FLOAT32_EXACT = 2**24


def _exact_offset(sample: np.ndarray):
    """The smallest sampled value of an integer image whose values float32 cannot hold exactly
    (e.g. near 2**62): subtracted before pixels become float32, so their texture is kept. None
    for other images."""
    if sample.dtype.kind not in "iu" or sample.size == 0:
        return None
    lo, hi = sample.min(), sample.max()
    return lo if max(abs(int(lo)), abs(int(hi))) > FLOAT32_EXACT else None


class ImageSource:
    """A validated image with its spatial axes, plane axes and normalisation statistics."""

    def __init__(
        self,
        image: Any,
        plane_axes: tuple[int, int] = (-2, -1),
        channel_axis: int | str | None = None,
        rgb: bool | None = None,
        channel: int | None = None,
    ):
        if not hasattr(image, "shape") or not hasattr(image, "dtype"):
            image = np.asarray(image)
        dtype = np.dtype(image.dtype)
        _check_dtype(dtype)
        shape = tuple(int(s) for s in image.shape)
        if isinstance(channel_axis, str) and channel_axis == NO_CHANNELS:
            rgb = bool(rgb) if rgb is not None else False
        channel_axis = self._channel_axis(channel_axis, rgb, shape, dtype)
        if rgb is None:
            rgb = channel_axis is None and len(shape) == 3 and shape[-1] in (3, 4) and dtype == np.uint8
        if rgb:
            if shape[-1] not in (3, 4):
                raise ValueError(f"an RGB(A) image needs a last axis of length 3 or 4, got shape {shape}")
            channel_axis = len(shape) - 1
        if channel_axis is not None:
            if not -len(shape) <= channel_axis < len(shape):
                raise ValueError(f"channel_axis {channel_axis} is out of range for an image of shape {shape}")
            channel_axis %= len(shape)
        self.array = image
        self.rgb = bool(rgb)
        self.channel_axis = channel_axis
        self.channel = channel
        self.spatial_axes = tuple(a for a in range(len(shape)) if a != channel_axis)
        self.spatial_shape = tuple(shape[a] for a in self.spatial_axes)
        nsp = len(self.spatial_shape)
        if nsp < 2:
            raise ValueError(f"image must have at least 2 spatial axes, got shape {shape}")
        try:
            pa = tuple(int(a) % nsp for a in plane_axes)
        except (TypeError, ValueError) as err:
            raise ValueError(f"plane_axes must be two spatial axis indices, got {plane_axes!r}") from err
        if len(pa) != 2 or pa[0] == pa[1] or not all(-nsp <= a < nsp for a in plane_axes):
            raise ValueError(f"plane_axes must be two different spatial axes of {self.spatial_shape}, got {plane_axes}")
        self.plane_axes = pa
        self.plane_shape = (self.spatial_shape[pa[0]], self.spatial_shape[pa[1]])
        if min(self.spatial_shape) == 0:
            raise ValueError(f"image is empty (shape {shape})")
        if min(self.plane_shape) < MIN_PLANE_SIDE:
            raise ValueError(
                f"image planes of {self.plane_shape[0]} x {self.plane_shape[1]} pixels are too small: "
                f"each side must be at least {MIN_PLANE_SIDE} pixels"
            )
        if channel_axis is not None:
            nch = shape[channel_axis]
            if channel is not None and not 0 <= channel < nch:
                raise ValueError(f"channel {channel} out of range: the image has {nch} channels")
            chans = [channel] if channel is not None else list(range(min(nch, 3) if rgb else nch))
        else:
            chans = [None]
        self._channels = chans
        sample = self._sample()
        self._offset = _exact_offset(sample)
        self.ranges = [self._range(sample, c) for c in chans] if not self.rgb else [self._range(sample, "luma")]
        if all(hi <= lo for lo, hi in self.ranges):
            raise ValueError("image is constant: there is nothing to segment (all pixels have the same value)")

    @staticmethod
    def _channel_axis(channel_axis, rgb: bool | None, shape: tuple[int, ...], dtype: np.dtype) -> int | None:
        """The given channel axis, :data:`NO_CHANNELS` as None, or the guess when nothing was said."""
        if isinstance(channel_axis, str):
            if channel_axis != NO_CHANNELS:
                raise ValueError(
                    f"channel_axis must be an axis index, None (guess) or {NO_CHANNELS!r}, got {channel_axis!r}"
                )
            if rgb:
                raise ValueError(f"rgb=True needs the last axis as channels, not channel_axis={NO_CHANNELS!r}")
            return None
        if isinstance(channel_axis, (bool, np.bool_)) or not (
            channel_axis is None or isinstance(channel_axis, (int, np.integer))
        ):
            raise ValueError(
                f"channel_axis must be an axis index, None (guess) or {NO_CHANNELS!r}, got {channel_axis!r}"
            )
        if channel_axis is not None or rgb is not None:
            return None if channel_axis is None else int(channel_axis)
        rgb_like = len(shape) == 3 and shape[-1] in (3, 4) and dtype == np.uint8
        return len(shape) - 1 if looks_like_channels(shape) and not rgb_like else None

    # -- reading -------------------------------------------------------------------------------
    def _take_channel(self, data: np.ndarray, c) -> np.ndarray:
        """Reduce a block that still holds the channel axis (as its last axis) to one channel."""
        data = np.asarray(data)
        if c is None:
            return data.astype(np.float32, copy=False)
        if c == "luma":
            return data[..., :3].astype(np.float32) @ _LUMA
        return data[..., c].astype(np.float32)

    def _sample(self) -> np.ndarray:
        """A strided subsample of about 2 million pixels (raw values; channels last)."""
        total = int(np.prod(self.spatial_shape))
        step = max(1, int(np.ceil((total / 2_000_000) ** (1 / len(self.spatial_shape)))))
        idx = [slice(None, None, step)] * len(self.spatial_shape)
        if self.channel_axis is not None:
            idx.insert(self.channel_axis, slice(None))
        sub = np.asarray(self.array[tuple(idx)])
        return np.moveaxis(sub, self.channel_axis, -1) if self.channel_axis is not None else sub

    def _range(self, sample: np.ndarray, c) -> tuple[float, float]:
        return guidance.robust_range(self._take_channel(self._exact(sample), c))

    def _exact(self, data) -> np.ndarray:
        """Raw pixels with the exact offset subtracted (:func:`_exact_offset`), in their own dtype;
        values below the sampled minimum read as it."""
        data = np.asarray(data)
        return data if self._offset is None else np.maximum(data, self._offset) - self._offset

    def check_point(self, coords) -> tuple[tuple[int, ...], tuple[int, int]]:
        """Validate full spatial coordinates; return ``(plane key, (y, x))`` as integers."""
        try:
            c = np.asarray(coords, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as err:
            raise ValueError(f"coordinates must be numbers, got {coords!r}") from err
        if len(c) != len(self.spatial_shape):
            raise ValueError(
                f"expected {len(self.spatial_shape)} coordinates for an image of spatial shape "
                f"{self.spatial_shape}, got {len(c)}: {tuple(coords)}"
            )
        if not np.all(np.isfinite(c)):
            raise ValueError(f"coordinates must be finite, got {tuple(coords)}")
        ci = np.floor(c + 0.5).astype(int)
        if np.any(ci < 0) or np.any(ci >= np.asarray(self.spatial_shape)):
            raise ValueError(f"point {tuple(float(v) for v in c)} lies outside the image of shape {self.spatial_shape}")
        key = tuple(int(ci[a]) for a in range(len(ci)) if a not in self.plane_axes)
        yx = (int(ci[self.plane_axes[0]]), int(ci[self.plane_axes[1]]))
        self.check_signal(key, yx)
        return key, yx

    def check_signal(self, key: tuple[int, ...], yx: tuple[int, int]) -> None:
        """Refuse a point of plane ``key`` whose pixel is NaN or infinite (``ValueError``)."""
        window = guidance.Window(yx[0], yx[1], 1)
        if not np.isfinite(self._block(key, window)).any():
            where = f"at {yx}" if not key else f"at {yx} of plane {key}"
            raise ValueError(f"no signal {where}: the pixel is NaN or infinite there; click on the object itself")

    def is_flat(self, key: tuple[int, ...], yx: tuple[int, int]) -> bool:
        """Whether the finite values within :data:`FLAT_RADIUS` px of point ``yx`` of plane ``key``
        are all equal (in every channel): a flat spot, where the image shows no edge to follow."""
        r = FLAT_RADIUS
        block = self._block(key, guidance.Window(yx[0] - r, yx[1] - r, 2 * r + 1))
        for c in range(block.shape[-1]):
            finite = block[..., c][np.isfinite(block[..., c])]
            if finite.size and finite.max() > finite.min():
                return False
        return True

    def uniform_region(self, key: tuple[int, ...], yx: tuple[int, int]) -> tuple[tuple[int, int, int, int], np.ndarray]:
        """The connected region (4-connected) of plane ``key`` whose pixels hold exactly the values
        of pixel ``yx``: its box ``(y0, x0, y1, x1)`` and its mask in that box. Searched on a
        window around the point that doubles while the region reaches its edge."""
        from skimage.segmentation import flood

        h, w = self.plane_shape
        size = UNIFORM_WINDOW
        while True:
            window = guidance.Window(yx[0] - size // 2, yx[1] - size // 2, size)
            ys, xs, _, _ = window.clip((h, w))
            block = self._block(key, window)
            seed = (yx[0] - ys.start, yx[1] - xs.start)
            same = np.all(block == block[seed], axis=-1)
            region = flood(same.astype(np.uint8), seed, connectivity=1)
            edge = (
                (ys.start > 0 and region[0].any())
                or (ys.stop < h and region[-1].any())
                or (xs.start > 0 and region[:, 0].any())
                or (xs.stop < w and region[:, -1].any())
            )
            if not edge or (ys.start == 0 and xs.start == 0 and ys.stop == h and xs.stop == w):
                box = geometry.bbox(region, (ys.start, xs.start))
                crop = region[box[0] - ys.start : box[2] - ys.start, box[1] - xs.start : box[3] - xs.start]
                return box, crop
            size *= 2

    def _block(self, key: tuple[int, ...], window: guidance.Window) -> np.ndarray:
        """Raw values of ``window`` (clipped to the plane) of plane ``key``: (h, w, channels) float32,
        with the channels :meth:`crop` uses (luminance for RGB)."""
        ys, xs, _, _ = window.clip(self.plane_shape)
        idx = list(self.plane_index(key))
        idx[self.plane_axes[0]] = ys
        idx[self.plane_axes[1]] = xs
        ay, ax = self.spatial_axes[self.plane_axes[0]], self.spatial_axes[self.plane_axes[1]]
        if self.channel_axis is not None:
            idx.insert(self.channel_axis, slice(None))
        block = self._exact(self.array[tuple(idx)])
        if self.channel_axis is not None:  # remaining axes are in array order: move channels last
            block = np.moveaxis(block, sorted([ay, ax, self.channel_axis]).index(self.channel_axis), -1)
        if ay > ax:
            block = np.swapaxes(block, 0, 1)
        if self.channel_axis is None:
            return block.astype(np.float32, copy=False)[..., None]
        if self.rgb:
            return self._take_channel(block, "luma")[..., None]
        return np.stack([self._take_channel(block, c) for c in self._channels], axis=-1)

    def check_key(self, key) -> tuple[int, ...]:
        """Validate a plane key (coordinates on the non-plane axes)."""
        key = tuple(int(k) for k in (key or ()))
        other = [self.spatial_shape[a] for a in range(len(self.spatial_shape)) if a not in self.plane_axes]
        if len(key) != len(other):
            raise ValueError(
                f"a plane of this image is given by {len(other)} coordinate(s) on the non-plane axes, got {key}"
            )
        if any(not 0 <= k < n for k, n in zip(key, other)):
            raise ValueError(f"plane {key} lies outside the image (non-plane axes have sizes {tuple(other)})")
        return key

    def plane_index(self, key: tuple[int, ...]) -> tuple:
        """Index into the spatial axes selecting the plane ``key`` (plane axes as slices)."""
        it = iter(key)
        return tuple(slice(None) if a in self.plane_axes else next(it) for a in range(len(self.spatial_shape)))

    def crop(self, key: tuple[int, ...], window: guidance.Window) -> np.ndarray:
        """Normalised window of plane ``key`` at native resolution (size x size, float32)."""
        ys, xs, wy, wx = window.clip(self.plane_shape)
        out = np.zeros((window.size, window.size), np.float32)
        if ys.stop <= ys.start or xs.stop <= xs.start:
            return out
        block = self._block(key, window)
        out[wy, wx] = np.mean([guidance.normalise(block[..., i], *r) for i, r in enumerate(self.ranges)], axis=0)
        return out

    def plane(self, key: tuple[int, ...], factor: int = 1) -> np.ndarray:
        """Plane ``key`` normalised as :meth:`crop` does, block-averaged by ``factor`` (for display:
        the blocks are averaged before normalising, so a large plane costs one pass)."""
        h, w = self.plane_shape
        block = self._block(key, guidance.Window(0, 0, max(h, w)))
        if factor > 1:
            dh, dw = -(-h // factor), -(-w // factor)
            if (dh * factor, dw * factor) != (h, w):
                block = np.pad(block, ((0, dh * factor - h), (0, dw * factor - w), (0, 0)), mode="edge")
            block = block.reshape(dh, factor, dw, factor, block.shape[-1]).mean(axis=(1, 3), dtype=np.float32)
        return np.mean([guidance.normalise(block[..., i], *r) for i, r in enumerate(self.ranges)], axis=0)
