"""Carrying the object through a stack, and where to look next, in the annotator.

*Propagate* runs :meth:`napari_oaims.Session.propagate` as a thread job of the
queue (the viewer stays live; prompts given meanwhile wait for it), with a progress bar of slices
under the stack buttons; the *Cancel* button stops it. Each slice is shown in the preview as soon
as it is made (:mod:`.propagation_view`). Once the propagation is over, every slice it showed is
made to match the session again, so a cancelled or failed propagation leaves the preview (and the
session) as they were; a finished one is one step of the annotator's undo history.

*Propagate all* carries every object of the slice on screen (the objects layer's labels there: 2D
objects accepted on it, or labels painted by hand) through the stack at once with
:meth:`napari_oaims.Session.propagate_objects`, in the same kind of job (one progress bar, one
cancel); the objects elsewhere in the layer are barriers. The objects land as new accepted objects
(replacing their seeds) painted together, with one redraw of the layer, one step of the
annotator's undo history for all of them.

*Suggest next slice* moves the viewer to :meth:`~napari_oaims.Session.suggest_slice`.

The axis (:func:`stack_axis`): the one image axis that is neither shown on screen nor a single
slice; with more of them (t, z, y, x) the one whose slider was moved last, else the innermost
(z of t, z, y, x).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QTimer

from napari_oaims.core import geometry
from napari_oaims.core.progress import Cancelled
from napari_oaims.core.ui import stack_axis
from napari_oaims.plugin.widget.editing import SESSION
from napari_oaims.plugin.widget.jobs import Job
from napari_oaims.plugin.widget.propagation_view import Relay, Run, RunView

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from napari.components import Dims

    from napari_oaims.core.history import History
    from napari_oaims.plugin.widget.annotate_panel import AnnotatePanel
    from napari_oaims.plugin.widget.current import Current
    from napari_oaims.plugin.widget.jobs import JobQueue
    from napari_oaims.plugin.widget.layers import PluginLayers
    from napari_oaims.plugin.widget.objects import AcceptedObjects
    from napari_oaims.propagate import Propagated
    from napari_oaims.session import Session

#: (method, label, tooltip) offered for propagation, the default first.
METHOD_CHOICES = (
    ("frozen", "model", "the model carries the mask slice to slice (fast; as few corrections as the EMA adapter)"),
    ("ema", "EMA adapter", "a temporary student-teacher copy of the model adapts to each slice (several times slower)"),
    ("registration", "registration", "the nearest prompted slice's mask, warped by optical flow (no model)"),
    ("copy", "copy", "the nearest prompted slice's mask, copied (no model)"),
)


class StackTools:
    """The stack actions: propagate, propagate all, cancel, suggest the next slice.

    Parameters
    ----------
    dims : napari.components.Dims
        The viewer's dims: the axis moved last, axis names, moving to a suggested slice.
    current : Current
        The session and image layer it works on (read only).
    layers, objects : PluginLayers, AcceptedObjects
        The preview slices are written into; the objects layer (seeds, new objects).
    jobs : JobQueue
        Every action runs as a job of this queue.
    history : History
        The annotator's undo history (a propagation is one step of it).
    panel : AnnotatePanel
        Its stack buttons, method choice and their tooltips.
    update_status : callable
        Called when what the status line shows may have changed.
    timer : QTimer
        Writes a propagation's slices that arrived together (a timer of the widget, so that it goes
        with it; see :class:`~.propagation_view.RunView`).
    """

    def __init__(
        self,
        dims: "Dims",
        current: "Current",
        layers: "PluginLayers",
        objects: "AcceptedObjects",
        jobs: "JobQueue",
        history: "History",
        panel: "AnnotatePanel",
        update_status: "Callable[[], None]",
        timer: QTimer,
    ):
        self._dims = dims
        self._current = current
        self._layers = layers
        self._objects = objects
        self._jobs = jobs
        self._history = history
        self._panel = panel
        self._update_status = update_status
        self._view = RunView(current, layers, panel, timer)
        self._relay = Relay(self._view)
        self._last_moved: int | None = None  # viewer axis
        self._step = tuple(dims.current_step)
        dims.events.current_step.connect(self._on_step)

    def close(self) -> None:
        """Stop following the viewer; a propagation in progress is cancelled."""
        self._dims.events.current_step.disconnect(self._on_step)
        self.cancel()

    def _progressed(self, done: int, total: int, message: str = "") -> None:
        """A propagation's progress (worker thread), relayed to the GUI thread."""
        self._relay.progressed.emit(done, total)

    @property
    def running(self) -> bool:
        """True while a propagation runs."""
        return self._view.run is not None

    # -- the axis ------------------------------------------------------------------------------
    def _on_step(self, event=None) -> None:
        step = tuple(self._dims.current_step)
        moved = (
            [a for a, (old, new) in enumerate(zip(self._step, step)) if old != new]
            if len(step) == len(self._step)
            else []
        )
        self._step, before = step, self._last_moved
        if len(moved) == 1:
            self._last_moved = moved[0]
        if self._last_moved != before:
            self.refresh()  # the tooltips name the axis

    def _offset(self) -> int:
        layer = self._current.image_layer
        return self._dims.ndim - layer.ndim if layer is not None else 0

    def axis(self) -> int | None:
        """The session's axis to propagate along now (None: no stack, or no session)."""
        session = self._current.session
        if session is None:
            return None
        last = None if self._last_moved is None else self._last_moved - self._offset()
        return stack_axis(session.spatial_shape, session.source.plane_axes, last)

    def axis_name(self, axis: int) -> str:
        """Image axis ``axis`` in words, with the viewer's label of it if the user named it."""
        labels = self._dims.axis_labels
        index = axis + self._offset()
        label = str(labels[index]) if 0 <= index < len(labels) else ""
        named = label and label.lstrip("-") and not label.lstrip("-").isdigit()
        return f"axis {axis} ({label})" if named else f"axis {axis}"

    def unavailable(self) -> str | None:
        """Why the stack actions cannot run now (None: they can)."""
        session = self._current.session
        if session is None:
            return "open an image first"
        if len(session.spatial_shape) < 3:
            return f"the image is 2D ({' x '.join(map(str, session.spatial_shape))}): propagation needs a stack"
        if self.axis() is None:
            return "every axis not shown on screen is a single slice"
        return None

    # -- propagate -----------------------------------------------------------------------------
    def propagate(self, method: str | None = None) -> None:
        """Carry the object through the stack (``method``: one of :data:`METHOD_CHOICES`, default the chosen one)."""
        method = method or self._panel.method_choice.currentData()
        why = self.unavailable()
        if why is not None:
            show_warning(f"OAIMS: cannot propagate: {why}")
            return
        axis = self.axis()
        barrier = self.taken()
        run = Run(method, f"Propagating along {self.axis_name(axis)}")

        def started() -> None:
            run.session = self._current.session
            self._start(run)

        def work():
            session = run.session
            if session is None:
                raise ValueError("no image is being annotated")
            run.shown = {k: st.bbox for k, st in session.planes.items()}

            def on_slice(key, mask: np.ndarray) -> None:
                box = geometry.bbox(mask)
                region = geometry.union(run.shown.get(key), box)
                run.shown[key] = box
                if region is not None:
                    index = geometry.box_slices(region)
                    self._relay.sliced.emit(key, index, mask[index].copy())

            try:
                result = session.propagate(
                    axis=axis,
                    method=method,
                    progress=self._progressed,
                    cancel=run.cancel,
                    on_slice=on_slice,
                    barrier=barrier,
                )
            except Cancelled:
                result = None
            return session, result

        def done(out: tuple["Session", "Propagated | None"]) -> None:
            session, result = out
            if session is not self._current.session:
                return
            if result is None:
                show_info("OAIMS: propagation cancelled: nothing changed")
            elif not result.changes:
                show_info("OAIMS: the propagation changed no slice")
            else:
                self._history.push(SESSION)
                self._layers.show(result)

        def finished() -> None:
            self._end()
            if self._jobs.closed:  # the widget was closed: nothing to show any more
                return
            try:
                self._view.restore(run)
            finally:
                self.refresh()
                self._update_status()

        self._jobs.submit(Job("propagate", work, done, thread=True, started=started, finished=finished))

    def taken(self) -> np.ndarray | None:
        """The objects layer's labels, which the object's propagation keeps off (the accepted
        objects), or None: *accept over other objects* is ticked, or the layer holds none. The
        layer's own array is passed (no copy); what it kept out is logged with the propagation."""
        if self._panel.overwrite_check.isChecked():
            return None
        session = self._current.session
        data = np.asarray(self._layers.objects().data)
        if data.shape != tuple(session.spatial_shape):
            show_warning(
                f"OAIMS: the objects layer has shape {data.shape}, the image {tuple(session.spatial_shape)}: "
                "the propagation may take the accepted objects' voxels"
            )
            return None
        return data if data.any() else None

    def seeds(self) -> tuple[tuple[int, ...], np.ndarray, np.ndarray] | str:
        """The plane on screen, the objects layer's labels on it (the seeds) and the labels of the
        rest of the layer (the barrier); or why there are none."""
        session = self._current.session
        plane = self._layers.shown_plane(session.source.plane_axes, len(session.spatial_shape))
        if plane is None:
            return "switch the viewer to 2D: Propagate all starts from the slice on screen"
        data = np.asarray(self._layers.objects().data)
        if data.shape != tuple(session.spatial_shape):
            return f"the objects layer has shape {data.shape}, the image {tuple(session.spatial_shape)}"
        seeds = np.asarray(data[session.source.plane_index(plane)])
        if session.source.plane_axes[0] > session.source.plane_axes[1]:
            seeds = seeds.T
        if not seeds.any():
            return "there is no object on this slice: accept (or paint) the objects of one slice first"
        barrier = np.where(np.isin(data, np.unique(seeds[seeds > 0])), 0, data)
        return plane, np.ascontiguousarray(seeds), barrier

    def propagate_all(self, method: str | None = None) -> None:
        """Carry every object of the slice on screen through the stack at once (see the module docstring)."""
        method = method or self._panel.method_choice.currentData()
        why = self.unavailable()
        session = self._current.session
        if why is None and session.prompted_planes():
            why = "an object is in progress: accept or clear it first"
        got = self.seeds() if why is None else why
        if isinstance(got, str):
            show_warning(f"OAIMS: cannot propagate all: {got}")
            return
        plane, seeds, barrier = got
        top = max(int(seeds.max()), int(barrier.max()))
        axis = self.axis()
        classes = {int(v): self._objects.classes.get(int(v), (1, "object")) for v in np.unique(seeds) if v > 0}
        n = len(classes)
        run = Run(method, f"Propagating {n} objects along {self.axis_name(axis)}", f"{n} objects: ")

        def started() -> None:
            run.session = self._current.session
            self._start(run)

        def work():
            if run.session is None:
                raise ValueError("no image is being annotated")
            # the new objects' ids follow every label of the layer (seeds painted by hand included)
            run.session.object_id = max(run.session.object_id, top + 1)
            try:
                result = run.session.propagate_objects(
                    seeds,
                    plane=plane,
                    axis=axis,
                    method=method,
                    barrier=barrier,
                    progress=self._progressed,
                    cancel=run.cancel,
                    classes=classes,
                )
            except Cancelled:
                result = None
            return run.session, result

        def done(out) -> None:
            session, result = out
            if session is not self._current.session:
                return
            if result is None:
                show_info("OAIMS: propagation cancelled: nothing changed")
                return
            objects = self._objects
            objects.use(self._layers.objects())
            # Each object replaces its own seed labels in the layer (hand-painted or accepted
            # before); the barrier already kept it off every other object.
            group = objects.add_group(replace(accepted, overwrite=True) for accepted in result.objects)
            self._history.drop(lambda step: step is not SESSION)
            self._history.push(group)
            show_info(f"OAIMS: {len(result.objects)} objects propagated and accepted (undo takes them all back)")
            self._jobs.submit(
                Job(
                    "learning from the objects",
                    session.run_pending_updates,
                    lambda _: self._update_status(),
                    thread=True,
                )
            )

        def finished() -> None:
            self._end()
            if not self._jobs.closed:
                self.refresh()
                self._update_status()

        self._jobs.submit(Job("propagate all", work, done, thread=True, started=started, finished=finished))

    def _start(self, run: Run) -> None:
        """``run`` starts (GUI thread): its progress bar, the buttons."""
        self._view.start(run)
        self.refresh()

    def _end(self) -> None:
        """The running propagation is over (GUI thread)."""
        self._view.end(hide_bar=not self._jobs.closed)

    def cancel(self) -> None:
        """Stop the running propagation (it changes nothing)."""
        if self._view.run is not None:
            self._view.run.cancel.set()

    # -- suggest -------------------------------------------------------------------------------
    def suggest(self) -> None:
        """Move the viewer to the propagated slice most worth checking (a notification if none)."""
        why = self.unavailable()
        if why is not None:
            show_warning(f"OAIMS: cannot suggest a slice: {why}")
            return
        axis = self.axis()

        def work() -> tuple[Any, int | None]:
            session = self._current.session
            if session is None:
                raise ValueError("no image is being annotated")
            return session, session.suggest_slice(axis=axis)

        def done(out) -> None:
            session, position = out
            if session is not self._current.session:
                return
            if position is None:
                show_info(
                    f"OAIMS: nothing uncertain along {self.axis_name(axis)}: no propagated slice disagrees "
                    "with its neighbours' registration (propagate first)"
                )
                return
            self._dims.set_current_step(axis + self._offset(), position)

        self._jobs.submit(Job("suggest next slice", work, done, thread=True, progress="Finding the slice to check"))

    # -- the buttons ---------------------------------------------------------------------------
    def refresh(self) -> None:
        """Enable the stack buttons (or say in their tooltip why not)."""
        panel = self._panel
        buttons = panel.buttons
        why = self.unavailable()
        running = self.running
        for name in ("propagate", "propagate_all", "suggest"):
            buttons[name].setEnabled(why is None and not running)
        panel.method_choice.setEnabled(why is None and not running)
        buttons["cancel"].setEnabled(running)
        along = f" along {self.axis_name(self.axis())}" if why is None else ""
        if why is not None:
            tip = f"Not available: {why}"
        elif running:
            tip = "A propagation is running (Cancel stops it)"
        else:
            tip = None
        panel.show_stack_tips(along, tip)
