"""The stack actions of the notebook annotator: propagate the object (or every accepted object)
through the stack, suggest the slice to check, cancel; each runs as a job in a thread
(:mod:`.jobs`) with progress, so the kernel stays free for the browser's Cancel."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from napari_oaims.core.progress import Cancelled
from napari_oaims.core.ui import stack_axis

#: A history step the session undoes itself (a prompt, a clear, a propagation).
SESSION = "session"


class StackActions:
    """Mixed into :class:`~napari_oaims.notebook.Annotator` (it provides ``session``, ``jobs``,
    ``key``, ``labels``, ``history`` and the overlay sending)."""

    session: Any
    _last_axis: int | None

    def _stack_actions(self) -> list[str]:
        if self.stack_axis() is None:
            return []
        actions = ["propagate", "suggest"]
        if callable(getattr(self.session, "propagate_objects", None)):
            actions.insert(1, "propagate_all")
        return actions

    def stack_axis(self) -> int | None:
        """The axis :meth:`propagate` works along (None: the image is no stack)."""
        src = self.session.source
        return stack_axis(src.spatial_shape, src.plane_axes, self._last_axis)

    def _stack_job(self, name: str, work, done) -> None:
        axis = self.stack_axis()
        if axis is None:
            raise ValueError(
                f"the image is not a stack ({' x '.join(map(str, self.session.spatial_shape))}): "
                f"{name} needs slices to go through"
            )
        if self.jobs.busy:
            raise ValueError(f"busy: {self.jobs.current.name}; wait for it to finish or press Cancel")

        def locked(progress, cancel):
            with self._lock:
                return work(axis, progress, cancel)

        def failed(err):
            if isinstance(err, Cancelled):
                self._say(f"{name} cancelled: nothing changed")
            else:
                self._say(f"{name} failed: {err}", error=True)
            self._update_status()

        def finished(value):
            try:
                done(value)
            except Exception as err:  # noqa: BLE001 - shown in the widget
                failed(err)
            self._update_status()

        self.jobs.start(name, locked, finished, failed)

    def propagate(self, method: str = "ema") -> None:
        """Carry the object through the stack in a thread (progress and Cancel in the widget)."""

        def work(axis, progress, cancel):
            return self.session.propagate(axis=axis, method=method, progress=progress, cancel=cancel)

        def done(result):
            if result.cancelled:
                self._say("propagation cancelled: nothing changed")
                return
            self.history.push(SESSION)
            self._show(result)
            self._say(f"propagated through {len(result.changes)} slices ({method})")

        self._stack_job("propagating", work, done)

    def propagate_all(self) -> None:
        """Carry every accepted object through the stack (:meth:`Session.propagate_objects`)."""
        call = getattr(self.session, "propagate_objects", None)
        if not callable(call):
            raise ValueError("this napari-oaims has no Session.propagate_objects")
        accepted = inspect.signature(call).parameters

        def work(axis, progress, cancel):
            given = {"axis": axis, "progress": progress, "cancel": cancel, "labels": self.labels}
            return call(**{k: v for k, v in given.items() if k in accepted})

        def done(result):
            if getattr(result, "cancelled", False):
                self._say("propagation cancelled: nothing changed")
                return
            labels = getattr(result, "labels", None)
            if labels is not None:
                self.labels = np.asarray(labels, np.int32)
            self.send_view()
            self._say("propagated the accepted objects")

        self._stack_job("propagating all objects", work, done)

    def suggest_slice(self) -> None:
        """Move to the propagated slice most worth checking (in a thread)."""

        def work(axis, progress, cancel):
            return axis, self.session.suggest_slice(axis=axis)

        def done(out):
            axis, position = out
            if position is None:
                self._say("no slice to suggest: propagate first, or every propagated slice agrees")
                return
            axes = [a for a in range(len(self.session.spatial_shape)) if a not in self.session.source.plane_axes]
            key = list(self.key)
            key[axes.index(axis)] = int(position)
            self.key = key
            self._say(f"check slice {position} of axis {axis}")

        self._stack_job("finding the slice to check", work, done)

    def cancel(self) -> None:
        """Stop the running propagation or suggestion (nothing changes)."""
        if not self.jobs.cancel():
            self._say("nothing to cancel")
