"""The annotator's status line: what to do next (if anything), then latency, adaptation, model
updates, device, object and queue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from napari.layers import Image
from qtpy.QtWidgets import QLabel

from napari_oaims.core.ui import rollback_text

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.plugin.widget.annotator import AnnotatorWidget

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


def hint(w: "AnnotatorWidget") -> str | None:
    """What the user has to do before clicks can work (None: nothing)."""
    if w.session is None:
        if w.jobs.busy:
            return None  # the model or the image is being loaded
        images = any(isinstance(layer, Image) for layer in w.viewer.layers)
        return CHOOSE_IMAGE if images else NO_IMAGE
    if w.viewer.dims.ndisplay == 3:
        return VIEW_3D
    return None


class StatusLine(QLabel):
    def __init__(self) -> None:
        super().__init__()
        self.setWordWrap(True)
        self.setToolTip(TIP)

    def show_state(self, w: "AnnotatorWidget") -> None:
        engine, latency = w.engine, w.last_latency_ms
        parts = [
            f"latency {latency:.0f} ms" if latency is not None else "latency –",
            f"adaptation {engine.adaptation if engine else w.model_panel.adaptation}",
            f"updates {engine.updates if engine else 0}",
            f"device {engine.device if engine else w.model_panel.device}",
        ]
        rolled = rollback_text(engine)
        if rolled:
            parts.insert(3, rolled)
        if w.session is not None:
            parts.append(f"object {w.session.object_id}")
        jobs = w.jobs
        if jobs.busy:
            parts.append(f"busy: {jobs.running.name if jobs.running else ''} ({jobs.waiting} queued)")
        todo = hint(w)
        self.setText((f"{todo}\n" if todo else "") + " · ".join(parts))
