"""Where an object ends: the part of a slice's mask that continues the previous slice, and the
stop rules of an outward chain (area, overlap, contrast, and the object's identity along the axis:
its intensity, a dip in its intensity profile, a neck in its area, a plateau after its taper, a
waist in its signal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from napari_oaims.core import geometry
from napari_oaims.propagate.masks import Sparse, iou
from napari_oaims.propagate.settings import PropagateSettings

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.propagate.steps import Context

#: Anchor contrast below this (normalised intensity) leaves out the contrast stop rule.
MIN_ANCHOR_CONTRAST = 0.03
#: Gaussian sigma (pixels) of the images :func:`brightened` compares (the noise, not the edges).
SMOOTH_PX = 1.5
#: ... and how many robust standard deviations of the mask's change a pixel must rise by.
NOISE_SIGMAS = 3.0


def reach_of(ref: Sparse, settings: PropagateSettings) -> float:
    """How far (pixels) a slice's mask may lie from ``ref`` and still continue it:
    ``reach_share`` of its equivalent radius, at least ``reach_px``."""
    return max(settings.reach_px, settings.reach_share * np.sqrt(ref.area / np.pi))


def continuing(mask: Sparse, ref: Sparse, settings: PropagateSettings, cap: bool = False) -> Sparse:
    """The part of ``mask`` (bool) that continues ``ref`` (the previous slice's mask moved onto
    this one): its components that overlap ``ref`` on at least ``continue_share`` of their area,
    cut to what lies within reach of ``ref`` (``reach_share`` of its equivalent radius, at least
    ``reach_px``). What does not continue the previous slice is another object. ``cap``: ``ref``
    is an end-cap the object widens past (:func:`is_cap`): a component that covers that share of
    it continues it, out to the radius of ``cap_area``."""
    if mask.box is None or ref.box is None:
        return mask
    from scipy import ndimage

    radius = np.sqrt(ref.area / np.pi)
    reach = reach_of(ref, settings) if settings.reach_share > 0 else None
    if reach is not None and cap:  # an end-cap may grow to the object's size
        reach = max(reach, np.sqrt(settings.cap_area / np.pi) - radius)
    pad = 1 if reach is None else int(np.ceil(reach)) + 1
    box = geometry.union(mask.box, ref.box)
    box = (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad)
    m, r = mask.in_box(box, bool), ref.in_box(box, bool)
    lab, n = ndimage.label(m)
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    overlap = np.bincount(lab[r].ravel(), minlength=n + 1)
    keep = overlap >= settings.continue_share * (np.minimum(sizes, ref.area) if cap else sizes)
    keep[0] = False
    out = keep[lab]
    if reach is not None:
        out &= ndimage.distance_transform_edt(~r) <= reach
    return Sparse.of_mask(out, box[:2])


def brightened(ctx: "Context", key, anchor_key, mask: Sparse, track: "Track") -> Sparse:
    """``mask`` (bool, plane ``key``) without its parts, inside the anchor's footprint (out to
    its reach, :func:`reach_of`), that brightened (towards the object's contrast) since the anchor
    slice by ``brighter`` times the anchor's contrast, and by ``NOISE_SIGMAS`` robust standard
    deviations, more than the mask's median pixel did; parts smaller than a disk of ``reach_px``
    are kept. Only while neither the chain's masks nor ``mask`` grew past the anchor's area:
    there the object fades away from its anchor, so a part that brightens against the rest is
    another object beginning beside or behind it (both images smoothed by ``SMOOTH_PX``)."""
    s, anchor = ctx.settings, ctx.anchors[anchor_key].sparse
    c0 = track.contrast
    if s.brighter <= 0 or mask.box is None or anchor.box is None or c0 is None or abs(c0) < MIN_ANCHOR_CONTRAST:
        return mask
    if max(track.peak, mask.area) > anchor.area:
        return mask
    from scipy import ndimage

    from napari_oaims.core import guidance

    pad = int(np.ceil(3 * SMOOTH_PX))
    y0, x0, y1, x1 = mask.box
    window = guidance.Window(y0 - pad, x0 - pad, max(y1 - y0, x1 - x0) + 2 * pad)
    now = ndimage.gaussian_filter(ctx.source.crop(key, window), SMOOTH_PX)
    then = ndimage.gaussian_filter(ctx.source.crop(anchor_key, window), SMOOTH_PX)
    m = mask.window(window) > 0.5
    foot = ndimage.distance_transform_edt(anchor.window(window) <= 0.5) <= reach_of(anchor, s)
    rise = (now - then) / c0
    own = rise[m]
    mid = float(np.median(own))
    noise = 1.4826 * float(np.median(np.abs(own - mid)))
    cut = m & foot & (rise - mid >= max(s.brighter, NOISE_SIGMAS * noise))
    lab, n = ndimage.label(cut)
    if n == 0:
        return mask
    big = np.bincount(lab.ravel()) >= np.pi * s.reach_px**2  # smaller parts are not an object
    big[0] = False
    if not big.any():
        return mask
    return Sparse.of_mask(m & ~big[lab], (window.y0, window.x0))


def is_cap(prev: Sparse, track: "Track", settings: PropagateSettings) -> bool:
    """Whether ``prev`` is an end-cap its chain grows from: smaller than ``cap_area``, and so was
    every slice since the anchor (an object that shrinks towards its end is judged as usual)."""
    return prev.area < settings.cap_area and track.peak < settings.cap_area


def covered(part: Sparse, mask: Sparse) -> float:
    """The share of ``part`` (bool) that ``mask`` (bool) covers."""
    if part.box is None or mask.box is None:
        return 0.0
    box = geometry.union(part.box, mask.box)
    p = part.in_box(box, bool)
    return float(np.count_nonzero(p & mask.in_box(box, bool))) / max(int(np.count_nonzero(p)), 1)


@dataclass
class Track:
    """What an outward chain remembers for its stop rules: the anchor's contrast, the clearest
    contrast seen, the largest area and the smallest after it (where), the mean image inside
    the mask on the previous slice, its highest value and the lowest after that (where), and,
    once a rule fires, the position from which the chain's slices are dropped (``cut``)."""

    contrast: float | None
    mean: float | None
    peak: int
    low: int
    low_at: int | None = None
    clearest: float = 0.0
    mean_peak: float | None = None
    mean_low: float | None = None
    mean_low_at: int | None = None
    cut: int | None = None
    #: The object's signal per slice (area times contrast, in units of the anchor's contrast):
    #: its highest value and the lowest after that (where).
    signal_peak: float = 0.0
    signal_low: float = 0.0
    signal_low_at: int | None = None
    #: Slices in a row whose area stopped shrinking below the plateau share, and the first of them.
    flat: int = 0
    flat_from: int | None = None
    #: The ends the rules found on the slice where the chain stopped: ``(reason, cut)``.
    ends: list[tuple[str, int | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.mean_peak = self.mean_low = self.mean
        self.signal_peak = self.signal_low = float(self.peak)


def waist(track: Track, signal: float, pos: int, settings: PropagateSettings) -> bool:
    """Whether the object's signal along the axis (``signal``: a slice's area times its contrast
    over the anchor's) passed through a waist: it fell to ``waist`` times its highest value since
    the anchor and grew again by ``waist_regrow`` times, and by ``waist_rise`` times that highest
    value (less is the noise of a faint object). A blurred object fades towards its end
    even where the slice past it is as bright, and the object stacked behind it brightens again:
    the waist is where one ends and the other begins (``track.signal_low_at``). Updates ``track``."""
    if settings.waist <= 0:
        return False
    low, peak = track.signal_low, track.signal_peak
    if low <= settings.waist * peak and signal >= max(settings.waist_regrow * low, low + settings.waist_rise * peak):
        return True
    if signal > track.signal_peak:
        track.signal_peak = track.signal_low = signal
        track.signal_low_at = None
    elif signal <= track.signal_low:
        track.signal_low, track.signal_low_at = signal, pos
    return False


def plateau(track: Track, area: int, prev_area: int, pos: int, settings: PropagateSettings) -> bool:
    """Whether the mask's area (``area``, the previous slice's ``prev_area``) has stayed, below
    ``plateau`` times the largest area since the anchor, at least ``plateau_keep`` times the
    previous slice's on ``plateau_slices`` slices in a row: it stopped tapering to the object's
    end (``track.flat_from``: the first of them). Updates ``track``."""
    if settings.plateau <= 0:
        return False
    if area <= settings.plateau * track.peak and area >= settings.plateau_keep * prev_area:
        track.flat += 1
        if track.flat == 1:
            track.flat_from = pos
        return track.flat >= settings.plateau_slices
    track.flat, track.flat_from = 0, None
    return False


def stop_reason(ctx: Context, key, mask: Sparse, prev: Sparse, track: Track, pos: int) -> str | None:
    """Why an outward chain stops at plane ``key`` (position ``pos``) with ``mask`` (bool), or
    None to go on (``track`` is updated; ``track.cut``: where the object already ended).

    A mask that vanished, lost the previous slice or leaked stops the chain at once. Otherwise
    every rule of the object's identity along the axis (neck, plateau, contrast, waist, intensity, dip) is
    asked on the slice; where several find an end, the earliest end wins (the one nearest the
    anchor: an object that ended at one slice did not end at a later one; ``earliest_end``
    False: the first rule asked), and ``track.ends`` lists them all as ``(reason, cut)``."""
    s = ctx.settings
    if mask.area < max(s.min_area_px, s.min_area_share * prev.area):
        return "vanished"
    cap = is_cap(prev, track, s)  # the next slice may be much larger
    if (covered(prev, mask) if cap else iou(mask, prev)) < s.min_overlap:
        return "overlap"
    if mask.area > s.max_growth * max(prev.area, s.cap_area, 1):
        return "growth"
    ends = track.ends = []  # (reason, the first slice of the chain that is not the object's; None: pos)
    if track.low <= s.neck_share * track.peak and mask.area >= s.neck_regrow * max(track.low, 1):
        ends.append(("neck", None if track.low_at is None else track.low_at + (1 if pos > track.low_at else -1)))
    elif mask.area > track.peak:
        track.peak = track.low = mask.area
        track.low_at = None
    elif mask.area <= track.low:
        track.low, track.low_at = mask.area, pos
    if plateau(track, mask.area, prev.area, pos, s):
        ends.append(("plateau", track.flat_from))
    c0 = track.contrast
    if c0 is not None and abs(c0) >= MIN_ANCHOR_CONTRAST and (s.min_contrast > 0 or s.max_mean_step > 0):
        c, mean = ctx.contrast_of(key, mask)
        if s.min_contrast > 0 and (c is None or c / c0 < s.min_contrast):
            ends.append(("contrast", None))
        # steps are judged against the clearest contrast the object showed (a small blurred end
        # of an object is dimmer than its middle)
        track.clearest = max(track.clearest, abs(c0), abs(c or 0.0))
        if not cap and waist(track, mask.area * max((c or 0.0) / c0, 0.0), pos, s):
            ends.append(("waist", track.signal_low_at))
        jump = abs(mean - track.mean) if track.mean is not None and mean is not None else 0.0
        if s.max_mean_step > 0 and jump > s.max_mean_step * track.clearest and not cap:  # a cap is dimmer
            ends.append(("intensity", None))
        if s.dip > 0 and mean is not None and track.mean_peak is not None:
            # the intensity profile along the axis fell and rose again: a seam between two objects
            fell = track.mean_peak - track.mean_low
            if fell >= s.dip * track.clearest and mean - track.mean_low >= s.dip_rise * track.clearest:
                ends.append(("dip", track.mean_low_at))
            elif mean > track.mean_peak:
                track.mean_peak = track.mean_low = mean
                track.mean_low_at = None
            elif mean <= track.mean_low:
                track.mean_low, track.mean_low_at = mean, pos
        track.mean = mean
    if not ends:
        return None
    reason, track.cut = earliest(ends, pos) if s.earliest_end else ends[0]
    return reason


def earliest(ends: list[tuple[str, int | None]], pos: int) -> tuple[str, int | None]:
    """The end nearest the anchor among ``(reason, cut)`` found at position ``pos`` of a chain
    (a cut of None is ``pos`` itself); the first listed among equals."""
    return max(ends, key=lambda e: 0 if e[1] is None else abs(pos - e[1]))
