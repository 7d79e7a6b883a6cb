"""What the user does to the object in progress and to accepted objects, with one undo history.

The history (:class:`napari_oaims.core.history.History`) holds two kinds of step: :data:`SESSION`,
a prompt, clear or propagation (:mod:`.stack`) that the session itself can undo, and an
:class:`~napari_oaims.plugin.widget.objects.ObjectStep`, an accepted object. Undo right after an
accept takes the object back out of the objects layer; accepting drops the session steps of the
object (the session starts a new object).

A prompt runs in the GUI thread while the model has answered the recent prompts within
:data:`INLINE_MS`: then its point and its preview are drawn together, and neither a worker's start
nor cores shared with napari's drawing of the new point slow the model down. Slower prompts (a
slow device, a large window, learning at every click) run in a worker, so the viewer stays live.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from napari.utils.notifications import show_info, show_warning

from napari_oaims.core.history import History
from napari_oaims.core.ui import edges_switch
from napari_oaims.plugin.widget.jobs import Job
from napari_oaims.plugin.widget.keys import KEYS
from napari_oaims.plugin.widget.objects import ObjectGroup, ObjectStep

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.core.results import Result
    from napari_oaims.plugin.widget.current import Current
    from napari_oaims.plugin.widget.jobs import JobQueue
    from napari_oaims.plugin.widget.layers import PluginLayers
    from napari_oaims.plugin.widget.objects import AcceptedObjects
    from napari_oaims.session import Session

#: A history step the session undoes itself (a prompt, a clear or a propagation of the current object).
SESSION = "session"
#: Prompts run in the GUI thread while the median time of the last :data:`INLINE_OF` was at most this (ms).
INLINE_MS = 100.0
INLINE_OF = 5
#: The notice for a prompt that asked for an object and got an empty mask.
FOUND_NOTHING = (
    "OAIMS: the model found no object at this prompt. Undo it [{undo}], draw a box around the object, "
    "or choose an object size near the object's diameter in Model"
)
#: What the widget says when the model found nothing on the object's window and the session fell back.
FALLBACK = {
    "smaller window": "OAIMS: the model found no object on the usual window; this answer comes from a smaller one",
    "region": (
        "OAIMS: the model found no object at this prompt; showing the region of similar values under it. "
        "Undo it [{undo}], draw a box around the object, or choose an object size near its diameter in Model"
    ),
}


class Editor:
    """Prompts, undo/redo, clear, accept and next object, with one undo history.

    Parameters
    ----------
    current : Current
        The session and engine it works on (read only).
    layers, objects : PluginLayers, AcceptedObjects
        The plugin's layers (previews, prompts) and the accepted objects in the objects layer.
    jobs : JobQueue
        Every action runs as a job of this queue.
    object_class : callable
        ``() -> (class id, class name)`` of the next accepted object.
    overwrite : callable
        ``() -> bool``: an accepted object takes the pixels of earlier ones where they meet.
    object_changed : callable
        Called with an :class:`ObjectStep` undone or redone (autosave).
    update_status : callable
        Called when what the status line shows may have changed.
    """

    def __init__(
        self,
        current: "Current",
        layers: "PluginLayers",
        objects: "AcceptedObjects",
        jobs: "JobQueue",
        object_class: Callable[[], tuple[int, str]],
        overwrite: Callable[[], bool],
        object_changed: Callable[[ObjectStep], None],
        update_status: Callable[[], None],
    ):
        self._current = current
        self._layers = layers
        self._objects = objects
        self._jobs = jobs
        self._object_class = object_class
        self._overwrite = overwrite
        self._object_changed = object_changed
        self._update_status = update_status
        self.history: History[str | ObjectStep | ObjectGroup] = History()
        #: Time from a prompt to its preview on screen (ms), of the last prompt.
        self.last_latency_ms: float | None = None
        #: How long the session took for the last prompts (ms).
        self.prompt_ms: deque[float] = deque(maxlen=INLINE_OF)

    @property
    def inline(self) -> bool:
        """True if the next prompt runs in the GUI thread (the recent ones were quick)."""
        return bool(self.prompt_ms) and statistics.median(self.prompt_ms) <= INLINE_MS

    def _session(self, what: str) -> "Session | None":
        session = self._current.session
        if session is None:
            show_warning(f"OAIMS: nothing to {what}: no image is being annotated")
        return session

    def _show(self, session: "Session", result: "Result") -> None:
        self._layers.show(result)
        self._layers.sync_prompts(session, self._current.positive)

    # -- prompts -------------------------------------------------------------------------------
    def prompt(self, name: str, call: Callable[["Session"], "Result"], t0: float) -> None:
        """Queue ``call(session)`` (a prompt); its preview is shown when it returns."""

        def work():
            session = self._current.session
            if session is None:
                raise ValueError(f"{name} ignored: no image is being annotated")
            start = time.perf_counter()
            result = call(session)
            self.prompt_ms.append((time.perf_counter() - start) * 1e3)
            return session, result

        def done(out):
            session, result = out
            if session is not self._current.session:
                return
            self.history.push(SESSION)
            self._layers.show(result)
            self.last_latency_ms = (time.perf_counter() - t0) * 1e3
            self._update_status()
            if result.plane is not None and session.found_nothing(result.plane):
                show_info(FOUND_NOTHING.format(undo=KEYS["undo"]))
            elif result.fallback in ("smaller window", "region"):
                show_info(FALLBACK[result.fallback].format(undo=KEYS["undo"]))

        self._jobs.submit(Job(name, work, done, thread=not self.inline))

    # -- undo / redo / clear -------------------------------------------------------------------
    def undo(self) -> None:
        """Undo the last prompt or clear; right after an accept, take the accepted object back."""
        self.step(undo=True)

    def redo(self) -> None:
        """Redo what :meth:`undo` took back."""
        self.step(undo=False)

    def step(self, undo: bool) -> None:
        """Undo (or redo) the last step: a prompt or clear, or an accepted object."""
        what = "undo" if undo else "redo"

        def work():  # the history is looked up when the job runs: jobs before it may change it
            session = self._session(what)
            if session is None:
                return
            step = self.history.undo() if undo else self.history.redo()
            if step is SESSION:
                self._show(session, session.undo() if undo else session.redo())
            elif step is not None:
                self._objects.apply(step, undo=undo, session=session)
                for one in step.in_order(undo) if isinstance(step, ObjectGroup) else [step]:
                    self._object_changed(one)
                self._update_status()

        self._jobs.submit(Job(what, work))

    def clear(self) -> None:
        """Remove all prompts and the mask of the current object (undoable)."""

        def work():
            session = self._session("clear")
            if session is not None and self._has_prompts(session):
                self._show(session, session.clear())
                self.history.push(SESSION)

        self._jobs.submit(Job("clear", work))

    # -- accept --------------------------------------------------------------------------------
    def accept(self) -> None:
        """Commit the object into the objects layer (new id, chosen class), then learn from it."""
        self._jobs.submit(Job("accept", self._accept))

    def next_object(self) -> None:
        """Accept the object if it has a mask, else drop its prompts; then wait for a new click."""

        def work():
            session = self._session("finish")
            if session is None:
                return
            if any(session.plane_mask(key).any() for key in self._layers.planes):
                self._accept()
            elif self._has_prompts(session):
                self._show(session, session.clear())
                self.history.push(SESSION)
            self._layers.select_points()

        self._jobs.submit(Job("next object", work))

    def _accept(self) -> None:
        session = self._session("accept")
        if session is None:
            return
        class_id, class_name = self._object_class()
        followed = session.edge_evidence.choice()
        try:  # an attached store paints the object with its class (autosave)
            overwrite = self._overwrite()
            accepted = session.accept(defer_update=True, class_id=class_id, class_name=class_name, overwrite=overwrite)
        except ValueError as err:
            show_warning(f"OAIMS: {err}")
            return
        switched = edges_switch(followed, session)
        if switched:
            show_info(f"OAIMS: {switched} (Model panel, edges)")
        self._objects.use(self._layers.objects())
        self.history.drop(lambda step: step is not SESSION)
        self.history.push(self._objects.add(accepted))
        self._layers.clear_object(accepted)
        self._layers.sync_prompts(session, self._current.positive)
        engine = self._current.engine
        learning = engine is not None and engine.adaptation != "none"
        self._jobs.submit(
            Job(
                "learning from the object",
                session.run_pending_updates,
                lambda _: self._update_status(),
                thread=True,
                progress="Learning from the object" if learning else None,
            )
        )
        self._update_status()

    def _has_prompts(self, session: "Session") -> bool:
        return any(session.prompts(key) for key in self._layers.planes)

    # -- history upkeep ------------------------------------------------------------------------
    def forget_session_steps(self) -> None:
        """A new session: its history starts empty; accepted objects stay undoable (not redoable)."""
        self.history.drop(lambda step: step is not SESSION and not step.undone)

    def forget_objects(self) -> None:
        """The objects layer went away: its objects can no longer be undone or redone."""
        self.history.drop(lambda step: step is SESSION)
