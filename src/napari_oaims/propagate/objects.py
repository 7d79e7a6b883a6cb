"""Many objects at once: every object of a seeds slice carried through the stack, each against
the others as a barrier (a voxel belongs to one object), landing as accepted objects."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_oaims.core import geometry
from napari_oaims.core.progress import emit
from napari_oaims.core.prompts import prior_prompt
from napari_oaims.core.results import Accepted
from napari_oaims.propagate.anchors import Anchor, Barrier
from napari_oaims.propagate.masks import Sparse
from napari_oaims.propagate.plan import plan, resolve_axis, resolve_extent
from napari_oaims.propagate.run import run
from napari_oaims.propagate.settings import resolve

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.session import Session


@dataclass(frozen=True)
class PropagatedObjects:
    """What :meth:`Session.propagate_objects` did: the accepted objects (largest seed first) and
    the seed label of each."""

    objects: tuple[Accepted, ...]
    labels: tuple[int, ...]
    info: dict[str, Any] = field(default_factory=dict)


def seed_objects(session: "Session", seeds, plane=None) -> dict[int, dict[tuple[int, ...], np.ndarray]]:
    """``{label: {plane key: bool plane}}`` from a label plane on ``plane`` or such a dict."""
    shape = tuple(session.source.plane_shape)
    if isinstance(seeds, dict):
        out = {}
        for label, planes in seeds.items():
            if not isinstance(planes, dict):
                raise ValueError(f"seeds of object {label} must be {{plane: mask}}, got {type(planes).__name__}")
            out[int(label)] = {session.source.check_key(k): np.asarray(m) > 0 for k, m in planes.items()}
    else:
        labels = np.asarray(seeds)
        if labels.shape != shape:
            raise ValueError(f"a seeds slice must have the plane shape {shape}, got {labels.shape}")
        if labels.dtype.kind not in "biu":
            raise ValueError(f"a seeds slice holds whole-number labels (0: no object), got dtype {labels.dtype}")
        key = session.source.check_key(plane)
        out = {int(v): {key: labels == v} for v in np.unique(labels) if v > 0}
    for label, planes in out.items():
        for m in planes.values():
            if m.shape != shape:
                raise ValueError(f"the seed of object {label} must have the plane shape {shape}, got {m.shape}")
    out = {label: {k: m for k, m in planes.items() if m.any()} for label, planes in out.items()}
    out = {label: planes for label, planes in out.items() if planes}
    if not out:
        raise ValueError("no seeds: the seeds hold no labelled pixel (label each object on a slice first)")
    return out


def settle(outs: dict) -> None:
    """Give each voxel claimed by several objects to the one most probably there (in place on
    each outcome's ``planes``): a voxel belongs to one object."""
    keys = {k for out in outs.values() for k, m in out.planes.items() if m.box is not None}
    for key in keys:
        claims = {
            lb: out.probs[key] for lb, out in outs.items() if key in out.planes and out.planes[key].box is not None
        }
        if len(claims) < 2:
            continue
        box = None
        for p in claims.values():
            box = geometry.union(box, p.box)
        labels = list(claims)
        stack = np.stack([claims[lb].in_box(box) for lb in labels])
        best = np.argmax(stack, axis=0)
        for i, lb in enumerate(labels):
            outs[lb].planes[key] = Sparse.of_mask((stack[i] > 0.5) & (best == i), box[:2])


def propagate_objects(
    session: "Session",
    seeds,
    plane=None,
    axis=None,
    method: str = "frozen",
    extent=None,
    barrier=None,
    overwrite: bool = False,
    progress=None,
    cancel=None,
    settings=None,
    classes=None,
    overrides=None,
) -> PropagatedObjects:
    """See :meth:`napari_oaims.Session.propagate_objects`."""
    from napari_oaims.propagate.api import checked_barrier
    from napari_oaims.propagate.apply import apply_propagation

    if session.prompted_planes():
        raise ValueError("an object is in progress: accept or clear it before propagating many objects")
    objects = seed_objects(session, seeds, plane)
    s = resolve(settings, overrides or {})
    a = resolve_axis(session, axis)
    ext = resolve_extent(session.source.spatial_shape[a], extent)
    taken = None if overwrite else checked_barrier(session, barrier)
    shape = session.source.plane_shape
    anchors: dict[int, dict] = {}
    for label, planes in objects.items():
        anchors[label] = {}
        for key, m in planes.items():
            box = geometry.bbox(m)
            anchors[label][key] = Anchor(box, m[geometry.box_slices(box)], [prior_prompt(m, shape)])
    order = sorted(objects, key=lambda lb: -sum(int(m.sum()) for m in objects[lb].values()))
    totals = {
        lb: sum(len(c.positions) for ln in plan(session, a, ext, s, anchors[lb]) for c in ln.chains) for lb in order
    }
    grand = sum(totals.values())
    t_all = time.perf_counter()
    outs, done = {}, 0
    message = f"propagating {len(order)} object{'s' if len(order) != 1 else ''}"
    for label in order:
        fence = Barrier(session.source, taken)
        for other in order:
            if other != label:
                for key, anchor in anchors[other].items():
                    fence.add(key, anchor.sparse)

        def step(d, _t, _m="", _base=done):
            emit(progress, _base + d, grand, message)

        outs[label] = run(session, a, method, ext, s, None, step, cancel, None, anchors=anchors[label], barrier=fence)
        done += totals[label]
    settle(outs)
    info = {"objects": len(order), "time_ms": round((time.perf_counter() - t_all) * 1e3, 1), "slices": grand}
    accepted = []
    for label in order:
        t0 = time.perf_counter()
        for key, m in objects[label].items():
            session.set_mask(m, plane=key)
        apply_propagation(session, outs[label], t0)
        class_id, class_name = (classes or {}).get(label, (1, "object"))
        accepted.append(session.accept(defer_update=True, class_id=class_id, class_name=class_name))
    return PropagatedObjects(tuple(accepted), tuple(order), info)
