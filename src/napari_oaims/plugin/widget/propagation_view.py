"""What a propagation shows in the annotator while it runs.

The propagation's worker hands each slice it made (the changed region only) and its progress to
the GUI thread through :class:`Relay`'s Qt signals. :class:`RunView` writes the slices that arrived
into the preview together every :data:`FLUSH_MS` (only the slice on screen is redrawn) and moves
the progress bar under the stack buttons at most every :data:`BAR_MS`. Each redraw of a shown
window costs the GUI thread time (and, drawn in software, the worker CPU): the bar has a known
range (a busy bar, or napari's activity spinner, would redraw the window at every frame of its
animation). Once the propagation is over, :meth:`RunView.restore` makes every slice it showed
match the session again, so a cancelled or failed propagation leaves the preview as it was.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtCore import QObject, QTimer, Signal, Slot

from napari_oaims.core import geometry

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.plugin.widget.annotate_panel import AnnotatePanel
    from napari_oaims.plugin.widget.current import Current
    from napari_oaims.plugin.widget.layers import PluginLayers
    from napari_oaims.session import Session

#: The slices that arrived are written into the preview together, every this many ms.
FLUSH_MS = 50
#: The progress bar moves at most every this many ms (each move redraws the window).
BAR_MS = 250


class Run:
    """One propagation in progress: what it is, its cancel, what its slices put in the preview."""

    def __init__(self, method: str, what: str, prefix: str = "") -> None:
        self.method = method
        #: what it does, in words (the progress bar's tooltip), and the start of the bar's text
        self.what, self.prefix = what, prefix
        #: set by the Cancel button (``is_set()`` for the propagation)
        self.cancel = threading.Event()
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


class RunView:
    """The running propagation's slices in the preview and its progress bar (GUI thread).

    Parameters
    ----------
    current : Current
        The session whose preview is shown (read only).
    layers : PluginLayers
        The preview the slices are written into.
    panel : AnnotatePanel
        Its progress bar.
    timer : QTimer
        Writes the slices that arrived together (a timer of the widget, so that it goes with it).
    """

    def __init__(self, current: "Current", layers: "PluginLayers", panel: "AnnotatePanel", timer: QTimer):
        self._current = current
        self._layers = layers
        self._panel = panel
        self._flush_timer = timer
        self._flush_timer.setSingleShot(True)
        self._flush_timer.timeout.connect(self.flush)
        #: the propagation running (None: none)
        self.run: Run | None = None

    def start(self, run: Run) -> None:
        """``run`` starts: its progress bar appears."""
        self.run = run
        self._panel.start_progress(run.what, run.prefix)

    def end(self, hide_bar: bool = True) -> None:
        """The running propagation is over (``hide_bar`` False: the widget is gone, leave Qt alone)."""
        self.run = None
        self._flush_timer.stop()
        if hide_bar:
            self._panel.end_progress()

    def show_slice(self, key: tuple[int, ...], region: tuple[slice, slice], values: np.ndarray) -> None:
        """A slice made by the running propagation: written with the next :meth:`flush`."""
        run = self.run
        if run is None:
            return
        ys, xs = region
        run.touched[key] = geometry.union(run.touched.get(key), (ys.start, xs.start, ys.stop, xs.stop))
        run.pending.append((key, region, values))
        self._schedule()

    def show_progress(self, done: int, total: int) -> None:
        """``done`` of ``total`` slices are made: the bar moves with the next :meth:`flush`."""
        if self.run is not None:
            self.run.progress = (done, total)
            self._schedule()

    def _schedule(self) -> None:
        if not self._flush_timer.isActive():
            self._flush_timer.start(FLUSH_MS)

    def flush(self) -> None:
        """Write the slices that arrived into the preview, and move the progress bar."""
        run, session = self.run, self._current.session
        if run is None or session is None:
            return
        pending, run.pending = run.pending, []
        axes = session.source.plane_axes
        shown = self._layers.shown_plane(axes, len(session.spatial_shape))
        for key, region, values in pending:  # a slice off screen costs napari no redraw
            self._layers.write(axes, key, region, values, quiet=shown is not None and tuple(key) != shown)
        done, total = run.progress
        now = time.perf_counter()
        if total and (now - run.bar_moved >= BAR_MS / 1e3 or done >= total):
            run.bar_moved = now
            self._panel.show_progress(done, total)

    def restore(self, run: Run) -> None:
        """Make every slice ``run`` showed match the session."""
        session = self._current.session
        if session is None or self._layers["preview"] is None:
            return
        for key, box in run.touched.items():
            st = session.planes.get(key)
            region = geometry.union(box, st.bbox if st is not None else None)
            index = geometry.box_slices(region)
            self._layers.write(session.source.plane_axes, key, index, session.plane_mask(key)[index])


class Relay(QObject):
    """Carries a propagation's slices and progress from its worker thread to the GUI thread."""

    sliced = Signal(object, object, object)  # plane key, region (2 slices), region values
    progressed = Signal(int, int)  # done, total

    def __init__(self, view: RunView):
        super().__init__()
        self._view = view
        self.sliced.connect(self._on_slice)
        self.progressed.connect(self._on_progress)

    @Slot(object, object, object)
    def _on_slice(self, key, region, values) -> None:
        self._view.show_slice(key, region, values)

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        self._view.show_progress(done, total)
