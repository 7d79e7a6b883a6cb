"""What travels between the kernel and the browser, as compact bytes.

The image of a plane goes once per plane as an 8-bit grey PNG, downsampled by an integer factor
when its larger side exceeds :data:`MAX_SIDE` (the browser draws it at display resolution and
maps its coordinates back with the same factor). Overlays go as RGBA PNGs of the display region
that changed only: a prompt changes a window of the mask, and only that window travels.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from napari_oaims.core import geometry
from napari_oaims.core.source import ImageSource

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.session import Session

#: Larger side (px) of the image the browser draws; larger planes are downsampled by an integer factor.
MAX_SIDE = 2048
#: The normalised values (:func:`napari_oaims.core.guidance.normalise`) that 0 and 255 of the grey PNG stand for.
GREY_RANGE = (-0.5, 1.5)
#: RGBA of the preview (the object in progress).
PREVIEW_RGBA = (255, 200, 0, 255)
#: The image travels as PNG up to this many (display) pixels, as JPEG above.
PNG_MAX_PIXELS = 1024 * 1024
JPEG_QUALITY = 95
#: zlib level of the PNGs: fast to write; masks and labels compress well even so.
PNG_LEVEL = 1
#: Points of a scribble drawn as its mark (the path is subsampled to at most this many).
MARK_POINTS = 200


def display_factor(plane_shape: Sequence[int], max_side: int = MAX_SIDE) -> int:
    """The integer downsampling factor that brings the larger side to at most ``max_side``."""
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1 pixel, got {max_side}")
    return max(1, math.ceil(max(plane_shape) / max_side))


def display_shape(plane_shape: Sequence[int], factor: int) -> tuple[int, int]:
    """The displayed size of a plane downsampled by ``factor``."""
    return math.ceil(plane_shape[0] / factor), math.ceil(plane_shape[1] / factor)


def png(array: np.ndarray) -> bytes:
    """PNG bytes of a 2D uint8 (grey) or (h, w, 4) uint8 (RGBA) array."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", compress_level=PNG_LEVEL)
    return buf.getvalue()


def grey_plane(source: ImageSource, key: tuple[int, ...], factor: int) -> np.ndarray:
    """Plane ``key`` normalised as the model sees it, block-averaged by ``factor``, as uint8 over :data:`GREY_RANGE`."""
    lo, hi = GREY_RANGE
    plane = source.plane(key, factor)
    return np.clip((plane - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)


def image_bytes(grey: np.ndarray) -> tuple[bytes, str]:
    """The grey image's bytes and MIME type: PNG (lossless) up to :data:`PNG_MAX_PIXELS`, JPEG
    (:data:`JPEG_QUALITY`, ten times faster to write) above: it is only drawn, never segmented."""
    if grey.size <= PNG_MAX_PIXELS:
        return png(grey), "image/png"
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(grey)).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue(), "image/jpeg"


