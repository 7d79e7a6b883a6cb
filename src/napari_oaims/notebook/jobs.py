"""Long work of the notebook annotator (propagation, slice suggestion, learning after accept) in
a thread, one job at a time, so that the kernel stays free to handle the browser's messages
(a Cancel click among them).

A job is ``work(progress, cancel)`` in the protocol of :mod:`napari_oaims.core.progress`:
``progress(done, total, message)`` reports how far it is and ``cancel`` is a
:class:`~napari_oaims.core.progress.Cancel` it checks; ``done(value)`` and ``failed(error)`` are
called in the job's thread when it ends (``failed`` with
:class:`~napari_oaims.core.progress.Cancelled` when the work stopped at a cancel).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from napari_oaims.core.progress import Cancel

#: Progress is reported at most this often (s): every report is a message to the browser.
PROGRESS_EVERY_S = 0.1


class Job:
    """One job in progress: its name, progress and cancel flag."""

    def __init__(self, name: str, exclusive: bool) -> None:
        self.name = name
        #: Prompts are refused while it runs (they would wait for it, and the kernel with them).
        self.exclusive = exclusive
        self.cancel = Cancel()
        self.thread: threading.Thread | None = None


class Jobs:
    """Runs :class:`Job` s in a thread, one at a time; ``on_change(job or None, (done, total))``
    is called when a job starts, progresses (throttled) and ends."""

    def __init__(self, on_change: Callable[["Job | None", tuple[int, int]], None]) -> None:
        self._on_change = on_change
        self._lock = threading.Lock()
        self.current: Job | None = None

    @property
    def busy(self) -> bool:
        return self.current is not None

    def start(
        self,
        name: str,
        work: Callable[[Callable[..., None], Cancel], Any],
        done: Callable[[Any], None],
        failed: Callable[[BaseException], None],
        exclusive: bool = True,
    ) -> Job:
        """Start ``work`` in a thread; ValueError if a job is running."""
        with self._lock:
            if self.current is not None:
                raise ValueError(f"busy: {self.current.name}; wait for it to finish or cancel it")
            job = self.current = Job(name, exclusive)
        last = [0.0]

        def progress(n: int, total: int, message: str = "") -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S or n >= total:
                last[0] = now
                self._on_change(job, (int(n), int(total)))

        def run() -> None:
            try:
                value = work(progress, job.cancel)
            except Exception as err:  # noqa: BLE001 - reported in the widget, the kernel goes on
                self._finish(job)
                failed(err)
            else:
                self._finish(job)
                done(value)

        self._on_change(job, (0, 0))
        job.thread = threading.Thread(target=run, name=f"oaims notebook: {name}", daemon=True)
        job.thread.start()
        return job

    def _finish(self, job: Job) -> None:
        with self._lock:
            if self.current is job:
                self.current = None
        self._on_change(None, (0, 0))

    def cancel(self) -> bool:
        """Ask the running job to stop; False when none runs."""
        job = self.current
        if job is None:
            return False
        job.cancel.set()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running job to end (scripts and tests); True when none runs any more."""
        job = self.current
        if job is not None and job.thread is not None:
            job.thread.join(timeout)
        return self.current is None
