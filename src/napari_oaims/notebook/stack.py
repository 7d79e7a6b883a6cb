"""The stack actions of the notebook annotator: propagate the object (or every accepted object)
through the stack, suggest the slice to check, cancel; each runs as a job in a thread
(:mod:`.jobs`) with progress, so the kernel stays free for the browser's Cancel."""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_oaims.core import geometry
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

    def _stack_job(self, name: str, work, done, after=None) -> None:
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
            if after is not None:
                after()
            self._update_status()

        def finished(value):
            try:
                done(value)
            except Exception as err:  # noqa: BLE001 - shown in the widget
                failed(err)
                return
            if after is not None:
                after()
            self._update_status()

        self.jobs.start(name, locked, finished, failed)

    def propagate(self, method: str = "ema") -> None:
        """Carry the object through the stack in a thread (progress and Cancel in the widget). The
        shown slice's preview follows the propagation as its masks are made; a cancelled or failed
        one leaves the preview as the session has it (unchanged)."""
        live: dict[tuple[int, ...], Any] = {}  # plane -> box the preview shows while it runs

        def on_slice(key, mask) -> None:  # in the job's thread
            key = tuple(int(k) for k in key)
            box = geometry.union(live.get(key), geometry.bbox(mask))
            if key == self._key() and box is not None:
                live[key] = box
                self._send_overlay("preview", key, box, marks=False, entry=((0, 0, *mask.shape), mask))

        def work(axis, progress, cancel):
            return self.session.propagate(axis=axis, method=method, progress=progress, cancel=cancel, on_slice=on_slice)

        def done(result):
            self.history.push(SESSION)
            self._show(result)
            self._say(f"propagated through {len(result.changes)} slices ({method})")

        def after() -> None:  # the shown slice as the session has it, where the live masks went
            key = self._key()
            st = self.session.planes.get(key)
            box = geometry.union(live.get(key), None if st is None else st.bbox)
            if box is not None:
                self._send_overlay("preview", key, box)

        self._stack_job("propagating", work, done, after)

    def propagate_all(self) -> None:
        """Carry every object accepted on the shown slice through the stack at once
        (:meth:`Session.propagate_objects`; the image's other objects are a barrier). The objects
        are accepted; one undo takes them all back."""
        from napari_oaims.notebook.transport import label_crop

        src, key = self.session.source, self._key()
        if any(st.prompts for st in self.session.planes.values()):
            raise ValueError("cannot propagate all: an object is in progress; accept or clear it first")
        seeds = np.ascontiguousarray(label_crop(self.labels, src.plane_axes, key, (0, 0, *src.plane_shape)))
        if not seeds.any():
            raise ValueError(
                "cannot propagate all: no object is accepted on this slice; accept the objects of one slice"
            )
        ids = [int(v) for v in np.unique(seeds) if v > 0]
        barrier = np.where(np.isin(self.labels, ids), 0, self.labels)
        classes = {i: self.object_classes.get(i, (1, "object")) for i in ids}

        def work(axis, progress, cancel):
            # the new objects' ids follow every label so far
            self.session.object_id = max(self.session.object_id, int(self.labels.max()) + 1)
            return self.session.propagate_objects(
                seeds, plane=key, axis=axis, barrier=barrier, progress=progress, cancel=cancel, classes=classes
            )

        def done(result):
            steps = [self._add_object(accepted) for accepted in result.objects]
            self.history.drop(lambda step: step != SESSION)
            self.history.push(steps)
            self.send_view()
            self._say(f"{len(steps)} objects propagated and accepted (one undo takes them all back)")
            self.learn()

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
