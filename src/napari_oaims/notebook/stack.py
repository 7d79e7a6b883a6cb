"""The stack actions of the notebook annotator: propagate the object (or every accepted object)
through the stack, suggest the slice to check, cancel; each runs as a job in a thread
(:mod:`.jobs`) with progress, so the kernel stays free for the browser's Cancel."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_oaims.core import geometry
from napari_oaims.core.progress import Cancelled
from napari_oaims.core.ui import stack_axis

if TYPE_CHECKING:  # pragma: no cover
    import threading

    from napari_oaims.core.history import History
    from napari_oaims.core.results import Accepted, Result
    from napari_oaims.notebook.jobs import Jobs
    from napari_oaims.session import Session

#: A history step the session undoes itself (a prompt, a clear, a propagation).
SESSION = "session"


@dataclass(frozen=True)
class Display:
    """What the stack actions may do to the annotator's display."""

    #: The shown plane's key (its index along each stack axis).
    key: Callable[[], tuple[int, ...]]
    #: Show the plane of key ``key``.
    go_to: Callable[[list[int]], None]
    #: ``say(text, error=False)``: a line under the image.
    say: Callable[..., None]
    #: Refresh the status line.
    update_status: Callable[[], None]
    #: ``send_overlay(layer, key, box, marks=True, entry=None)``: send an overlay region.
    send_overlay: Callable[..., None]
    #: Send the preview regions a :class:`~napari_oaims.core.results.Result` changed.
    show: Callable[["Result"], None]
    #: Send the shown plane's image and overlays again.
    send_view: Callable[[], None]


