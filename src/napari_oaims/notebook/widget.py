"""The notebook annotator: an anywidget around a :class:`napari_oaims.Session`.

The browser part (``static/annotator.js``) draws the image and the overlays on a canvas and
turns mouse and keys into messages; this part turns the messages into the same Session calls
the napari widget makes and answers with the changed overlay regions (:mod:`.transport`).
Long work (propagation, the slice suggestion, learning after accept) runs in a thread
(:mod:`.jobs`) with progress and cancel. With ``session_path`` every event is autosaved to a
``.oaims.zarr`` folder (:class:`napari_oaims.store.SessionStore`), and an existing one is resumed.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import numpy as np
import traitlets

from napari_oaims.core import geometry
from napari_oaims.core.history import History
from napari_oaims.core.progress import Cancelled
from napari_oaims.core.ui import KEYS, edges_switch, model_state
from napari_oaims.notebook import transport
from napari_oaims.notebook.jobs import Jobs
from napari_oaims.notebook.objects import AcceptedObjects, ObjectStep
from napari_oaims.notebook.saving import Autosave
from napari_oaims.notebook.stack import SESSION, Display, StackActions
from napari_oaims.notebook.transport import MARK_POINTS

__all__ = ["MARK_POINTS", "Annotator"]

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.core.results import Accepted, Result
    from napari_oaims.engine import Engine
    from napari_oaims.session import Session
    from napari_oaims.store import SessionStore

_STATIC = Path(__file__).parent / "static"


class Annotator(anywidget.AnyWidget):
    """Click, box and scribble annotation in a notebook cell, with a model that learns online.

    Parameters
    ----------
    image : array, optional
        NumPy, Dask or Zarr, 2D or nD (as for :meth:`Engine.session <napari_oaims.Engine.session>`).
        Optional when ``session_path`` names a saved session (its image is used).
    engine : Engine, optional
        Default: :meth:`Engine.pretrained` with ``adaptation`` on ``device``.
    adaptation : str, optional
        Online adaptation (``"oaims"`` for a new engine when not given; given with ``engine``,
        the engine switches to it).
    session_path : str or Path, optional
        A ``.oaims.zarr`` folder: resumed if it holds a session, else created; every event is
        autosaved there.
    plane_axes, channel_axis, rgb
        How the image is read, as in :meth:`Engine.session <napari_oaims.Engine.session>`.
    device : str
        Device of a new engine.
    max_side : int
        Larger side (px) of the image the browser draws (larger planes are downsampled).

    Examples
    --------
    >>> from napari_oaims.notebook import Annotator  # doctest: +SKIP
    >>> annotator = Annotator(image, session_path="cells.oaims.zarr")  # doctest: +SKIP
    >>> annotator  # the last line of a cell shows it  # doctest: +SKIP
    """

    _esm = _STATIC / "annotator.js"
    _css = _STATIC / "annotator.css"

    plane_shape = traitlets.List(traitlets.Int(), [1, 1]).tag(sync=True)
    factor = traitlets.Int(1).tag(sync=True)
    stack_shape = traitlets.List(traitlets.Int(), []).tag(sync=True)
    key = traitlets.List(traitlets.Int(), []).tag(sync=True)
    positive = traitlets.Bool(True).tag(sync=True)
    classes = traitlets.List(traitlets.Unicode(), ["object"]).tag(sync=True)
    class_name = traitlets.Unicode("object").tag(sync=True)
    opacity = traitlets.Float(0.5).tag(sync=True)
    contrast = traitlets.List(traitlets.Float(), [0.0, 1.0]).tag(sync=True)
    grey_range = traitlets.List(traitlets.Float(), list(transport.GREY_RANGE)).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Bool(False).tag(sync=True)
    busy = traitlets.Unicode("").tag(sync=True)
    progress = traitlets.List(traitlets.Int(), [0, 0]).tag(sync=True)
    stack_actions = traitlets.List(traitlets.Unicode(), []).tag(sync=True)
    bindings = traitlets.Dict(dict(KEYS)).tag(sync=True)
    opened_at = traitlets.Float(0.0).tag(sync=True)
    #: Whether an accepted object (and *Propagate*) may take pixels of the objects accepted before.
    overwrite = traitlets.Bool(False).tag(sync=True)

    def __init__(
        self,
        image: Any = None,
        engine: "Engine | None" = None,
        adaptation: str | None = None,
        session_path: str | Path | None = None,
        *,
        plane_axes=(-2, -1),
        channel_axis=None,
        rgb=None,
        device: str = "auto",
        max_side: int = transport.MAX_SIDE,
    ) -> None:
        opened = time.time() * 1e3
        super().__init__()
        self.opened_at = opened
        #: Accepted objects (image spatial shape), and each object's (class id, class name).
        self.labels: np.ndarray
        self.object_classes: dict[int, tuple[int, str]] = {}
        self.history: History[str | ObjectStep | list[ObjectStep]] = History()
        #: Time the session took for the last prompt (ms; "model" in the status line).
        self.last_latency_ms: float | None = None
        self.jobs = Jobs(self._job_changed)
        self._lock = threading.RLock()  # one session call at a time (the kernel's and the jobs')
        self._autosave = Autosave(self._say)
        self._image_cache: tuple[tuple[int, ...], bytes, str] | None = None
        self.session = self._open(image, engine, adaptation, session_path, plane_axes, channel_axis, rgb, device)
        self.engine = self.session.engine
        src = self.session.source
        self.plane_shape = list(src.plane_shape)
        self.factor = transport.display_factor(src.plane_shape, max_side)
        self.stack_shape = [n for a, n in enumerate(src.spatial_shape) if a not in src.plane_axes]
        self._objects = AcceptedObjects(self.session, self._autosave, self.labels, self.object_classes)
        self._stack = StackActions(
            self.session,
            self.jobs,
            self._lock,
            self.history,
            self.labels,
            self.object_classes,
            self._objects.add,
            self.learn,
            Display(
                self._key, self._go_to, self._say, self._update_status, self._send_overlay, self._show, self.send_view
            ),
            lambda: self.overwrite,
        )
        self.key = [0] * len(self.stack_shape)
        self.stack_actions = self._stack.actions()
        self.on_msg(self._on_msg)
        self._update_status()

    # -- opening -------------------------------------------------------------------------------
    def _open(self, image, engine, adaptation, session_path, plane_axes, channel_axis, rgb, device) -> "Session":
        from napari_oaims.engine import Engine

        if engine is None:
            engine = Engine.pretrained(device=device, adaptation=adaptation or "oaims")
        elif adaptation is not None:
            engine.adaptation = adaptation
        path = None if session_path is None else Path(session_path)
        if path is not None and path.exists():
            resumed = self._autosave.resume(path, image, engine)
            self.labels, self.object_classes, self.classes = resumed.labels, resumed.object_classes, resumed.classes
            return resumed.session
        if image is None:
            raise ValueError("Annotator needs an image (or the session_path of a saved session)")
        session = engine.session(image, plane_axes=plane_axes, channel_axis=channel_axis, rgb=rgb)
        self.labels = np.zeros(session.spatial_shape, np.int32)
        if path is not None:
            self._autosave.create(path, session)
        return session

    def close(self) -> None:
        """Close the widget: running work is cancelled and autosaving stops."""
        if sys.is_finalizing():
            # Garbage-collected while Python exits: zarr can start no threads now, so nothing is
            # written; the journal already holds every event and the lock goes with the process.
            return
        self.close_session()
        super().close()

    def close_session(self) -> None:
        """Stop autosaving (the folder keeps everything so far) and cancel running work."""
        self.jobs.cancel()
        self.jobs.wait(30)
        self._autosave.close()
        self._update_status()

    @property
    def store(self) -> "SessionStore | None":
        """The autosave folder's store (None: not saved, or closed)."""
        return self._autosave.store

    # -- the stack (:mod:`.stack`) -----------------------------------------------------------------
    def stack_axis(self) -> int | None:
        """The axis :meth:`propagate` works along (None: the image is no stack)."""
        return self._stack.stack_axis()

    def propagate(self, method: str = "frozen") -> None:
        """Carry the object through the stack in a thread (:meth:`.StackActions.propagate`)."""
        self._stack.propagate(method)

    def propagate_all(self) -> None:
        """Carry every object accepted on the shown slice through the stack (:meth:`.StackActions.propagate_all`)."""
        self._stack.propagate_all()

    def suggest_slice(self) -> None:
        """Move to the propagated slice most worth checking (in a thread)."""
        self._stack.suggest_slice()

    def cancel(self) -> None:
        """Stop the running propagation or suggestion (nothing changes)."""
        self._stack.cancel()

    # -- state shown -----------------------------------------------------------------------------
    def _key(self) -> tuple[int, ...]:
        return tuple(int(k) for k in self.key)

    def _go_to(self, key: list[int]) -> None:
        self.key = key

    @traitlets.validate("key")
    def _valid_key(self, proposal):
        if not hasattr(self, "session"):
            return proposal["value"]
        return list(self.session.source.check_key(proposal["value"]))

    @traitlets.observe("key")
    def _key_changed(self, change) -> None:
        if hasattr(self, "session"):
            old, new = list(change["old"] or []), list(change["new"])
            moved = [a for a, (o, n) in enumerate(zip(old, new)) if o != n] if len(old) == len(new) else []
            if len(moved) == 1:
                axes = [a for a in range(len(self.session.spatial_shape)) if a not in self.session.source.plane_axes]
                self._stack.moved(axes[moved[0]])
            self.send_view()

    def _update_status(self) -> None:
        parts = model_state(getattr(self, "engine", None), self.last_latency_ms, "model")
        if hasattr(self, "session"):
            parts.append(f"object {self.session.object_id}")
        parts.append(f"{len(self.object_classes)} accepted")
        parts.append(f"autosave {self.store.path.name}" if self.store is not None else "not saved")
        if self.factor > 1:
            parts.append(f"shown at 1/{self.factor}")
        self.status = " · ".join(parts)

    def _say(self, text: str, error: bool = False) -> None:
        self.message = text
        self.error = bool(error)

    def _job_changed(self, job, progress: tuple[int, int]) -> None:
        self.busy = job.name if job is not None else ""
        self.progress = list(progress)

    # -- what travels to the browser ---------------------------------------------------------------
    def send_view(self) -> None:
        """Send the shown plane's image and both overlays (on a new view or a new slice)."""
        key = self._key()
        data, mime = self._image_bytes(key)
        shape = transport.display_shape(self.session.source.plane_shape, self.factor)
        self.send({"type": "image", "key": list(key), "shape": list(shape), "format": mime}, [data])
        src = self.session.source
        whole = (0, 0, *src.plane_shape)
        # the browser clears both layers with a new image; only what they hold travels
        objects = geometry.bbox(transport.label_crop(self.labels, src.plane_axes, key, whole) != 0)
        self._send_overlay("objects", key, objects, marks=False)
        st = self.session.planes.get(key)
        self._send_overlay("preview", key, None if st is None else st.bbox)

    def _image_bytes(self, key: tuple[int, ...]) -> tuple[bytes, str]:
        if self._image_cache is None or self._image_cache[0] != key:  # reads the image only: no lock, so
            grey = transport.grey_plane(self.session.source, key, self.factor)  # slices move during a job
            self._image_cache = (key, *transport.image_bytes(grey))
        return self._image_cache[1], self._image_cache[2]

    def _send_overlay(self, layer: str, key, box, reply_to=None, marks: bool = True, entry=None) -> None:
        """Send ``layer`` ("preview" or "objects") of plane ``key`` in plane box ``box``."""
        content, buffers = transport.overlay_message(self.session, self.labels, layer, key, box, self.factor, entry)
        if reply_to is not None:
            content["reply_to"] = reply_to
        if marks:
            content["prompts"] = transport.prompt_marks(self.session, key, self.factor)
        self.send(content, buffers)

    def _show(self, result: "Result", reply_to=None) -> None:
        """Send the preview regions ``result`` changed on the shown plane."""
        key, box = self._key(), None
        for change in result.changes:
            if change.plane == key and change.region is not None:
                ys, xs = change.region
                box = geometry.union(box, (ys.start, xs.start, ys.stop, xs.stop))
        self._send_overlay("preview", key, box, reply_to=reply_to, entry=result.planes.get(key))

    # -- the browser's messages ------------------------------------------------------------------
    def _on_msg(self, _widget, content: dict, buffers) -> None:
        self.handle_message(content)

    def handle_message(self, content: dict) -> None:
        """Act on one message of the browser (see ``static/annotator.js``). Errors are shown in the
        status line (and the prompt that caused them is answered), never raised into the kernel."""
        kind = content.get("type")
        reply_to = content.get("id")
        if kind == "ping":
            self.send({"type": "pong", "t": content.get("t")})
            return
        try:
            if kind == "ready":
                self.send_view()
            elif kind == "click":
                self._prompt(reply_to, "click", content)
            elif kind == "box":
                self._prompt(reply_to, "box", content)
            elif kind == "scribble":
                self._prompt(reply_to, "scribble", content)
            elif kind == "action":
                name = content.get("name")
                action = self._actions().get(name)
                if action is None:
                    raise ValueError(f"unknown action {name!r}; the actions are {sorted(self._actions())}")
                action()
            else:
                raise ValueError(f"unknown message {kind!r} from the browser")
        except Exception as err:  # noqa: BLE001 - shown in the widget; the kernel and the widget go on
            text = str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}"
            self._say(text, error=True)
            if reply_to is not None:
                self.send({"type": "overlay", "layer": "preview", "box": None, "reply_to": reply_to, "failed": True})
        self._update_status()

    def _actions(self) -> dict:
        return {
            "accept": self.accept,
            "next": self.next_object,
            "undo": self.undo,
            "redo": self.redo,
            "clear": self.clear,
            "propagate": self.propagate,
            "propagate_all": self.propagate_all,
            "suggest": self.suggest_slice,
            "cancel": self.cancel,
        }

    def _plane_point(self, y: float, x: float) -> tuple[float, ...]:
        """Full coordinates of display point ``(y, x)`` (display px, pixel i spans [i, i + 1)) on the shown plane."""
        f = self.factor
        src = self.session.source
        return geometry.full_coords(src.plane_axes, len(src.spatial_shape), self._key(), (y * f - 0.5, x * f - 0.5))

    def _prompt(self, reply_to, kind: str, content: dict) -> None:
        try:
            if kind == "click":
                y, x = float(content["y"]), float(content["x"])
                self.click(self._plane_point(y, x), positive=content.get("positive", self.positive), reply_to=reply_to)
            elif kind == "box":
                f = self.factor
                y0, x0, y1, x1 = (float(content[k]) * f for k in ("y0", "x0", "y1", "x1"))
                self.box((min(y0, y1), min(x0, x1), max(y0, y1), max(x0, x1)), reply_to=reply_to)
            else:
                points = [self._plane_point(float(y), float(x)) for y, x in content["points"]]
                self.scribble(points, positive=content.get("positive", self.positive), reply_to=reply_to)
        except (KeyError, TypeError) as err:
            raise ValueError(f"a {kind} message needs its coordinates ({err})") from None

    # -- prompts (also for code) -----------------------------------------------------------------
    def _run_prompt(self, call, reply_to=None) -> "Result":
        job = self.jobs.current
        if job is not None and job.exclusive:
            raise ValueError(f"busy: {job.name}; wait for it to finish or press Cancel")
        t0 = time.perf_counter()
        with self._lock:
            result = call(self.session)
        self.last_latency_ms = (time.perf_counter() - t0) * 1e3
        self.history.push(SESSION)
        self._say("")
        if result.plane is not None and self.session.found_nothing(result.plane):
            self._say(
                f"the model found no object at this prompt. Undo it [{KEYS['undo']}] or draw a box around the object"
            )
        self._show(result, reply_to)
        self._update_status()
        return result

    def click(self, coords, positive: bool = True, reply_to=None) -> "Result":
        """A click at full spatial coordinates ``coords`` (as :meth:`Session.click`)."""
        return self._run_prompt(lambda s: s.click(coords, positive=bool(positive)), reply_to)

    def box(self, box, reply_to=None) -> "Result":
        """A box ``(y0, x0, y1, x1)`` on the shown plane (plane coordinates, ends exclusive)."""
        return self._run_prompt(lambda s: s.box(box, plane=self._key()), reply_to)

    def scribble(self, points, positive: bool = True, reply_to=None) -> "Result":
        """A scribble through ``points`` (N x ndim full coordinates, on one plane)."""
        return self._run_prompt(lambda s: s.scribble(points, positive=bool(positive)), reply_to)

    # -- editing -------------------------------------------------------------------------------
    def _session_call(self, what: str):
        job = self.jobs.current
        if job is not None and job.exclusive:
            raise ValueError(f"cannot {what} now: busy with {job.name}; wait for it to finish or press Cancel")
        return self._lock

    def undo(self) -> None:
        """Undo the last prompt, clear or propagation; right after an accept, take the object back."""
        self._step(undo=True)

    def redo(self) -> None:
        self._step(undo=False)

    def _step(self, undo: bool) -> None:
        with self._session_call("undo" if undo else "redo"):
            step = self.history.undo() if undo else self.history.redo()
            if step is None:
                self._say(f"nothing to {'undo' if undo else 'redo'}")
            elif step == SESSION:
                self._show(self.session.undo() if undo else self.session.redo())
            elif isinstance(step, list):  # objects accepted together (Propagate all)
                for one in reversed(step) if undo else step:
                    self._objects.step(one, undo)
                    self._send_object(one.accepted)
            else:
                self._objects.step(step, undo)
                self._send_object(step.accepted)

    def _send_object(self, accepted: "Accepted") -> None:
        entry = accepted.planes.get(self._key())
        if entry is not None:
            self._send_overlay("objects", self._key(), entry[0], marks=False)

    def clear(self) -> None:
        """Remove all prompts and the mask of the current object (undoable)."""
        with self._session_call("clear"):
            if any(st.prompts for st in self.session.planes.values()):
                self._show(self.session.clear())
                self.history.push(SESSION)

    def class_id(self, name: str) -> int:
        """The class id of class ``name`` (its place in :attr:`classes`, from 1)."""
        name = str(name).strip()
        if not name:
            raise ValueError("a class needs a non-empty name")
        if name not in self.classes:
            self.classes = [*self.classes, name]
        return self.classes.index(name) + 1

    def accept(self) -> "Accepted":
        """Accept the object (class :attr:`class_name`): into :attr:`labels` and the autosave, then
        the model learns from it in a thread."""
        with self._session_call("accept"):
            class_name, followed = self.class_name, self.session.edge_evidence.choice()
            labelled = {"class_id": self.class_id(class_name), "class_name": class_name, "overwrite": self.overwrite}
            accepted = self.session.accept(defer_update=True, **labelled)
            step = self._objects.add(accepted)
            self.history.drop(lambda step: step != SESSION)
            self.history.push(step)
        key = self._key()
        entry = accepted.planes.get(key)
        self._send_overlay("preview", key, entry[0] if entry else None, entry=None)
        self._send_object(accepted)
        said = f"object {accepted.object_id} accepted ({accepted.class_name}, {accepted.area} px)"
        self._say("; ".join(filter(None, [said, edges_switch(followed, self.session)])))
        self.learn()
        return accepted

    def learn(self) -> None:
        """Run the learning of the accepted objects (:meth:`Session.run_pending_updates`): in a thread
        with progress and Cancel when the model adapts, at once when it does not (nothing to learn)."""
        if not self.session.pending_updates:
            return
        if self.engine.adaptation == "none":
            with self._lock:
                self.session.run_pending_updates()
            return

        def work(progress, cancel):
            with self._lock:
                return self.session.run_pending_updates(progress=progress, cancel=cancel)

        def failed(err):
            if isinstance(err, Cancelled):
                self._say("learning cancelled: the weights are as before that object, which waits for the next accept")
            else:
                self._say(f"learning from the object failed: {err}", error=True)
            self._update_status()

        job = self.jobs.current
        if job is not None and not job.exclusive:  # the previous object's learning: this one follows it
            self.jobs.wait()
        self.jobs.start("learning from the object", work, lambda _: self._update_status(), failed, exclusive=False)

    def next_object(self) -> None:
        """Accept the object if it has a mask, else drop its prompts."""
        if any(st.bbox is not None for st in self.session.planes.values()):
            self.accept()
        else:
            self.clear()
