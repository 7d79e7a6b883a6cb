"""The session's 3D methods, :meth:`propagate`, :meth:`suggest_slice` and :meth:`set_mask` (mixed
into :class:`~napari_oaims.session.Session`)."""

from __future__ import annotations

import time

import numpy as np


class PropagationMixin:
    """``Session.propagate``, ``Session.suggest_slice`` and ``Session.set_mask`` (exact anchors)."""

    def propagate(
        self,
        axis=None,
        method: str = "ema",
        extent=None,
        progress=None,
        cancel=None,
        on_slice=None,
        settings=None,
        **overrides,
    ):
        """Carry the object through the stack along ``axis`` (see :mod:`napari_oaims.propagate`).

        Parameters
        ----------
        axis : int, optional
            The axis to propagate along; default: the one axis of a 3D image that is not a plane
            axis. For (t, z, y, x) either t or z.
        method : str
            ``"ema"`` (student-teacher adapted slice by slice), ``"frozen"``, ``"registration"``
            or ``"copy"``.
        extent : (int, int), optional
            ``(start, stop)`` along ``axis``, stop exclusive; default the whole axis.
        progress : callable, optional
            ``progress(done, total)`` after each slice.
        cancel : threading.Event, optional
            Checked before each slice; a cancelled propagation changes nothing.
        on_slice : callable, optional
            ``on_slice(key, mask)`` with each slice's mask as it is made.
        settings : PropagateSettings or dict, optional
            :class:`~napari_oaims.propagate.PropagateSettings`; keyword ``overrides`` set single fields.

        Returns
        -------
        Propagated
            ``.mask`` (the object's whole mask), ``.changes``, ``.cancelled``, ``.anchors``, ``.info``.

        Notes
        -----
        Anchors are the planes with prompts; every other plane of their lines within ``extent``
        is redone. The call is one undoable step and one ``propagate`` event. The engine's
        weights are never changed (the student and teacher are temporary).
        """
        from napari_oaims.propagate import run
        from napari_oaims.propagate.apply import apply_propagation

        t0 = time.perf_counter()
        out = run(
            self,
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

    def set_mask(self, mask2d, plane=None):
        """Make ``mask2d`` the plane's mask exactly, without a prediction (e.g. a seed slice to
        propagate from). Its prompts become that mask as a prior, so the plane is an anchor and
        later prompts edit the mask. One undoable step, logged as a ``prior`` event with
        ``extra["exact"]`` and a ``predict`` event."""
        from napari_oaims.core import geometry
        from napari_oaims.core.history import PlaneEdit, PlaneState
        from napari_oaims.core.prompts import prior_prompt

        t0 = time.perf_counter()
        key = self.source.check_key(plane)
        prompt = prior_prompt(mask2d, self.source.plane_shape)
        st = self.planes.setdefault(key, PlaneState([]))
        box = geometry.union(prompt.box, st.bbox)
        region = geometry.box_slices(box)
        before = st.mask[region].copy() if st.mask is not None else np.zeros(prompt.mask[region].shape, bool)
        after = prompt.mask[region].copy()
        change = PlaneEdit(key, list(st.prompts), [prompt], region, before, after, st.bbox, prompt.box)
        self.prior_masks[len(self.events)] = prompt.mask
        self._log("prior", plane=key, coords=list(prompt.box), extra={**self._adaptation_extra(), "exact": True})
        result = self._result(self._apply([change], before=False))
        self._history.push([change])
        area = int(np.count_nonzero(prompt.mask))
        info = {"window": None, "area": area, "passes": 0, "exact": True}
        self._log("predict", plane=key, latency_ms=(time.perf_counter() - t0) * 1e3, extra=info, result=result)
        return result

    def suggest_slice(self, axis=None, extent=None, settings=None) -> int | None:
        """The position along ``axis`` of the propagated slice to check next: where its mask
        disagrees most with the registration proxy, weighted by the distance to the anchors
        (:mod:`napari_oaims.propagate.suggest`); None when nothing is uncertain."""
        from napari_oaims.propagate import suggest

        return suggest(self, axis=axis, extent=extent, settings=settings)