def display_box(box: geometry.Box, factor: int, shape: Sequence[int]) -> geometry.Box:
    """The display-pixel box ``(y0, x0, y1, x1)`` covering plane box ``box``."""
    y0, x0, y1, x1 = box
    return (
        max(0, y0 // factor),
        max(0, x0 // factor),
        min(shape[0], -(-y1 // factor)),
        min(shape[1], -(-x1 // factor)),
    )


def pool(values: np.ndarray, factor: int) -> np.ndarray:
    """Downsample a (plane-pixel) block by ``factor``: the largest value of each block (an object
    thinner than a display pixel stays visible)."""
    if factor == 1:
        return values
    h, w = values.shape
    dh, dw = -(-h // factor), -(-w // factor)
    padded = np.zeros((dh * factor, dw * factor), values.dtype)
    padded[:h, :w] = values
    return padded.reshape(dh, factor, dw, factor).max(axis=(1, 3))


def mask_crop(entry: tuple[geometry.Box, np.ndarray] | None, box: geometry.Box) -> np.ndarray:
    """The object's mask in plane box ``box``, from its ``(bbox, crop)`` (as in :attr:`Result.planes`)."""
    out = np.zeros((box[2] - box[0], box[3] - box[1]), bool)
    if entry is None:
        return out
    (by0, bx0, by1, bx1), crop = entry
    y0, x0, y1, x1 = max(box[0], by0), max(box[1], bx0), min(box[2], by1), min(box[3], bx1)
    if y1 > y0 and x1 > x0:
        out[y0 - box[0] : y1 - box[0], x0 - box[1] : x1 - box[1]] = crop[y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0]
    return out


def label_crop(labels: np.ndarray, plane_axes: Sequence[int], key: tuple[int, ...], box: geometry.Box) -> np.ndarray:
    """``labels`` (the image's spatial shape) in plane box ``box`` of plane ``key``, as (y, x)."""
    index = geometry.plane_index(plane_axes, labels.ndim, key, geometry.box_slices(box))
    crop = np.asarray(labels[index])
    return crop.T if geometry.transposed(plane_axes, labels.ndim) else crop


def label_colours(n: int = 256) -> np.ndarray:
    """RGBA of object ids (index ``id % n``; 0 is transparent): hues a golden angle apart."""
    from skimage.color import hsv2rgb

    hues = (np.arange(n) * 0.618033988749895) % 1.0
    rgb = hsv2rgb(np.stack([hues, np.full(n, 0.75), np.full(n, 1.0)], axis=1)[None])[0]
    out = np.concatenate([np.round(rgb * 255), np.full((n, 1), 255)], axis=1).astype(np.uint8)
    out[0] = 0
    return out


_COLOURS = label_colours()


def rgba_mask(mask: np.ndarray, rgba: Sequence[int] = PREVIEW_RGBA) -> np.ndarray:
    """A bool mask as RGBA: ``rgba`` where true, transparent elsewhere."""
    out = np.zeros((*mask.shape, 4), np.uint8)
    out[mask] = rgba
    return out


def rgba_labels(labels: np.ndarray) -> np.ndarray:
    """Instance labels as RGBA (a colour per id, 0 transparent)."""
    ids = np.asarray(labels, np.int64)
    return _COLOURS[np.where(ids > 0, (ids - 1) % (len(_COLOURS) - 1) + 1, 0)]


def prompt_marks(session: "Session", key: tuple[int, ...], factor: int) -> list[dict]:
    """The prompts of plane ``key`` in display pixels, for the browser to draw."""
    out = []
    for p in session.prompts(key):
        if p.kind == "prior":
            continue
        if p.kind == "box":
            pts = [[p.box[0], p.box[1]], [p.box[2], p.box[3]]]
        else:
            pts = np.asarray(p.points, float)
            pts = pts[:: max(1, len(pts) // MARK_POINTS)].tolist()
        out.append({"kind": p.kind, "positive": bool(p.positive), "points": [[y / factor, x / factor] for y, x in pts]})
    return out


def overlay_message(
    session: "Session",
    labels: np.ndarray,
    layer: str,
    key: tuple[int, ...],
    box: geometry.Box | None,
    factor: int,
    entry: tuple[geometry.Box, np.ndarray] | None = None,
) -> tuple[dict[str, Any], list[bytes]]:
    """The message and buffers that redraw ``layer`` (``"preview"``: the session's mask, or
    ``entry`` = (box, mask crop) when given; ``"objects"``: ``labels``) of plane ``key`` in plane
    box ``box`` (None: nothing to draw)."""
    h, w = session.source.plane_shape
    content: dict[str, Any] = {"type": "overlay", "layer": layer, "key": list(key), "box": None}
    if box is None or box[2] <= box[0] or box[3] <= box[1]:
        return content, []
    dbox = display_box(box, factor, display_shape((h, w), factor))
    pbox = (dbox[0] * factor, dbox[1] * factor, min(h, dbox[2] * factor), min(w, dbox[3] * factor))
    if layer == "preview":
        if entry is None:
            st = session.planes.get(key)
            entry = None if st is None or st.bbox is None else (st.bbox, st.mask[geometry.box_slices(st.bbox)])
        rgba = rgba_mask(pool(mask_crop(entry, pbox), factor))
    else:
        rgba = rgba_labels(pool(label_crop(labels, session.source.plane_axes, key, pbox), factor))
    content["box"] = list(dbox)
    return content, [png(rgba)]
