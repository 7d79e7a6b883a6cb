"""The annotator's status line: latency, adaptation, model updates, device, object, queue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QLabel

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.plugin.widget.annotator import AnnotatorWidget


class StatusLine(QLabel):
    def __init__(self) -> None:
        super().__init__()
        self.setWordWrap(True)

    def show_state(self, w: "AnnotatorWidget") -> None:
        engine, latency = w.engine, w.last_latency_ms
        parts = [f"latency {latency:.0f} ms" if latency is not None else "latency –",
                 f"adaptation {engine.adaptation if engine else w.model_panel.adaptation}",
                 f"updates {engine.updates if engine else 0}",
                 f"device {engine.device if engine else w.model_panel.device}"]
        if w.session is not None:
            parts.append(f"object {w.session.object_id}")
        jobs = w.jobs
        if jobs.busy:
            parts.append(f"busy: {jobs.running.name if jobs.running else ''} ({jobs.waiting} queued)")
        self.setText(" · ".join(parts))
