"""The session's 3D methods, :meth:`propagate`, :meth:`suggest_slice` and :meth:`set_mask` (mixed
into :class:`~napari_oaims.session.Session`)."""

from __future__ import annotations

import time

import numpy as np


def checked_barrier(session, barrier):
    """``barrier`` if it has the image's spatial shape (None stays None), else a ValueError."""
    if barrier is None:
        return None
    shape = tuple(getattr(barrier, "shape", ()))
    if shape != tuple(session.spatial_shape):
        raise ValueError(
            f"the barrier (voxels already taken) must have the image's spatial shape {tuple(session.spatial_shape)}, "
            f"got {shape or type(barrier).__name__}"
        )
    return barrier


class PropagationMixin:
    """``Session.propagate``, ``Session.suggest_slice`` and ``Session.set_mask`` (exact anchors)."""

    def propagate(
        self,
        axis=None,
        method: str = "frozen",
        extent=None,
        progress=None,
        cancel=None,
        on_slice=None,
        settings=None,
        barrier=None,
        overwrite: bool = False,
        **overrides,
    ):
        """Carry the object through the stack along ``axis`` (see :mod:`napari_oaims.propagate`).

        Parameters
        ----------
        axis : int, optional
            The axis to propagate along; default: the one axis of a 3D image that is not a plane
            axis. For (t, z, y, x) either t or z.
        method : str
            ``"frozen"`` (the model carries the mask slice to slice; default), ``"ema"`` (a
            student-teacher copy adapted slice by slice: the same corrections as ``"frozen"`` on
            the benchmark, at several times the cost), ``"registration"`` or ``"copy"``.
        extent : (int, int), optional
            ``(start, stop)`` along ``axis``, stop exclusive; default the whole axis.
        progress : callable, optional
            ``progress(done, total, message)`` after each slice (:mod:`napari_oaims.core.progress`).
        cancel : Cancel, threading.Event or callable, optional
            Checked before each slice: when set, :class:`~napari_oaims.core.progress.Cancelled`
            is raised and the session is left as it was (masks, prompts, log, undo).
        on_slice : callable, optional
            ``on_slice(key, mask)`` with each slice's mask as it is made.
        settings : PropagateSettings or dict, optional
            :class:`~napari_oaims.propagate.PropagateSettings`; keyword ``overrides`` set single fields.
        barrier : array, optional
            Voxels already taken (the image's spatial shape, nonzero where taken, e.g. the
            accepted objects' labels): no propagated slice takes them unless ``overwrite``.

        Returns
        -------
        Propagated
            ``.mask`` (the object's whole mask), ``.changes``, ``.anchors``, ``.info``.

        Notes
        -----
        Anchors are the planes with prompts; every other plane of their lines within ``extent``
        is redone. The call is one undoable step and one ``propagate`` event. The engine's
        weights are never changed (the student and teacher are temporary).
        """
        from napari_oaims.propagate import run
        from napari_oaims.propagate.anchors import Barrier
        from napari_oaims.propagate.apply import apply_propagation

        t0 = time.perf_counter()
        out = run(
            self,
            barrier=Barrier(self.source, None if overwrite else checked_barrier(self, barrier)),
            axis=axis,
            method=method,
            extent=extent,
            settings=settings,
            overrides=overrides,
            progress=progress,
            cancel=cancel,
            on_slice=on_slice,
        )
        return apply_propagation(self, out, t0)

    def propagate_objects(
        self,
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
        **overrides,
    ):
        """Carry every object of a seeds slice through the stack at once and accept each.

        Parameters
        ----------
        seeds : array (plane shape) or dict
            A label plane (each value > 0 one object) on ``plane``, or ``{label: {plane: mask2d}}``
            (objects seeded on one or more planes).
        plane : sequence of int, optional
            The plane of a label-plane ``seeds``.
        axis, method, extent, settings, overrides
            As for :meth:`propagate`.
        barrier : array, optional
            Voxels already taken (the image's spatial shape, nonzero where taken, e.g. accepted
            objects): no object takes them unless ``overwrite``.
        progress : callable, optional
            ``progress(done, total, message)`` after each slice (:mod:`napari_oaims.core.progress`).
        cancel : Cancel, threading.Event or callable, optional
            Checked before each slice: when set, :class:`~napari_oaims.core.progress.Cancelled`
            is raised and the session is left as it was (no object accepted, nothing logged).
        classes : dict, optional
            ``{label: (class_id, class_name)}`` for the accepted objects (default class 1 "object").

        Returns
        -------
        PropagatedObjects
            ``.objects`` (one :class:`~napari_oaims.core.results.Accepted` per seed label, largest
            seed first), ``.labels`` (their seed labels), ``.info``.

        Notes
        -----
        Each object is carried against a barrier of every other object's seeds (and ``barrier``);
        a voxel that several objects reach goes to the one most probably there, so a voxel
        belongs to one object. Each object is logged as its seed (``prior``), its ``propagate`` and its
        ``accept``; the learning of :meth:`accept` is deferred (:meth:`run_pending_updates`).
        """
        from napari_oaims.propagate.objects import propagate_objects

        return propagate_objects(
            self,
            seeds,
            plane=plane,
            axis=axis,
            method=method,
            extent=extent,
            barrier=barrier,
            overwrite=overwrite,
            progress=progress,
            cancel=cancel,
            settings=settings,
            classes=classes,
            overrides=overrides,
        )

    def set_mask(self, mask2d, plane=None):
        """Make ``mask2d`` the plane's mask exactly, without a prediction (e.g. a seed slice to
        propagate from). Its prompts become that mask as a prior, so the plane is an anchor and
        later prompts edit the mask. One undoable step, logged as a ``prior`` event with
        ``extra["exact"]`` and a ``predict`` event."""
        from napari_oaims.core import geometry
        from napari_oaims.core.prompts import prior_prompt

        t0 = time.perf_counter()
        key = self.source.check_key(plane)
        prompt = prior_prompt(mask2d, self.source.plane_shape)
        self.prior_masks[len(self.events)] = prompt.mask
        self.record("prior", plane=key, coords=list(prompt.box), extra={"exact": True}, adaptation=True)
        area = int(np.count_nonzero(prompt.mask))
        return self.apply_masks(
            {key: (prompt.box, prompt.mask[geometry.box_slices(prompt.box)])},
            "predict",
            prompts={key: [prompt]},
            extra={"window": None, "area": area, "passes": 0, "exact": True},
            plane=key,
            started=t0,
        )

    def suggest_slice(self, axis=None, extent=None, settings=None) -> int | None:
        """The position along ``axis`` of the propagated slice to check next: where its mask
        disagrees most with the registration proxy, weighted by the distance to the anchors
        (:mod:`napari_oaims.propagate.suggest`); None when nothing is uncertain."""
        from napari_oaims.propagate import suggest

        return suggest(self, axis=axis, extent=extent, settings=settings)
