"""Structures that run through the whole stack: a wall, a vessel or a sheet of tissue beside the
object, as bright (or as dark) as the object on every slice.

Where such a structure touches the object, no slice shows an edge between them, and a model that
carries the mask takes some of it in at every step (a mass pressed against a wall of similar
intensity). The stack tells them apart: the structure does not end where the object does. A
pixel whose column along the axis stays within the anchor's own intensity band on (almost) every
slice of the propagation's extent, the anchor slice included, belongs to something that runs
through the stack; where the anchor's mask leaves it out, the user left it out, and no
propagated slice takes it. A slice whose mask holds (almost) nothing else has no object left: an
outward chain has run past the object's end along the structure (between two anchors the object
goes on). Between two anchors, the slices nearer the far anchor also leave out what runs through
and the far anchor's mask leaves out (:func:`merge_through`): a correction that trims the wall
off one slice trims it off the slices it is nearest to.

The rule stays out of the way of an object that itself runs through the stack (a tube along the
axis): when more than ``PropagateSettings.through`` of the anchor's own mask runs through, the
chain carries its mask without it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from napari_oaims.core import guidance
from napari_oaims.propagate.masks import Sparse

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.propagate.steps import Context

#: The anchor's intensity band: these percentiles of its (smoothed) values inside its mask.
BAND = (5.0, 95.0)
#: Side (pixels) of the mean filter that takes the texture out before the band is compared.
SMOOTH = 3
#: A column runs through when at least this share of the extent's slices (the anchor's among
#: them) lie within the band there: the texture and noise of a long structure leave it now and then.
SLICE_SHARE = 0.8
#: At most this many slices of the extent, evenly spread, are read for the map (a deep stack
#: costs no more than a shallow one).
MAX_SLICES = 64
#: Codes of :func:`through_map`: runs through inside the anchor's mask / outside it.
OWN, BLOCKED = 1, 2
#: The map covers the anchor's box and this many times its larger side on each side.
MARGIN = 1.0


def map_window(box, plane_shape: tuple[int, int]) -> guidance.Window:
    """The square window of the map: the anchor's ``box`` and :data:`MARGIN` times its larger
    side around it, no larger than the plane's larger side and shifted to lie on the plane as
    far as it can (a large anchor on a large plane reads no more than the plane)."""
    y0, x0, y1, x1 = box
    side = max(y1 - y0, x1 - x0)
    size = min(side + 2 * (int(np.ceil(MARGIN * side)) + SMOOTH), max(plane_shape))
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    y = int(np.clip(cy - size // 2, 0, max(plane_shape[0] - size, 0)))
    x = int(np.clip(cx - size // 2, 0, max(plane_shape[1] - size, 0)))
    return guidance.Window(y, x, size)


def through_map(ctx: "Context", anchor_key, keys: Iterable) -> tuple[Sparse, int] | None:
    """What runs through the stack near the chain's anchor ``anchor_key``: a :class:`Sparse` of
    codes, :data:`OWN` where a column runs through ``keys`` (the planes of the line within the
    extent: the anchor's intensity band on :data:`SLICE_SHARE` of them and on the anchor) inside
    the anchor's mask, :data:`BLOCKED` where it does outside it; and the area of the anchor's mask
    that does not run through. None when the rule does not apply (no anchor mask, or too much of
    it runs through)."""
    anchor = ctx.anchors[anchor_key].sparse
    share = ctx.settings.through
    keys = list(keys)
    if share <= 0 or anchor.box is None or anchor_key not in keys:
        return None
    window = map_window(anchor.box, ctx.source.plane_shape)
    own = ndimage.uniform_filter(ctx.source.crop(anchor_key, window), SMOOTH)
    inside = anchor.window(window) > 0.5
    lo, hi = np.percentile(own[inside], BAND)
    if len(keys) > MAX_SLICES:  # evenly spread slices tell a structure along the whole extent
        keys = [keys[i] for i in np.unique(np.linspace(0, len(keys) - 1, MAX_SLICES).round().astype(int))]
    count = np.zeros(own.shape, np.int32)
    for key in keys:
        plane = own if key == anchor_key else ndimage.uniform_filter(ctx.source.crop(key, window), SMOOTH)
        count += (plane >= lo) & (plane <= hi)
    runs = (count >= SLICE_SHARE * len(keys)) & (own >= lo) & (own <= hi)
    _, _, wy, wx = window.clip(ctx.source.plane_shape)
    on_plane = np.zeros_like(runs)
    on_plane[wy, wx] = True
    runs &= on_plane
    n_inside = int(np.count_nonzero(inside))
    if np.count_nonzero(runs & inside) > share * n_inside:
        return None
    codes = np.where(runs, np.where(inside, OWN, BLOCKED), 0).astype(np.uint8)
    box = (window.y0, window.x0, window.y0 + window.size, window.x0 + window.size)
    return Sparse(box, codes), n_inside - int(np.count_nonzero(runs & inside))


def cut_through(mask: Sparse, through: tuple[Sparse, int] | None, min_area: float) -> Sparse:
    """``mask`` (bool) without what runs through the stack outside the anchor's mask
    (:func:`through_map`); empty when less than ``min_area`` of it does not run through (the
    chain ran past the object's end along the structure; ``min_area`` 0: never empty)."""
    if through is None or mask.box is None:
        return mask
    codes = through[0].in_box(mask.box, np.uint8)
    m = mask.in_box(mask.box, bool)
    if not np.any(m & (codes > 0)):
        return mask
    kept = m & (codes != BLOCKED)
    if np.count_nonzero(kept & (codes == 0)) < min_area:
        return Sparse.empty()
    return Sparse.of_mask(kept, mask.box[:2])


def merge_through(start: tuple[Sparse, int], end: tuple[Sparse, int]) -> tuple[Sparse, int]:
    """The map of a chain's start anchor (:func:`through_map`) with what its end anchor says on
    top: the end's mask keeps what runs through inside it, and what the end leaves out is kept
    out (for the slices of a gap nearer the end anchor). The start's free area is kept."""
    from napari_oaims.core import geometry

    box = geometry.union(start[0].box, end[0].box)
    a, b = start[0].in_box(box, np.uint8), end[0].in_box(box, np.uint8)
    return Sparse(box, np.where(b > 0, b, a).astype(np.uint8)), start[1]
