"""The annotator's status line: what to do next (if anything), then latency, adaptation, model
updates, device, object and queue."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from napari.layers import Image
from qtpy.QtWidgets import QLabel

from napari_oaims.core.ui import model_state

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from napari_oaims.plugin.widget.current import Current
    from napari_oaims.plugin.widget.jobs import JobQueue

NO_IMAGE = "Open an image (File > Open, drag and drop, or File > Open Sample): annotation starts on it."
CHOOSE_IMAGE = "Choose the image to annotate in 'image' above."
VIEW_3D = (
    "3D view: clicks here are not prompts (their depth is ambiguous). Switch to the 2D view "
    "(the square/cube button at the bottom left, or Ctrl+Y) to annotate a slice."
)
TIP = (
    "latency: from your click to its preview · adaptation: how the model learns online · updates: "
    "times the model has learnt so far · rolled back: updates the guard undid because the model answered "
    "worse after them (the weights went back to the last good ones) · device: where the model runs · "
    "object: id of the object in progress"
)


def hint(current: "Current", busy: bool, viewer: "napari.viewer.Viewer") -> str | None:
    """What the user has to do before clicks can work (None: nothing); ``busy``: jobs run or wait."""
    if current.session is None:
        if busy:
            return None  # the model or the image is being loaded
        images = any(isinstance(layer, Image) for layer in viewer.layers)
        return CHOOSE_IMAGE if images else NO_IMAGE
    if viewer.dims.ndisplay == 3:
        return VIEW_3D
    return None


class StatusLine(QLabel):
    """The status line (see the module docstring).

    Parameters
    ----------
    viewer : napari.Viewer
        Whether it has images, and whether it shows the 3D view.
    current : Current
        The session and engine (read only).
    jobs : JobQueue
        What runs and waits.
    latency : callable
        ``() -> ms or None``: time from the last prompt to its preview.
    model_choice : callable
        ``() -> (adaptation, device)`` chosen, shown while no engine is loaded.
    """

    def __init__(
        self,
        viewer: "napari.viewer.Viewer",
        current: "Current",
        jobs: "JobQueue",
        latency: Callable[[], float | None],
        model_choice: Callable[[], tuple[str, str]],
    ) -> None:
        super().__init__()
        self._viewer = viewer
        self._current = current
        self._jobs = jobs
        self._latency = latency
        self._model_choice = model_choice
        self.setWordWrap(True)
        self.setToolTip(TIP)

    def show_state(self) -> None:
        """Say what to do (if anything) and the state of the model, the object and the queue."""
        current, jobs, latency = self._current, self._jobs, self._latency()
        engine = current.engine
        adaptation, device = (engine.adaptation, engine.device) if engine else self._model_choice()
        parts = [*model_state(engine, latency, adaptation=adaptation), f"device {device}"]
        if current.session is not None:
            parts.append(f"object {current.session.object_id}")
        if jobs.busy:
            parts.append(f"busy: {jobs.running.name if jobs.running else ''} ({jobs.waiting} queued)")
        todo = hint(current, jobs.busy, self._viewer)
        self.setText((f"{todo}\n" if todo else "") + " · ".join(parts))