class StackActions:
    """Propagate, propagate all, suggest the slice to check, cancel.

    Parameters
    ----------
    session : Session
        The session the actions run on.
    jobs : Jobs
        The annotator's jobs (one at a time); each action is one.
    lock : threading.RLock
        Held around every session call (the kernel's and the jobs').
    history : History
        The annotator's undo history (a propagation, or the objects propagated together, are
        one step of it).
    labels, object_classes
        The accepted objects and their (class id, class name) (read: the seeds of *propagate all*).
    add_object : callable
        Paints an accepted object into ``labels``; returns its undo step.
    learn : callable
        Starts the learning of the accepted objects.
    display : Display
        The shown slice, overlays, messages and status line.
    overwrite : callable
        Whether *Propagate* may carry the object into the accepted objects (else they are its barrier).
    """

    def __init__(
        self,
        session: "Session",
        jobs: "Jobs",
        lock: "threading.RLock",
        history: "History",
        labels: np.ndarray,
        object_classes: dict[int, tuple[int, str]],
        add_object: Callable[["Accepted"], Any],
        learn: Callable[[], None],
        display: Display,
        overwrite: Callable[[], bool] = lambda: False,
    ) -> None:
        self._session = session
        self._jobs = jobs
        self._lock = lock
        self._history = history
        self._labels = labels
        self._object_classes = object_classes
        self._add_object = add_object
        self._learn = learn
        self._display = display
        self._overwrite = overwrite
        self._last_axis: int | None = None

    def moved(self, axis: int) -> None:
        """Image axis ``axis`` was the one stack axis moved last (with more stack axes, the one
        propagated along)."""
        self._last_axis = int(axis)

    def actions(self) -> list[str]:
        """The stack actions this image offers (none for a 2D image)."""
        if self.stack_axis() is None:
            return []
        actions = ["propagate", "suggest"]
        if callable(getattr(self._session, "propagate_objects", None)):
            actions.insert(1, "propagate_all")
        return actions

    def stack_axis(self) -> int | None:
        """The axis :meth:`propagate` works along (None: the image is no stack)."""
        src = self._session.source
        return stack_axis(src.spatial_shape, src.plane_axes, self._last_axis)

    def _stack_job(self, name: str, work, done, after=None) -> None:
        axis = self.stack_axis()
        if axis is None:
            raise ValueError(
                f"the image is not a stack ({' x '.join(map(str, self._session.spatial_shape))}): "
                f"{name} needs slices to go through"
            )
        if self._jobs.busy:
            raise ValueError(f"busy: {self._jobs.current.name}; wait for it to finish or press Cancel")

        def locked(progress, cancel):
            with self._lock:
                return work(axis, progress, cancel)

        def failed(err):
            if isinstance(err, Cancelled):
                self._display.say(f"{name} cancelled: nothing changed")
            else:
                self._display.say(f"{name} failed: {err}", error=True)
            if after is not None:
                after()
            self._display.update_status()

        def finished(value):
            try:
                done(value)
            except Exception as err:  # noqa: BLE001 - shown in the widget
                failed(err)
                return
            if after is not None:
                after()
            self._display.update_status()

        self._jobs.start(name, locked, finished, failed)

    def propagate(self, method: str = "frozen") -> None:
        """Carry the object through the stack in a thread (progress and Cancel in the widget),
        keeping off the accepted objects unless ``overwrite()``. The shown slice's preview follows
        the propagation as its masks are made; a cancelled or failed one leaves the preview as the
        session has it (unchanged)."""
        barrier = None if self._overwrite() or not self._labels.any() else self._labels
        live: dict[tuple[int, ...], Any] = {}  # plane -> box the preview shows while it runs

        def on_slice(key, mask) -> None:  # in the job's thread
            key = tuple(int(k) for k in key)
            box = geometry.union(live.get(key), geometry.bbox(mask))
            if key == self._display.key() and box is not None:
                live[key] = box
                self._display.send_overlay("preview", key, box, marks=False, entry=((0, 0, *mask.shape), mask))

        def work(axis, progress, cancel):
            return self._session.propagate(
                axis=axis,
                method=method,
                progress=progress,
                cancel=cancel,
                on_slice=on_slice,
                barrier=barrier,
            )

        def done(result):
            self._history.push(SESSION)
            self._display.show(result)
            self._display.say(f"propagated through {len(result.changes)} slices ({method})")

        def after() -> None:  # the shown slice as the session has it, where the live masks went
            key = self._display.key()
            st = self._session.planes.get(key)
            box = geometry.union(live.get(key), None if st is None else st.bbox)
            if box is not None:
                self._display.send_overlay("preview", key, box)

        self._stack_job("propagating", work, done, after)

    def propagate_all(self) -> None:
        """Carry every object accepted on the shown slice through the stack at once
        (:meth:`Session.propagate_objects`; the image's other objects are a barrier). The objects
        are accepted; one undo takes them all back."""
        from napari_oaims.notebook.transport import label_crop

        src, key = self._session.source, self._display.key()
        if any(st.prompts for st in self._session.planes.values()):
            raise ValueError("cannot propagate all: an object is in progress; accept or clear it first")
        seeds = np.ascontiguousarray(label_crop(self._labels, src.plane_axes, key, (0, 0, *src.plane_shape)))
        if not seeds.any():
            raise ValueError(
                "cannot propagate all: no object is accepted on this slice; accept the objects of one slice"
            )
        ids = [int(v) for v in np.unique(seeds) if v > 0]
        barrier = np.where(np.isin(self._labels, ids), 0, self._labels)
        classes = {i: self._object_classes.get(i, (1, "object")) for i in ids}

        def work(axis, progress, cancel):
            # the new objects' ids follow every label so far
            self._session.object_id = max(self._session.object_id, int(self._labels.max()) + 1)
            return self._session.propagate_objects(
                seeds, plane=key, axis=axis, barrier=barrier, progress=progress, cancel=cancel, classes=classes
            )

        def done(result):
            steps = [self._add_object(accepted) for accepted in result.objects]
            self._history.drop(lambda step: step != SESSION)
            self._history.push(steps)
            self._display.send_view()
            self._display.say(f"{len(steps)} objects propagated and accepted (one undo takes them all back)")
            self._learn()

        self._stack_job("propagating all objects", work, done)

    def suggest_slice(self) -> None:
        """Move to the propagated slice most worth checking (in a thread)."""

        def work(axis, progress, cancel):
            return axis, self._session.suggest_slice(axis=axis)

        def done(out):
            axis, position = out
            if position is None:
                self._display.say("no slice to suggest: propagate first, or every propagated slice agrees")
                return
            axes = [a for a in range(len(self._session.spatial_shape)) if a not in self._session.source.plane_axes]
            key = list(self._display.key())
            key[axes.index(axis)] = int(position)
            self._display.go_to(key)
            self._display.say(f"check slice {position} of axis {axis}")

        self._stack_job("finding the slice to check", work, done)

    def cancel(self) -> None:
        """Stop the running propagation or suggestion (nothing changes)."""
        if not self._jobs.cancel():
            self._display.say("nothing to cancel")
