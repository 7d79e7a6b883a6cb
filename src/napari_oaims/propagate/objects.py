"""Many objects at once: every object of a seeds slice carried through the stack, each against
the others as a barrier (a voxel belongs to one object), landing as accepted objects."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_oaims.core import geometry
from napari_oaims.core.progress import check_cancel, emit
from napari_oaims.core.prompts import prior_prompt
from napari_oaims.core.results import Accepted
from napari_oaims.propagate.anchors import Anchor, Barrier
from napari_oaims.propagate.masks import Sparse
from napari_oaims.propagate.plan import resolve_axis, resolve_extent
from napari_oaims.propagate.run import Carry, Walk, prepare
from napari_oaims.propagate.settings import resolve

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.session import Session


#: A seed smaller than this share of the median seed of a call is an end-cap of its object
#: (``PropagateSettings.cap_area``).
CAP_SHARE = 0.5


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


def settle(walks: list[Walk], probs: list[Sparse]) -> list[Sparse]:
    """The slices several objects predicted on one plane, each voxel left to the one object
    whose previous slice held it, else to the object most probably there (a voxel belongs to one
    object, and a structure that stays in place along the axis stays with the object that held
    it); what an object loses is kept out of it (its barrier's
    :attr:`~napari_oaims.propagate.anchors.Barrier.blocked`)."""
    box = None
    for p in probs:
        box = geometry.union(box, p.box)
    if box is None:
        return probs
    stack = np.stack([p.in_box(box) for p in probs])
    best = np.argmax(stack, axis=0)
    held = np.stack([w.prev.in_box(box, bool) for w in walks])  # each object's previous slice
    only = held.sum(axis=0) == 1
    best = np.where(only, np.argmax(held, axis=0), best)
    out = []
    for i, (walk, p) in enumerate(zip(walks, probs)):
        lost = (stack[i] > 0.5) & (best != i)
        if p.box is None or not lost.any():
            out.append(p)
            continue
        lost = Sparse.of_mask(lost, box[:2])
        walk.carry.barrier.keep_out(walk.key, lost)
        out.append(Sparse(p.box, np.where(lost.in_box(p.box, bool), 0, p.values).astype(p.values.dtype)))
    return out


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
    # the objects' scale: the median of their seeds (their largest seeded slice each)
    median = float(np.median([max(int(m.sum()) for m in planes.values()) for planes in objects.values()]))
    if s.min_window is None:  # one window floor for all objects, as their logged propagations redo it
        s = s.with_(min_window=session.later_window())
    if not s.cap_area:  # a seed much smaller than the others is an end-cap of its object
        s = s.with_(cap_area=CAP_SHARE * median)
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
    carries: dict[int, Carry] = {}
    for label in order:  # each object kept out of the other objects' seeds
        fence = Barrier(session.source, taken)
        for other in order:
            if other != label:
                for key, anchor in anchors[other].items():
                    fence.add(key, anchor.sparse)
        carries[label] = prepare(session, a, method, ext, s, anchors=anchors[label], barrier=fence)
    grand = sum(c.total for c in carries.values())
    message = f"propagating {len(order)} object{'s' if len(order) != 1 else ''}"
    check_cancel(cancel)
    t_all = time.perf_counter()
    while True:  # lock-step: every object one slice further, each slice settled before the next
        walks = [(lb, w) for lb in order if (w := carries[lb].walk) is not None]
        if not walks:
            break
        check_cancel(cancel)
        probs = {lb: w.predict() for lb, w in walks}
        by_key: dict[tuple, list[int]] = {}
        for lb, w in walks:
            by_key.setdefault(w.key, []).append(lb)
        for labels in by_key.values():
            if len(labels) > 1:
                settled = settle([carries[lb].walk for lb in labels], [probs[lb] for lb in labels])
                probs.update(zip(labels, settled))
        for lb, w in walks:
            key = w.key
            mask = w.commit(probs[lb])
            if mask is not None:  # what an object keeps is a barrier to the others from now on
                for other in order:
                    if other != lb:
                        carries[other].barrier.add(key, mask)
        emit(progress, sum(c.done for c in carries.values()), grand, message)
    elapsed = (time.perf_counter() - t_all) * 1e3
    outs = {lb: carries[lb].outcome(elapsed) for lb in order}
    overlap(outs)
    info = {"objects": len(order), "time_ms": round(elapsed, 1), "slices": grand}
    accepted = []
    for label in order:
        t0 = time.perf_counter()
        for key, m in objects[label].items():
            session.set_mask(m, plane=key)
        apply_propagation(session, outs[label], t0)
        class_id, class_name = (classes or {}).get(label, (1, "object"))
        accepted.append(session.accept(defer_update=True, class_id=class_id, class_name=class_name))
    return PropagatedObjects(tuple(accepted), tuple(order), info)


def overlap(outs: dict) -> None:
    """Give each voxel that several objects' fused slices claim (between two seeded planes) to
    the one most probably there (in place on each outcome's ``planes``)."""
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
