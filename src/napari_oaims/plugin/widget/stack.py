"""Carrying the object through a stack, and where to look next, in the annotator.

*Propagate* runs :meth:`napari_oaims.Session.propagate` as a thread job of the
queue (the viewer stays live; prompts given meanwhile wait for it) with a napari progress bar
that can be cancelled, like the *Cancel* button. Each slice is shown in the preview as soon as it
is made: the worker hands the changed region of the slice to the GUI thread through a Qt signal,
and only that region is written (the slices that arrived are written together every
:data:`FLUSH_MS`, and only the slice on screen is redrawn; the progress bar moves every
:data:`BAR_MS`: each redraw of the viewer costs the GUI thread time). Once the propagation is
over, every slice it showed is made to match the session again, so a cancelled or failed
propagation leaves the preview (and the session) as they were; a finished one is one step of
the annotator's undo history.

*Propagate all* carries every object of the slice on screen (the objects layer's labels there: 2D
objects accepted on it, or labels painted by hand) through the stack at once with
:meth:`napari_oaims.Session.propagate_objects`, in the same kind of job (one progress bar, one
cancel); the objects elsewhere in the layer are barriers. The objects land as new accepted objects
(replacing their seeds), one step of the annotator's undo history for all of them.

*Suggest next slice* moves the viewer to :meth:`~napari_oaims.Session.suggest_slice`.

The axis (:func:`stack_axis`): the one image axis that is neither shown on screen nor a single
slice; with more of them (t, z, y, x) the one whose slider was moved last, else the innermost
(z of t, z, y, x).
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.utils import cancelable_progress
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QObject, QTimer, Signal, Slot

from napari_oaims.core import geometry
from napari_oaims.core.progress import Cancelled
from napari_oaims.core.ui import stack_axis
from napari_oaims.plugin.widget.editing import SESSION
from napari_oaims.plugin.widget.jobs import Job

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.plugin.widget.annotator import AnnotatorWidget
    from napari_oaims.propagate import Propagated
    from napari_oaims.session import Session

#: The slices that arrived are written into the preview together, every this many ms.
FLUSH_MS = 50
#: The progress bar moves at most every this many ms (napari redraws the window at each move).
BAR_MS = 250
#: (method, label, tooltip) offered for propagation, the default first.
METHOD_CHOICES = (
    ("frozen", "model", "the model carries the mask slice to slice (fast; as few corrections as the EMA adapter)"),
    ("ema", "EMA adapter", "a temporary student-teacher copy of the model adapts to each slice (several times slower)"),
    ("registration", "registration", "the nearest prompted slice's mask, warped by optical flow (no model)"),
    ("copy", "copy", "the nearest prompted slice's mask, copied (no model)"),
)


class _Relay(QObject):
    """Carries a propagation's slices and progress from its worker thread to the GUI thread."""

    sliced = Signal(object, object, object)  # plane key, region (2 slices), region values
    progressed = Signal(int, int)  # done, total

    def __init__(self, stack: "StackTools"):
        super().__init__()
        self._stack = stack
        self.sliced.connect(self._on_slice)
        self.progressed.connect(self._on_progress)

    @Slot(object, object, object)
    def _on_slice(self, key, region, values) -> None:
        self._stack.show_slice(key, region, values)

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        self._stack.show_progress(done, total)


class _Cancel:
    """Set by the Cancel button or by the progress bar's own cancel (``is_set()`` for the propagation)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.bar: cancelable_progress | None = None

    def set(self) -> None:
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set() or (self.bar is not None and self.bar.is_canceled)


class _Run:
    """One propagation in progress: what its slices put in the preview."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.cancel = _Cancel()
        #: the session it propagates in (the widget's when the job starts)
        self.session: "Session | None" = None
        #: plane key -> box of what the preview shows on it (written by the worker thread only)
        self.shown: dict[tuple[int, ...], geometry.Box | None] = {}
        #: the planes whose slices reached the GUI thread, with the box they cover (GUI thread)
        self.touched: dict[tuple[int, ...], geometry.Box | None] = {}
        #: slices waiting to be written: (key, region, values)
        self.pending: list[tuple[tuple[int, ...], tuple[slice, slice], np.ndarray]] = []
        #: (done, total) last reported, and when the bar last moved (perf_counter s)
        self.progress: tuple[int, int] = (0, 0)
        self.bar_moved = 0.0


