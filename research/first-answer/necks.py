"""The neck rule tried in the answer step (not in the package): cut the model's mask where it joins
two blobs by a neck clearly narrower than both, and keep the parts that hold the positive prompts.

``patch(share, min_part)`` puts it into ``napari_oaims.answer.window_answer`` (after the rule that
keeps the prompted components), for the benchmark scripts of this folder.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_oaims.core.regions import inside_seeds, keep_prompted

#: ``cut_necks`` cuts a mask where it is narrower than this share of the inscribed diameter
#: of both parts it joins (1: any waist; two discs of radius r whose centres lie 1.5 r apart
#: meet in a neck of 0.66 of their diameter).
NECK_SHARE = 0.6
#: ``cut_necks`` drops only parts at least this wide (inscribed diameter, px): narrower
#: bumps are the object's own outline.
NECK_MIN_PART = 8.0


def neck_parts(mask: np.ndarray, share: float = NECK_SHARE) -> np.ndarray:
    """Label image of the parts of ``mask`` (one label per part, 0 outside) joined by necks
    narrower than ``share`` of both parts' inscribed diameters.

    The mask is split by a watershed of its distance transform (one basin per local maximum);
    then neighbouring basins are merged from the widest joint down, a joint being kept as a cut
    only where its width (twice the distance at its highest point) is below ``share`` times the
    inscribed diameter of both sides (the merge tree of the distance transform's maxima).
    """
    from skimage.segmentation import watershed

    mask = np.asarray(mask, bool)
    dist = ndimage.distance_transform_edt(mask)
    basins = watershed(-dist, mask=mask, connectivity=2)
    n = int(basins.max())
    if n < 2:
        return basins
    radius = np.zeros(n + 1)
    radius[1:] = ndimage.maximum(dist, basins, index=np.arange(1, n + 1))
    h, w = mask.shape
    pairs, heights = [], []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        p = (slice(0, h - dy), slice(max(-dx, 0), w - max(dx, 0)))
        q = (slice(dy, h), slice(max(dx, 0), w - max(-dx, 0)))
        a, b = basins[p], basins[q]
        edge = (a != b) & (a > 0) & (b > 0)
        pairs.append(np.sort(np.stack([a[edge], b[edge]], 1), axis=1))
        heights.append(np.minimum(dist[p], dist[q])[edge])
    pairs, heights = np.concatenate(pairs), np.concatenate(heights)
    keys = pairs[:, 0] * (n + 1) + pairs[:, 1]
    uniq, inv = np.unique(keys, return_inverse=True)
    saddle = np.full(len(uniq), -1.0)
    np.maximum.at(saddle, inv, heights)
    parent = list(range(n + 1))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for k in np.argsort(-saddle, kind="stable"):
        ri, rj = root(int(uniq[k] // (n + 1))), root(int(uniq[k] % (n + 1)))
        if ri == rj:
            continue
        if saddle[k] >= share * min(radius[ri], radius[rj]):
            parent[rj] = ri
            radius[ri] = max(radius[ri], radius[rj])
    lut = np.array([root(i) for i in range(n + 1)])
    return lut[basins]


def cut_necks(
    mask: np.ndarray, seeds: np.ndarray, keep: np.ndarray | None = None, share: float = NECK_SHARE
) -> np.ndarray:
    """``mask`` without its parts (``neck_parts``) that hang on it by a narrow neck, hold no
    seed (N x 2 window pixels), lie for less than half in ``keep`` (a prior mask or a box), and
    are at least ``NECK_MIN_PART`` px wide. Unchanged when no part holds a seed."""
    mask = np.asarray(mask, bool)
    pts = inside_seeds(seeds, mask.shape)
    if len(pts) == 0 or not mask.any():
        return mask
    parts = neck_parts(mask, share)
    ids = np.unique(parts[parts > 0])
    if len(ids) < 2:
        return mask
    seeded = {int(v) for v in parts[pts[:, 0], pts[:, 1]] if v}
    if not seeded:
        return mask
    dist = ndimage.distance_transform_edt(mask)
    wide = ndimage.maximum(dist, parts, index=ids) * 2 >= NECK_MIN_PART
    area = ndimage.sum(mask, parts, index=ids)
    held = ndimage.sum(keep, parts, index=ids) if keep is not None else np.zeros(len(ids))
    drop = [int(i) for i, w, a, h in zip(ids, wide, area, held) if int(i) not in seeded and w and h < a / 2]
    return mask & ~np.isin(parts, drop) if drop else mask


def patch(share: float = NECK_SHARE, min_part: float = NECK_MIN_PART) -> None:
    """Run :func:`cut_necks` (``share``, parts at least ``min_part`` px wide) after the
    prompted-components rule in every answer of :mod:`napari_oaims.answer`."""
    from napari_oaims import answer

    global NECK_MIN_PART
    NECK_MIN_PART = min_part
    plain = answer.window_answer

    def window_answer(session, key, prompts, window, logits):
        kept, (ys, xs) = plain(session, key, prompts, window, logits)
        offset = np.array([ys.start, xs.start])
        seeds = [answer.positive_points(prompts) - offset]
        held = np.zeros(kept.shape, bool)  # what a box or prior says is the object
        for p in prompts:
            if p.kind == "box":
                seeds.append(np.array([[(p.box[0] + p.box[2] - 1) / 2, (p.box[1] + p.box[3] - 1) / 2]]) - offset)
                b = np.clip(np.array(p.box) - np.r_[offset, offset], 0, None)
                held[b[0] : b[2], b[1] : b[3]] = True
            elif p.kind == "prior":
                held |= np.asarray(p.mask[ys, xs], bool)
        seeds = np.concatenate(seeds)
        cut = cut_necks(kept, seeds, held, share)
        return keep_prompted(cut, seeds, held if held.any() else None), (ys, xs)

    answer.window_answer = window_answer
