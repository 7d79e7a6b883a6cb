"""The annotator's one ordered queue of work.

Every call into the engine goes through it: prompts, Post-Interaction updates, loading and
saving. A job runs in the GUI thread or, with ``thread=True``, in a napari thread worker (the
viewer stays live while it runs: every slow job is a thread job); a job submitted while another
runs waits for it, so prompts are applied in the order they were given. Errors become napari
notifications.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from napari.qt.threading import create_worker
from napari.utils import progress
from napari.utils.notifications import show_error

log = logging.getLogger(__name__)

#: Errors that describe a bad input or state: their message is the notification.
EXPECTED_ERRORS = (ValueError, TypeError, FileNotFoundError)


@dataclass
class Job:
    """``work()`` (in a worker thread if ``thread``), then ``done(result)`` in the GUI thread.

    ``progress`` is the description of a progress bar shown while the job runs (None: no bar).
    A thread job's ``started()`` runs in the GUI thread just before its worker starts, and its
    ``finished()`` once the worker is over (after ``done``, after an error, and after the queue
    closed, too).
    """

    name: str
    work: Callable[[], Any]
    done: Callable[[Any], None] | None = None
    thread: bool = False
    progress: str | None = None
    started: Callable[[], None] | None = None
    finished: Callable[[], None] | None = None


def notify_error(what: str, err: BaseException) -> None:
    """Show ``err`` (raised by job ``what``) as an error notification."""
    if isinstance(err, EXPECTED_ERRORS):
        show_error(f"OAIMS {what}: {err}")
    else:
        log.error("OAIMS %s failed", what, exc_info=err)
        show_error(f"OAIMS {what} failed: {type(err).__name__}: {err}")


class JobQueue:
    """Runs jobs one at a time, in submission order (see the module docstring).

    ``on_change`` is called (GUI thread) whenever what runs or waits changes.
    """

    def __init__(self, on_change: Callable[[], None] | None = None):
        self._queue: deque[Job] = deque()
        self._on_change = on_change or (lambda: None)
        self._pumping = False
        #: The job running in a worker thread (None when none does).
        self.running: Job | None = None
        self.closed = False

    @property
    def busy(self) -> bool:
        """True while a job runs or waits."""
        return self.running is not None or bool(self._queue)

    @property
    def waiting(self) -> int:
        """Number of jobs waiting to run."""
        return len(self._queue)

    def submit(self, job: Job) -> None:
        """Run ``job`` after those before it (nothing runs once the queue is closed)."""
        if not self.closed:
            self._queue.append(job)
            self._pump()

    def clear(self) -> None:
        """Drop the jobs that wait (the running one finishes)."""
        self._queue.clear()

    def close(self) -> None:
        """Run nothing more; results of a job still running are dropped."""
        self.closed = True
        self._queue.clear()

    def _pump(self) -> None:
        if self._pumping:  # a job submitted by a GUI-thread job runs after it, not inside it
            return
        self._pumping = True
        try:
            while self.running is None and self._queue and not self.closed:
                job = self._queue.popleft()
                if job.thread:
                    self._start_worker(job)
                    continue
                try:
                    result = job.work()
                    if job.done is not None:
                        job.done(result)
                except Exception as err:  # noqa: BLE001 - every error becomes a notification
                    notify_error(job.name, err)
        finally:
            self._pumping = False
        self._on_change()

    def _start_worker(self, job: Job) -> None:
        self.running = job
        bar = progress(total=0, desc=job.progress) if job.progress else None
        worker = create_worker(job.work, _ignore_errors=True)

        def returned(result: Any) -> None:
            if job.done is not None and not self.closed:
                try:
                    job.done(result)
                except Exception as err:  # noqa: BLE001
                    notify_error(job.name, err)

        def finished() -> None:
            if bar is not None:
                bar.close()
            if job.finished is not None:
                try:
                    job.finished()
                except Exception as err:  # noqa: BLE001
                    notify_error(job.name, err)
            self.running = None
            self._pump()

        worker.returned.connect(returned)
        worker.errored.connect(lambda err: notify_error(job.name, err))
        worker.finished.connect(finished)
        if job.started is not None:
            job.started()
        self._on_change()
        worker.start()
