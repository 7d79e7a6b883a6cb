"""The session's 3D methods, :meth:`propagate` and :meth:`suggest_slice` (mixed into
:class:`~napari_oaims.session.Session`)."""

from __future__ import annotations

import time


class PropagationMixin:
    """``Session.propagate`` and ``Session.suggest_slice``."""

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

        Anchors are the planes with prompts; every other plane of their lines within ``extent``
        (``(start, stop)``, stop exclusive; default the whole axis) is redone. ``method``: ``"ema"``,
        ``"frozen"``, ``"registration"`` or ``"copy"``; ``settings`` (a
        :class:`~napari_oaims.propagate.PropagateSettings` or its dict) and keyword overrides set
        the rest. ``progress(done, total)`` after each slice; ``cancel`` (a ``threading.Event``)
        is checked before each slice; ``on_slice(key, mask)`` gets each slice's mask as it is made.
        Returns a :class:`~napari_oaims.propagate.Propagated` (``.mask``: the object's mask);
        one undoable step and one ``propagate`` event. A cancelled or empty propagation changes
        nothing (``.cancelled`` tells which). The engine's weights are never changed.
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

    def suggest_slice(self, axis=None, extent=None, settings=None) -> int | None:
        """The position along ``axis`` of the propagated slice to check next: where its mask
        disagrees most with the registration proxy, weighted by the distance to the anchors
        (:mod:`napari_oaims.propagate.suggest`); None when nothing is uncertain."""
        from napari_oaims.propagate import suggest

        return suggest(self, axis=axis, extent=extent, settings=settings)