class StackTools:
    """The stack actions of an :class:`AnnotatorWidget`: propagate, cancel, suggest the next slice."""

    def __init__(self, annotator: "AnnotatorWidget"):
        self._w = annotator
        self._relay = _Relay(self)
        self._flush_timer = QTimer(annotator)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.timeout.connect(self.flush)
        self._run: _Run | None = None
        self._last_moved: int | None = None  # viewer axis
        self._step = tuple(annotator.viewer.dims.current_step)
        annotator.viewer.dims.events.current_step.connect(self._on_step)

    def close(self) -> None:
        """Stop following the viewer; a propagation in progress is cancelled."""
        self._w.viewer.dims.events.current_step.disconnect(self._on_step)
        self.cancel()

    def _progressed(self, done: int, total: int, message: str = "") -> None:
        """A propagation's progress (worker thread), relayed to the GUI thread."""
        self._relay.progressed.emit(done, total)

    @property
    def running(self) -> bool:
        """True while a propagation runs."""
        return self._run is not None

    # -- the axis ------------------------------------------------------------------------------
    def _on_step(self, event=None) -> None:
        step = tuple(self._w.viewer.dims.current_step)
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
        layer = self._w.image_layer
        return self._w.viewer.dims.ndim - layer.ndim if layer is not None else 0

    def axis(self) -> int | None:
        """The session's axis to propagate along now (None: no stack, or no session)."""
        session = self._w.session
        if session is None:
            return None
        last = None if self._last_moved is None else self._last_moved - self._offset()
        return stack_axis(session.spatial_shape, session.source.plane_axes, last)

    def axis_name(self, axis: int) -> str:
        """Image axis ``axis`` in words, with the viewer's label of it if the user named it."""
        labels = self._w.viewer.dims.axis_labels
        index = axis + self._offset()
        label = str(labels[index]) if 0 <= index < len(labels) else ""
        named = label and label.lstrip("-") and not label.lstrip("-").isdigit()
        return f"axis {axis} ({label})" if named else f"axis {axis}"

    def unavailable(self) -> str | None:
        """Why the stack actions cannot run now (None: they can)."""
        session = self._w.session
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
        method = method or self._w.annotate_panel.method_choice.currentData()
        why = self.unavailable()
        if why is not None:
            show_warning(f"OAIMS: cannot propagate: {why}")
            return
        axis = self.axis()
        run = _Run(method)

        def started() -> None:
            run.session = self._w.session
            run.cancel.bar = cancelable_progress(total=0, desc=f"Propagating along {self.axis_name(axis)}")
            self._run = run
            self.refresh()

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
                    axis=axis, method=method, progress=self._progressed, cancel=run.cancel, on_slice=on_slice
                )
            except Cancelled:
                result = None
            return session, result

        def done(out: tuple["Session", "Propagated | None"]) -> None:
            session, result = out
            if session is not self._w.session:
                return
            if result is None:
                show_info("OAIMS: propagation cancelled: nothing changed")
            elif not result.changes:
                show_info("OAIMS: the propagation changed no slice")
            else:
                self._w.editor.history.push(SESSION)
                self._w.layers.show(result)

        def finished() -> None:
            if run.cancel.bar is not None:
                run.cancel.bar.close()
            self._run = None
            self._flush_timer.stop()
            if self._w.jobs.closed:  # the widget was closed: nothing to show any more
                return
            try:
                self._restore(run)
            finally:
                self.refresh()
                self._w.update_status()

        self._w.jobs.submit(Job("propagate", work, done, thread=True, started=started, finished=finished))

    def seeds(self) -> tuple[tuple[int, ...], np.ndarray, np.ndarray] | str:
        """The plane on screen, the objects layer's labels on it (the seeds) and the labels of the
        rest of the layer (the barrier); or why there are none."""
        session = self._w.session
        plane = self._w.layers.shown_plane(session.source.plane_axes, len(session.spatial_shape))
        if plane is None:
            return "switch the viewer to 2D: Propagate all starts from the slice on screen"
        data = np.asarray(self._w.layers.objects().data)
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
        method = method or self._w.annotate_panel.method_choice.currentData()
        why = self.unavailable()
        session = self._w.session
        if why is None and session.prompted_planes():
            why = "an object is in progress: accept or clear it first"
        got = self.seeds() if why is None else why
        if isinstance(got, str):
            show_warning(f"OAIMS: cannot propagate all: {got}")
            return
        plane, seeds, barrier = got
        top = max(int(seeds.max()), int(barrier.max()))
        axis = self.axis()
        classes = {int(v): self._w.objects.classes.get(int(v), (1, "object")) for v in np.unique(seeds) if v > 0}
        run = _Run(method)

        def started() -> None:
            run.session = self._w.session
            run.cancel.bar = cancelable_progress(
                total=0, desc=f"Propagating {len(classes)} objects along {self.axis_name(axis)}"
            )
            self._run = run
            self.refresh()

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
            if session is not self._w.session:
                return
            if result is None:
                show_info("OAIMS: propagation cancelled: nothing changed")
                return
            from napari_oaims.plugin.widget.editing import SESSION
            from napari_oaims.plugin.widget.objects import ObjectGroup

            objects = self._w.objects
            objects.use(self._w.layers.objects())
            # Each object replaces its own seed labels in the layer (hand-painted or accepted
            # before); the barrier already kept it off every other object.
            group = ObjectGroup([objects.add(replace(accepted, overwrite=True)) for accepted in result.objects])
            self._w.editor.history.drop(lambda step: step is not SESSION)
            self._w.editor.history.push(group)
            show_info(f"OAIMS: {len(result.objects)} objects propagated and accepted (undo takes them all back)")
            self._w.jobs.submit(
                Job(
                    "learning from the objects",
                    session.run_pending_updates,
                    lambda _: self._w.update_status(),
                    thread=True,
                )
            )

        def finished() -> None:
            if run.cancel.bar is not None:
                run.cancel.bar.close()
            self._run = None
            self._flush_timer.stop()
            if not self._w.jobs.closed:
                self.refresh()
                self._w.update_status()

        self._w.jobs.submit(Job("propagate all", work, done, thread=True, started=started, finished=finished))

    def cancel(self) -> None:
        """Stop the running propagation (it changes nothing)."""
        if self._run is not None:
            self._run.cancel.set()

    def show_slice(self, key: tuple[int, ...], region: tuple[slice, slice], values: np.ndarray) -> None:
        """A slice made by the running propagation (GUI thread): written with the next :meth:`flush`."""
        run = self._run
        if run is None:
            return
        ys, xs = region
        run.touched[key] = geometry.union(run.touched.get(key), (ys.start, xs.start, ys.stop, xs.stop))
        run.pending.append((key, region, values))
        self._schedule()

    def show_progress(self, done: int, total: int) -> None:
        if self._run is not None:
            self._run.progress = (done, total)
            self._schedule()

    def _schedule(self) -> None:
        if not self._flush_timer.isActive():
            self._flush_timer.start(FLUSH_MS)

    def flush(self) -> None:
        """Write the slices that arrived into the preview, and move the progress bar (GUI thread)."""
        run, session = self._run, self._w.session
        if run is None or session is None:
            return
        pending, run.pending = run.pending, []
        axes = session.source.plane_axes
        shown = self._w.layers.shown_plane(axes, len(session.spatial_shape))
        for key, region, values in pending:  # a slice off screen costs napari no redraw
            self._w.layers.write(axes, key, region, values, quiet=shown is not None and tuple(key) != shown)
        done, total = run.progress
        bar, now = run.cancel.bar, time.perf_counter()
        if bar is not None and total and (now - run.bar_moved >= BAR_MS / 1e3 or done >= total):
            run.bar_moved = now
            if bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

    def _restore(self, run: _Run) -> None:
        """Make every slice the propagation showed match the session."""
        session = self._w.session
        if session is None or self._w.layers["preview"] is None:
            return
        for key, box in run.touched.items():
            st = session.planes.get(key)
            region = geometry.union(box, st.bbox if st is not None else None)
            index = geometry.box_slices(region)
            self._w.layers.write(session.source.plane_axes, key, index, session.plane_mask(key)[index])

    # -- suggest -------------------------------------------------------------------------------
    def suggest(self) -> None:
        """Move the viewer to the propagated slice most worth checking (a notification if none)."""
        why = self.unavailable()
        if why is not None:
            show_warning(f"OAIMS: cannot suggest a slice: {why}")
            return
        axis = self.axis()

        def work() -> tuple[Any, int | None]:
            session = self._w.session
            if session is None:
                raise ValueError("no image is being annotated")
            return session, session.suggest_slice(axis=axis)

        def done(out) -> None:
            session, position = out
            if session is not self._w.session:
                return
            if position is None:
                show_info(
                    f"OAIMS: nothing uncertain along {self.axis_name(axis)}: no propagated slice disagrees "
                    "with its neighbours' registration (propagate first)"
                )
                return
            self._w.viewer.dims.set_current_step(axis + self._offset(), position)

        self._w.jobs.submit(Job("suggest next slice", work, done, thread=True, progress="Finding the slice to check"))

    # -- the buttons ---------------------------------------------------------------------------
    def refresh(self) -> None:
        """Enable the stack buttons (or say in their tooltip why not)."""
        panel = getattr(self._w, "annotate_panel", None)
        if panel is None:  # the widget is still being built
            return
        buttons = panel.buttons
        why = self.unavailable()
        running = self._run is not None
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
