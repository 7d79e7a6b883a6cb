"""Where the user should look next (Tian, Chen and Gao, *A Dynamic Interactive Learning Framework for
Automated 3D Medical Image Segmentation*, algorithm 4, adapted to one click at a time).

Every propagated slice (a plane of the object with a mask but no prompts) is scored by how much
its mask disagrees with the registration proxy (the nearest anchors' masks warped onto it, fused
by distance between two anchors): the disagreeing pixels, times ``d / (d + DISTANCE_SCALE)``
with ``d`` the distance to the nearest anchor (a slice next to an anchor is rarely wrong). The
best slice is suggested, deterministically (Tian, Chen and Gao sample in proportion to the score; a
viewer wants one answer that does not change when asked twice). None when no slice disagrees
by at least ``MIN_DISAGREEMENT`` of its area.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from napari_oaims.core import geometry

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.session import Session

DISTANCE_SCALE = 2.0
MIN_DISAGREEMENT = 0.1


def scores(session: "Session", axis=None, extent=None, settings=None) -> list[dict]:
    """Every candidate slice with its score (``plane``, ``position``, ``score``, ``share``, ``distance``)."""
    from napari_oaims.propagate.anchors import Barrier, session_anchors
    from napari_oaims.propagate.masks import Sparse, xor_area
    from napari_oaims.propagate.plan import key_of, plan, resolve_axis, resolve_extent
    from napari_oaims.propagate.settings import resolve
    from napari_oaims.propagate.steps import Context

    s = resolve(settings, {})
    a = resolve_axis(session, axis)
    ext = resolve_extent(session.source.spatial_shape[a], extent)
    anchors = session_anchors(session)
    if not anchors:
        return []
    try:
        lines = plan(session, a, ext, s, anchors)
    except ValueError:
        return []
    src = session.source
    kpos = [x for x in range(len(src.spatial_shape)) if x not in src.plane_axes].index(a)
    ctx = Context(session, "registration", s, anchors, Barrier(src))
    out = []
    for ln in lines:
        if not ln.nonempty:
            continue
        every = sorted(ln.anchors)
        for pos in ln.targets:
            key = key_of(ln.line, kpos, pos)
            got = session.plane_crop(key)
            if got is None:
                continue
            mask = Sparse.of_mask(got[1], got[0][:2])
            below = [p for p in ln.nonempty if p < pos]
            above = [p for p in ln.nonempty if p > pos]
            ends = ([below[-1]] if below else []) + ([above[0]] if above else [])
            probs = [(p, ctx.carry_step(key, ln.anchors[p])[0]) for p in ends]
            if len(probs) == 2:
                (pa, ra), (pb, rb) = probs
                box = geometry.union(ra.box, rb.box)
                fused = ((pb - pos) * ra.in_box(box) + (pos - pa) * rb.in_box(box)) / (pb - pa) if box else None
                proxy = Sparse(box, fused).threshold() if box else Sparse.empty()
            else:
                proxy = probs[0][1].threshold()
            wrong = xor_area(mask, proxy)
            share = wrong / max(mask.area, proxy.area, 1)
            d = min(abs(pos - p) for p in every)
            out.append(
                {
                    "plane": list(key),
                    "position": pos,
                    "score": float(wrong * d / (d + DISTANCE_SCALE)),
                    "share": round(float(share), 4),
                    "distance": int(d),
                }
            )
    return out


def suggest(session: "Session", axis=None, extent=None, settings=None) -> int | None:
    """The position along ``axis`` of the slice to check next, or None (see the module docstring)."""
    rows = [r for r in scores(session, axis, extent, settings) if r["share"] >= MIN_DISAGREEMENT]
    if not rows:
        return None
    best = max(rows, key=lambda r: (r["score"], -r["position"]))
    return int(best["position"]) if np.isfinite(best["score"]) else None
