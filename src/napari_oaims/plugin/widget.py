"""The OAIMS annotator: a napari dock widget around :class:`napari_oaims.Session`.

The widget only translates between napari layers/events and core calls (GUIDE section 2). It owns
four layers, created for the chosen image with the image's transforms:

========================= ======== =================================================================
layer (default name)      type     role
========================= ======== =================================================================
``clicks``                Points   each new point is a click (green positive, red negative)
``boxes & scribbles``     Shapes   rectangles are boxes, paths/lines are scribbles
``preview``               Labels   the object being segmented (value 1)
``objects``               Labels   accepted objects, one id each; ``features`` holds their class
========================= ======== =================================================================

Key bindings (chosen to avoid napari's defaults; :data:`KEYS`): ``N`` toggle click polarity,
``K`` accept object, ``J`` next object, ``U`` undo, ``Shift-U`` redo, ``Q`` clear the current object.

Every call into the engine goes through one ordered queue: clicks, Post-Interaction updates,
loading and saving run in napari thread workers (the viewer never freezes), and a prompt that
arrives while an update runs waits for it and is applied in order. Errors become napari
notifications. Torch is imported only when the model is first needed (in a worker).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels, Layer, Points, Shapes
from napari.qt.threading import create_worker
from napari.utils import progress
from napari.utils.colormaps import DirectLabelColormap
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from napari_oaims.engine import Engine
    from napari_oaims.session import Session

log = logging.getLogger(__name__)

#: Adaptation modes offered in the dropdown: (label, adapter name).
ADAPTATION_MODES = (
    ("off", "none"),
    ("after each click (MI)", "mi"),
    ("after each object (PI)", "pi"),
    ("both (OAIMS)", "oaims"),
)
DEVICES = ("auto", "cpu", "cuda", "mps")
#: Object sizes offered in the dropdown: (label, diameter in px, "auto", or None for the weights'
#: own first window). A diameter sets the first click's window to four diameters.
OBJECT_SIZES = (
    ("as the weights say", None),
    ("auto (learnt from accepted objects)", "auto"),
    ("about 10 px across", 10),
    ("about 25 px across", 25),
    ("about 50 px across", 50),
    ("about 100 px across", 100),
)
#: Actions and their key bindings (napari key names).
KEYS = {"toggle": "N", "accept": "K", "next": "J", "undo": "U", "redo": "Shift-U", "clear": "Q"}
LAYER_NAMES = {"points": "clicks", "shapes": "boxes & scribbles", "preview": "preview", "objects": "objects"}
POSITIVE_COLOR = "lime"
NEGATIVE_COLOR = "red"
PREVIEW_COLOR = "yellow"
DEFAULT_CLASS = (1, "object")
BOX_TYPES = ("rectangle",)
SCRIBBLE_TYPES = ("path", "line", "polyline")


def available_devices() -> dict[str, bool]:
    """Which devices this machine offers (imports torch)."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    return {"auto": True, "cpu": True, "cuda": torch.cuda.is_available(), "mps": bool(mps and mps.is_available())}


@dataclass
class _Job:
    """One queued piece of work: ``work()`` (in a worker thread if ``thread``), then ``done(result)``
    in the GUI thread. ``progress`` is the description of a progress bar (None: no bar)."""

    name: str
    work: Callable[[], Any]
    done: Callable[[Any], None] | None = None
    thread: bool = False
    progress: str | None = None


class AnnotatorWidget(QWidget):
    """Click, box and scribble annotation with a model that learns from the user (see module doc)."""

    #: autosave failed (the error) or works again (None); emitted from any thread
    _autosave_state = Signal(object)

    def __init__(self, napari_viewer: "napari.viewer.Viewer", engine: "Engine | None" = None, device: str = "auto",
                 adaptation: str = "none", weights: str | Path | None = None):
        super().__init__()
        self.viewer = napari_viewer
        self.engine: Engine | None = engine
        self.session: Session | None = None
        self.image_layer: Image | None = None
        self.layers: dict[str, Layer | None] = dict.fromkeys(LAYER_NAMES)
        self.positive = True
        self.last_latency_ms: float | None = None
        self.store = None  # a SessionStore once the session is saved (autosave)
        self._weights = weights
        self._device = device
        self._adaptation = engine.adaptation if engine is not None else adaptation
        self._object_size: int | str | None = None
        self._queue: deque[_Job] = deque()
        self._running: _Job | None = None
        self._history: list = []  # "s" (a session prompt/clear) or ("accept", id, [(index, before, after)])
        self._redo: list = []
        self._classes: dict[int, tuple[int, str]] = {}  # object id -> (class id, class name)
        self._withdrawn: dict[int, float | None] = {}  # undone objects' diameters, for redo (object size "auto")
        self._preview_keys: set[tuple[int, ...]] = set()
        self._n_points = 0
        self._n_shapes = 0
        self._syncing = False
        self._closed = False
        # event connections by group: "viewer" (until closed), "image" (the image layer), "layers" (ours)
        self._connections: dict[str, list[tuple[Any, Callable]]] = {"viewer": [], "image": [], "layers": []}
        self._removed: list[Layer] = []
        self._removal_timer = QTimer(self)
        self._removal_timer.setSingleShot(True)
        self._removal_timer.timeout.connect(self._handle_removals)
        self._autosave_state.connect(self._show_autosave_state)
        self._build_ui()
        self._connect(self.viewer.layers.events.inserted, self._refresh_image_choices)
        self._connect(self.viewer.layers.events.removed, self._on_layer_removed)
        self._connect(self.viewer.dims.events.order, self._on_dims_changed)
        self._connect(self.viewer.dims.events.ndisplay, self._on_dims_changed)
        self._bind_keys()
        self._refresh_image_choices()
        if self.engine is None:
            self._submit(_Job("load model", self._load_engine, self._engine_ready, thread=True,
                              progress="Loading the OAIMS model"))
        else:
            self._engine_ready(self.engine)
        first = self.image_choice.currentData()
        if first is not None:
            self.set_image(first)

    # ------------------------------------------------------------------------------------------
    # UI
    # ------------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        layout = QVBoxLayout(self)

        box = QGroupBox("Image")
        form = QFormLayout(box)
        self.image_choice = QComboBox()
        self.image_choice.setToolTip("The image layer to annotate (2D, RGB or nD)")
        self.image_choice.activated.connect(lambda _: self.set_image(self.image_choice.currentData()))
        form.addRow("layer", self.image_choice)
        layout.addWidget(box)

        box = QGroupBox("Prompts")
        grid = QGridLayout(box)
        self.positive_check = QCheckBox(f"positive clicks [{KEYS['toggle']}]")
        self.positive_check.setChecked(True)
        self.positive_check.setToolTip("Green points add to the object, red points remove from it")
        self.positive_check.toggled.connect(self.set_positive)
        grid.addWidget(self.positive_check, 0, 0, 1, 2)
        grid.addWidget(QLabel("class"), 1, 0)
        self.class_choice = QComboBox()
        self.class_choice.setEditable(True)
        self.class_choice.setInsertPolicy(QComboBox.InsertPolicy.InsertAtBottom)
        self.class_choice.addItem("object")
        self.class_choice.setToolTip("Class of the next accepted object (type a new name to add a class)")
        grid.addWidget(self.class_choice, 1, 1)
        self.buttons: dict[str, QPushButton] = {}
        for i, (name, text, slot, tip) in enumerate([
            ("accept", "Accept", self.accept, "Commit the preview as a new object and learn from it"),
            ("next", "Next object", self.next_object, "Accept the object if there is one, then start a new one"),
            ("undo", "Undo", self.undo, "Undo the last prompt, clear or accept"),
            ("redo", "Redo", self.redo, "Redo what was undone"),
            ("clear", "Clear object", self.clear, "Remove all prompts of the current object (undoable)"),
        ]):
            button = QPushButton(f"{text} [{KEYS[name]}]")
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, f=slot: f())
            grid.addWidget(button, 2 + i // 2, i % 2)
            self.buttons[name] = button
        layout.addWidget(box)

        box = QGroupBox("Model")
        form = QFormLayout(box)
        self.device_choice = QComboBox()
        self.device_choice.addItems(list(DEVICES))
        self.device_choice.setCurrentText(str(self._device))
        self.device_choice.activated.connect(lambda _: self.set_device(self.device_choice.currentText()))
        form.addRow("device", self.device_choice)
        self.adaptation_choice = QComboBox()
        for label, name in ADAPTATION_MODES:
            self.adaptation_choice.addItem(label, name)
        self._show_adaptation(self._adaptation)
        self.adaptation_choice.setToolTip("Online adaptation: the model learns from your clicks and accepted objects")
        self.adaptation_choice.activated.connect(lambda _: self.set_adaptation(self.adaptation_choice.currentData()))
        form.addRow("adaptation", self.adaptation_choice)
        self.size_choice = QComboBox()
        for label, size in OBJECT_SIZES:
            self.size_choice.addItem(label, size)
        self.size_choice.setToolTip("How large the objects are: the first click of an object is answered on a "
                                    "window about four diameters wide (docs: 'Large or small objects')")
        self.size_choice.activated.connect(lambda _: self.set_object_size(self.size_choice.currentData()))
        form.addRow("object size", self.size_choice)
        self.weights_label = QLabel("shipped weights")
        form.addRow("weights", self.weights_label)
        row = QGridLayout()
        for i, (name, text, slot) in enumerate([
            ("load_weights", "Load weights…", self._ask_load_weights),
            ("save_weights", "Save weights…", self._ask_save_weights),
            ("reset", "Reset model", self.reset_model),
        ]):
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, f=slot: f())
            row.addWidget(button, 0, i)
            self.buttons[name] = button
        form.addRow(row)
        layout.addWidget(box)

        box = QGroupBox("Session")
        grid = QGridLayout(box)
        button = QPushButton("Save session…")
        button.setToolTip("Write image, objects, prompts, event log and model to a .oaims.zarr folder; "
                          "then every further event is saved automatically")
        button.clicked.connect(lambda _=False: self._ask_save_session())
        self.buttons["save_session"] = button
        grid.addWidget(button, 0, 0)
        button = QPushButton("Resume session…")
        button.setToolTip("Open a .oaims.zarr session to go on with it: image, objects, adapted model and log")
        button.clicked.connect(lambda _=False: self._ask_resume_session())
        self.buttons["resume_session"] = button
        grid.addWidget(button, 0, 1)
        self.store_label = QLabel("not saved")
        grid.addWidget(self.store_label, 1, 0, 1, 2)
        layout.addWidget(box)

        box = QGroupBox("3D")
        grid = QGridLayout(box)
        button = QPushButton("Propagate through stack (coming)")
        button.setEnabled(False)
        button.setToolTip("Student-teacher propagation of the object through the stack: coming in a later version")
        self.buttons["propagate"] = button
        grid.addWidget(button, 0, 0)
        layout.addWidget(box)

        self.status = QLabel()
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self._update_status()

    def _update_status(self) -> None:
        parts = [f"latency {self.last_latency_ms:.0f} ms" if self.last_latency_ms is not None else "latency –",
                 f"adaptation {self.engine.adaptation if self.engine else self._adaptation}",
                 f"updates {self.engine.updates if self.engine else 0}",
                 f"device {self.engine.device if self.engine else self._device}"]
        if self.session is not None:
            parts.append(f"object {self.session.object_id}")
        waiting = len(self._queue) + (self._running is not None)
        if waiting:
            parts.append(f"busy: {self._running.name if self._running else ''} ({len(self._queue)} queued)")
        self.status.setText(" · ".join(parts))

    # ------------------------------------------------------------------------------------------
    # The ordered job queue
    # ------------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while a job runs or waits (tests and scripts wait for ``not busy``)."""
        return self._running is not None or bool(self._queue)

    def _submit(self, job: _Job) -> None:
        self._queue.append(job)
        self._pump()

    def _pump(self) -> None:
        while self._running is None and self._queue and not self._closed:
            job = self._queue.popleft()
            if job.thread:
                self._start_worker(job)
            else:
                try:
                    result = job.work()
                    if job.done is not None:
                        job.done(result)
                except Exception as err:  # noqa: BLE001 - every error becomes a notification
                    self._notify_error(job.name, err)
        self._update_status()

    def _start_worker(self, job: _Job) -> None:
        self._running = job
        bar = progress(total=0, desc=job.progress) if job.progress else None
        worker = create_worker(job.work, _ignore_errors=True)

        def returned(result):
            if job.done is not None and not self._closed:
                try:
                    job.done(result)
                except Exception as err:  # noqa: BLE001
                    self._notify_error(job.name, err)

        def finished():
            if bar is not None:
                bar.close()
            self._running = None
            self._pump()

        worker.returned.connect(returned)
        worker.errored.connect(lambda err: self._notify_error(job.name, err))
        worker.finished.connect(finished)
        self._update_status()
        worker.start()

    def _notify_error(self, what: str, err: BaseException) -> None:
        if isinstance(err, (ValueError, TypeError, FileNotFoundError)):
            show_error(f"OAIMS {what}: {err}")
        else:
            log.error("OAIMS %s failed", what, exc_info=err)
            show_error(f"OAIMS {what} failed: {type(err).__name__}: {err}")

    # ------------------------------------------------------------------------------------------
    # Engine
    # ------------------------------------------------------------------------------------------
    def _load_engine(self) -> "Engine":
        from napari_oaims.adapt import ADAPTERS
        from napari_oaims.engine import Engine

        mode = self._adaptation if self._adaptation in ADAPTERS else "none"
        return Engine.pretrained(device=self._device, adaptation=mode, weights=self._weights)

    def _engine_ready(self, engine: "Engine") -> None:
        self.engine = engine
        self._apply_object_size(engine)
        if self._weights is not None:
            self.weights_label.setText(Path(self._weights).name)
        if engine.adaptation != self._adaptation:
            self.set_adaptation(self._adaptation)
        self._enable_devices()
        self._update_status()

    def _enable_devices(self) -> None:
        try:
            available = available_devices()
        except ImportError:  # pragma: no cover - torch is a dependency
            return
        model = self.device_choice.model()
        for i, name in enumerate(DEVICES):
            item = model.item(i)
            item.setEnabled(available[name])
            if not available[name]:
                item.setToolTip(f"{name} is not available on this machine")

    def set_device(self, name: str) -> None:
        """Move the model (with what it learnt so far) to ``auto``, ``cpu``, ``cuda`` or ``mps``."""
        self._device = name
        if self.engine is None:
            return

        def work():
            return self.engine.to(name)

        self._submit(_Job(f"device {name}", work, self._swap_engine, thread=True,
                          progress=f"Moving the model to {name}"))

    def _swap_engine(self, engine: "Engine") -> None:
        self.engine = engine
        self._apply_object_size(engine)
        if self.session is not None:
            self.session.engine = engine
        self._update_status()

    def set_object_size(self, size: "int | str | None") -> None:
        """Objects about ``size`` px across (the first click's window is four diameters), ``"auto"``
        (from the objects accepted so far; measured under the click before the first) or None (the
        weights' own first window)."""
        sizes = [value for _, value in OBJECT_SIZES]
        if size not in sizes and not (isinstance(size, (int, float)) and not isinstance(size, bool) and 2 <= size <= 1024):
            raise ValueError(f"object size must be None, 'auto' or a diameter of 2-1024 px, got {size!r}")
        self._object_size = size
        if size in sizes:
            self.size_choice.setCurrentIndex(sizes.index(size))
        if self.engine is not None:
            self._apply_object_size(self.engine, force=True)

    def _apply_object_size(self, engine: "Engine", force: bool = False) -> None:
        """Give ``engine`` the chosen first window; with no choice, a new engine keeps its own."""
        size = self._object_size
        if size is None and not force:
            return
        engine.first_window = size if size is None or size == "auto" else int(round(4 * size))

    def _show_adaptation(self, name: str) -> None:
        index = self.adaptation_choice.findData(name)
        if index >= 0:
            self.adaptation_choice.setCurrentIndex(index)

    def set_adaptation(self, name: str) -> None:
        """Switch online adaptation (``none``, ``mi``, ``pi``, ``oaims``); weights learnt so far are kept."""
        from napari_oaims.adapt import ADAPTERS

        current = self.engine.adaptation if self.engine is not None else "none"
        if name not in ADAPTERS:
            show_warning(f"OAIMS: adaptation '{name}' is not available in this version "
                         f"(available: {', '.join(sorted(ADAPTERS))}); keeping '{current}'")
            self._adaptation = current
            self._show_adaptation(current)
            return
        self._adaptation = name
        self._show_adaptation(name)
        if self.engine is not None:
            def work():
                self.engine.adaptation = name

            self._submit(_Job("adaptation", work, lambda _: self._update_status()))

    def reset_model(self) -> None:
        """Back to the pretrained weights (drops what was learnt online)."""
        def work():
            if self.engine is None:
                raise ValueError("the model is not loaded yet")
            self.engine.reset()
            show_info("OAIMS: model reset to the pretrained weights")

        self._submit(_Job("reset model", work, lambda _: self._update_status()))

    def load_weights(self, path: str | Path) -> None:
        """Load adapted weights written by :meth:`save_weights` (``.safetensors`` + ``.json``)."""
        def work():
            from napari_oaims.engine import Engine

            return Engine.load(path, device=self._device, adaptation=self._adaptation_or_none())

        def done(engine):
            self._swap_engine(engine)
            self.weights_label.setText(Path(path).name)
            show_info(f"OAIMS: loaded weights {Path(path).name} ({engine.updates} updates)")

        self._submit(_Job("load weights", work, done, thread=True, progress="Loading weights"))

    def save_weights(self, path: str | Path) -> None:
        """Write the current (adapted) weights to ``path`` (``.safetensors`` + ``.json``)."""
        def work():
            if self.engine is None:
                raise ValueError("the model is not loaded yet")
            return self.engine.save(path)

        self._submit(_Job("save weights", work, lambda p: show_info(f"OAIMS: saved weights to {p}"), thread=True,
                          progress="Saving weights"))

    def _adaptation_or_none(self) -> str:
        from napari_oaims.adapt import ADAPTERS

        return self._adaptation if self._adaptation in ADAPTERS else "none"

    def _ask_load_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load adapted weights", "", "Weights (*.safetensors)")
        if path:
            self.load_weights(path)

    def _ask_save_weights(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save adapted weights", "oaims_adapted.safetensors",
                                              "Weights (*.safetensors)")
        if path:
            self.save_weights(path)

    # ------------------------------------------------------------------------------------------
    # Image and session
    # ------------------------------------------------------------------------------------------
    def _refresh_image_choices(self, event=None) -> None:
        current = self.image_choice.currentData()
        self.image_choice.blockSignals(True)
        self.image_choice.clear()
        for layer in self.viewer.layers:
            if isinstance(layer, Image):
                self.image_choice.addItem(layer.name, layer)
        index = self.image_choice.findData(self.image_layer if self.image_layer is not None else current)
        self.image_choice.setCurrentIndex(max(index, 0))
        self.image_choice.blockSignals(False)

    def set_image(self, layer: Image | str | None) -> None:
        """Annotate ``layer`` (an image layer or its name): creates the session and the plugin's layers."""
        if isinstance(layer, str):
            layer = self.viewer.layers[layer] if layer in self.viewer.layers else None
        if layer is None:
            show_warning("OAIMS: no image layer chosen: add an image and select it in the annotator")
            return
        if not isinstance(layer, Image):
            show_error(f"OAIMS: '{layer.name}' is a {type(layer).__name__} layer; choose an image layer")
            return
        if layer is self.image_layer and self.session is not None:
            return
        self._submit(_Job("open image", lambda: self._open_image(layer)))

    def _plane_axes(self, ndim: int) -> tuple[int, int]:
        """The image axes shown on screen (the last two displayed viewer axes), in ascending order."""
        offset = self.viewer.dims.ndim - ndim
        axes = [a - offset for a in self.viewer.dims.displayed[-2:]]
        if len(axes) != 2 or min(axes) < 0:
            return (ndim - 2, ndim - 1)
        return tuple(sorted(axes))  # type: ignore[return-value]

    @staticmethod
    def _image_data(layer: Image):
        return layer.data[0] if layer.multiscale else layer.data

    def _open_image(self, layer: Image, session: "Session | None" = None) -> None:
        """Annotate ``layer`` with a new session (or with ``session``, a resumed one)."""
        if self.engine is None:
            raise ValueError("the model is not loaded (see the previous error)")
        data = self._image_data(layer)
        try:
            if session is None:
                session = self.engine.session(data, plane_axes=self._plane_axes(layer.ndim), rgb=bool(layer.rgb))
        except (ValueError, TypeError) as err:
            if layer is self.image_layer:  # its data changed into something unusable
                self._detach_image()
            self._refresh_image_choices()
            raise ValueError(f"cannot annotate '{layer.name}': {err}") from None
        if layer is not self.image_layer:
            self._detach_image()
            self.layers["objects"] = None  # the objects of another image stay in the viewer, detached
            self.image_layer = layer
            self._connect(layer.events.data, self._on_image_data, "image")
        self._history.clear()
        self._redo.clear()
        self._withdrawn.clear()
        self._stop_autosave(f"annotation of '{layer.name}' restarted")
        self.session = session
        self._make_layers()
        self._number_objects()
        self._refresh_image_choices()
        self._update_status()

    def _detach_image(self) -> None:
        """Stop annotating the current image (the layers stay in the viewer)."""
        self._disconnect("image")
        self._stop_autosave("the image was detached")
        self.image_layer = None
        self.session = None
        self._preview_keys.clear()

    def _restart_session(self, reason: str) -> None:
        """A new session on the same image (e.g. other plane axes); the current object is dropped."""
        if self.image_layer is None or self.engine is None:
            return
        old = self.session
        had_prompts = old is not None and any(st.prompts for st in old.planes.values())
        self.session = None
        self.session = self.engine.session(self._image_data(self.image_layer),
                                           plane_axes=self._plane_axes(self.image_layer.ndim),
                                           rgb=bool(self.image_layer.rgb))
        if old is not None and old.source.plane_axes == self.session.source.plane_axes:
            # same objects seen the same way: their sizes still count for object size "auto"
            self.session.accepted_diameters = dict(old.accepted_diameters)
        self._history = [h for h in self._history if h != "s"]
        self._redo.clear()
        self._number_objects()
        self._stop_autosave(reason)
        self._redraw_preview(clear_all=True)
        self._sync_prompt_layers()
        if had_prompts:
            show_info(f"OAIMS: {reason}: the object in progress was discarded")

    def _on_dims_changed(self, event=None) -> None:
        if self.session is None or self.image_layer is None:
            return
        if self._plane_axes(self.image_layer.ndim) != self.session.source.plane_axes:
            self._submit(_Job("change of view", lambda: self._restart_session("the displayed axes changed")))

    def _on_image_data(self, event=None) -> None:
        layer = self.image_layer

        def work():
            if layer is None or layer is not self.image_layer:
                return
            shape = self.session.spatial_shape if self.session is not None else None
            new_shape = tuple(self._image_data(layer).shape[:-1] if layer.rgb else self._image_data(layer).shape)
            if shape != new_shape:
                show_warning(f"OAIMS: the data of '{layer.name}' changed shape {shape} -> {new_shape}: "
                             "new annotation layers were created")
                self._open_image(layer)
            else:
                self._restart_session(f"the data of '{layer.name}' was replaced")

        self._submit(_Job("image replaced", work))

    # ------------------------------------------------------------------------------------------
    # Plugin layers
    # ------------------------------------------------------------------------------------------
    def _make_layers(self) -> None:
        """(Re)create the four plugin layers for the current image (old ones are left detached)."""
        shape = self.session.spatial_shape
        ndim = len(shape)
        transforms = self._transforms()
        self._disconnect("layers")
        for kind in ("points", "shapes", "preview"):  # working layers of a previous image go away
            old = self.layers.get(kind)
            if old is not None and old in self.viewer.layers:
                self.layers[kind] = None
                self.viewer.layers.remove(old)
        objects = self.layers.get("objects")
        if objects is None or objects.data.shape != shape or objects not in self.viewer.layers:
            self._new_objects_layer()
        preview = Labels(np.zeros(shape, np.uint8), name=LAYER_NAMES["preview"], opacity=0.6, **transforms)
        preview.colormap = DirectLabelColormap(color_dict={None: "transparent", 0: "transparent", 1: PREVIEW_COLOR})
        shapes = Shapes(ndim=ndim, name=LAYER_NAMES["shapes"], edge_color=POSITIVE_COLOR, face_color="transparent",
                        edge_width=1.5, **transforms)
        points = Points(ndim=ndim, name=LAYER_NAMES["points"], size=max(4.0, min(shape[-2:]) / 80),
                        face_color=POSITIVE_COLOR, border_color="white", features={"positive": np.zeros(0, bool)},
                        **transforms)
        for kind, layer in (("preview", preview), ("shapes", shapes), ("points", points)):
            self.layers[kind] = layer
            self.viewer.add_layer(layer)
        self._preview_keys.clear()
        self._n_points = self._n_shapes = 0
        for kind, layer in self.layers.items():
            self._connect(layer.events.name, self._on_layer_renamed, "layers")
        self._connect(points.events.data, self._on_points_data, "layers")
        self._connect(shapes.events.data, self._on_shapes_data, "layers")
        self.set_positive(self.positive)
        self.viewer.layers.selection.active = points
        points.mode = "add"

    def _layer_kind(self, layer) -> str | None:
        for kind, own in self.layers.items():
            if own is layer:
                return kind
        return None

    def _on_layer_renamed(self, event) -> None:
        kind = self._layer_kind(event.source)
        if kind is not None:
            show_info(f"OAIMS: the {kind} layer is now called '{event.source.name}'; the annotator keeps using it")

    def _on_layer_removed(self, event) -> None:
        # Handled once the removal is over: a viewer that closes removes all its layers first,
        # which must not read as the user deleting the annotator's layers.
        self._refresh_image_choices()
        self._removed.append(event.value)
        self._removal_timer.start(0)

    def _handle_removals(self) -> None:
        removed, self._removed = self._removed, []
        if self._closed:
            return
        if not len(self.viewer.layers):  # the viewer was cleared (or is closing): stop quietly
            self._queue.clear()
            self._detach_image()
            return
        for layer in removed:
            if layer in self.viewer.layers:
                continue
            if layer is self.image_layer:
                self._queue.clear()
                self._detach_image()
                show_warning(f"OAIMS: the image layer '{layer.name}' was removed: annotation stopped "
                             "(choose an image to go on)")
                continue
            kind = self._layer_kind(layer)
            if kind is None or self.session is None:
                continue
            if kind == "objects":
                self.layers["objects"] = None
                self._history = [h for h in self._history if h == "s"]
                self._redo = [h for h in self._redo if h == "s"]
                show_warning("OAIMS: the objects layer was removed; the next accepted object starts a new one")
                continue
            self.viewer.add_layer(layer)
            show_warning(f"OAIMS: the '{layer.name}' layer is needed while annotating; it was added back")

    # ------------------------------------------------------------------------------------------
    # Prompts from layer events
    # ------------------------------------------------------------------------------------------
    def set_positive(self, positive: bool) -> None:
        """Polarity of the next clicks and scribbles (green positive, red negative)."""
        self.positive = bool(positive)
        if self.positive_check.isChecked() != self.positive:
            self.positive_check.setChecked(self.positive)
        colour = POSITIVE_COLOR if self.positive else NEGATIVE_COLOR
        points, shapes = self.layers.get("points"), self.layers.get("shapes")
        if points is not None:
            points.selected_data = set()  # the current colour would otherwise repaint the selection
            points.current_face_color = colour
            points.feature_defaults["positive"] = self.positive
        if shapes is not None:  # scribbles take the polarity too (boxes are always positive)
            shapes.selected_data = set()
            shapes.current_edge_color = colour

    def toggle_positive(self) -> None:
        self.set_positive(not self.positive)

    def _on_points_data(self, event) -> None:
        if self._syncing or str(getattr(event, "action", "added")) not in ("added", "removed"):
            return
        points = event.source
        if str(event.action) == "removed" or len(points.data) < self._n_points:
            self._n_points = len(points.data)
            show_info("OAIMS: removing a click does not change the mask; use Undo "
                      f"[{KEYS['undo']}] to take a prompt back")
            return
        t0 = time.perf_counter()
        new = [np.asarray(p, float) for p in points.data[self._n_points:]]
        first = self._n_points
        self._n_points = len(points.data)
        bad = []
        for i, coords in enumerate(new):
            if self._check_point(coords, "click"):
                self._submit(_Job("click", lambda c=coords, p=self.positive: self._prompt("click", c, p),
                                  lambda r, t=t0: self._show_prompt(r, t), thread=True))
            else:
                bad.append(first + i)
        if bad:
            self._syncing = True
            try:
                points.remove(bad)
            finally:
                self._syncing = False
            self._n_points = len(points.data)

    def _check_point(self, coords: np.ndarray, what: str) -> bool:
        if self.session is None:
            show_warning(f"OAIMS: {what} ignored: no image is being annotated (choose an image layer first)")
            return False
        try:
            self.session.source.check_point(coords)
        except ValueError as err:
            show_warning(f"OAIMS: {what} ignored: {err}")
            return False
        return True

    def _on_shapes_data(self, event) -> None:
        if self._syncing or str(getattr(event, "action", "added")) not in ("added", "removed"):
            return
        shapes = event.source
        if len(shapes.data) <= self._n_shapes:
            self._n_shapes = len(shapes.data)
            return
        t0 = time.perf_counter()
        first = self._n_shapes
        self._n_shapes = len(shapes.data)
        bad = []
        for i in range(first, len(shapes.data)):
            vertices = np.asarray(shapes.data[i], float)
            kind = shapes.shape_type[i]
            if kind in BOX_TYPES:
                job = self._box_job(vertices)
            elif kind in SCRIBBLE_TYPES:
                job = None
                if all(self._check_point(v, "scribble") for v in vertices):
                    job = lambda v=vertices, p=self.positive: self._prompt("scribble", v, p)  # noqa: E731
            else:
                show_warning(f"OAIMS: a {kind} is not a prompt: draw rectangles (boxes) or paths/lines (scribbles)")
                job = None
            if job is None:
                bad.append(i)
            else:
                self._submit(_Job(kind, job, lambda r, t=t0: self._show_prompt(r, t), thread=True))
        if bad:
            self._syncing = True
            try:
                shapes.selected_data = set(bad)
                shapes.remove_selected()
            finally:
                self._syncing = False
            self._n_shapes = len(shapes.data)

    def _box_job(self, vertices: np.ndarray):
        if self.session is None:
            show_warning("OAIMS: box ignored: no image is being annotated (choose an image layer first)")
            return None
        pa = self.session.source.plane_axes
        other = [a for a in range(vertices.shape[1]) if a not in pa]
        plane = tuple(int(np.floor(vertices[0, a] + 0.5)) for a in other)
        lo, hi = vertices.min(0), vertices.max(0)
        box = (lo[pa[0]], lo[pa[1]], hi[pa[0]] + 1, hi[pa[1]] + 1)
        try:
            self.session.source.check_key(plane)
            h, w = self.session.source.plane_shape
            if box[2] <= 0 or box[3] <= 0 or box[0] >= h or box[1] >= w:
                raise ValueError(f"the box lies outside the image plane of shape {(h, w)}")
        except ValueError as err:
            show_warning(f"OAIMS: box ignored: {err}")
            return None
        return lambda: self._prompt("box", box, True, plane)

    def _prompt(self, kind: str, coords, positive: bool, plane=None):
        """Worker: apply one prompt; returns the changed plane region and its new mask values."""
        session = self.session
        if session is None:
            raise ValueError(f"{kind} ignored: no image is being annotated")
        if kind == "click":
            result = session.click(coords, positive)
        elif kind == "box":
            result = session.box(coords, plane=plane)
        else:
            result = session.scribble(coords, positive)
        return session, result

    def _show_prompt(self, done, t0: float) -> None:
        session, result = done
        if session is not self.session:
            return
        self._history.append("s")
        self._redo.clear()
        for change in result.changes:
            if change.region is not None:
                self._paint_preview(self._index(change.plane, change.region), change.values)
                self._preview_keys.add(change.plane)
        self.last_latency_ms = (time.perf_counter() - t0) * 1e3
        self._update_status()

    # ------------------------------------------------------------------------------------------
    # Layers <-> session
    # ------------------------------------------------------------------------------------------
    def _transforms(self) -> dict[str, Any]:
        """The image layer's transforms, so that the plugin's layers share its data coordinates."""
        return {k: getattr(self.image_layer, k) for k in ("scale", "translate", "rotate", "shear", "affine")}

    def _new_objects_layer(self) -> Labels:
        layer = Labels(np.zeros(self.session.spatial_shape, np.int32), name=LAYER_NAMES["objects"],
                       **self._transforms())
        self._classes.clear()
        self.layers["objects"] = layer
        self.viewer.add_layer(layer)
        return layer

    def _layer(self, kind: str) -> Layer:
        """One of the plugin's layers; a removed objects layer is replaced by a new empty one."""
        layer = self.layers.get(kind)
        if layer is None:
            if kind != "objects" or self.session is None:
                raise ValueError(f"the {kind} layer is missing: choose the image again")
            layer = self._new_objects_layer()
            self._connect(layer.events.name, self._on_layer_renamed, "layers")
        return layer

    def _index(self, key: tuple[int, ...], region=None) -> tuple:
        """Index into the spatial array for plane ``key`` (``region``: plane slices, default whole)."""
        pa = self.session.source.plane_axes
        ys, xs = region if region is not None else (slice(None), slice(None))
        it = iter(key)
        ndim = len(self.session.spatial_shape)
        return tuple(ys if a == pa[0] else xs if a == pa[1] else next(it) for a in range(ndim))

    def _paint_preview(self, index: tuple, values: np.ndarray) -> None:
        """Write ``values`` (a plane region) into the preview at ``index``; only the pixels that
        change are written and redrawn (napari's partial refresh), not the whole slice."""
        preview = self._layer("preview")
        changed = np.nonzero(np.asarray(preview.data[index]) != values)
        if changed[0].size == 0:
            return
        it = iter(changed)
        full = tuple(next(it) + (i.start or 0) if isinstance(i, slice) else np.full(changed[0].size, i)
                     for i in index)
        preview.data_setitem(full, values[changed].astype(preview.data.dtype))

    def _redraw_preview(self, clear_all: bool = False) -> None:
        """Rewrite the preview from the session (planes touched before are zeroed first)."""
        preview = self.layers.get("preview")
        if preview is None:
            return
        if clear_all:
            preview.data[...] = 0
        else:
            for key in self._preview_keys:
                preview.data[self._index(key)] = 0
        self._preview_keys.clear()
        if self.session is not None:
            for key, st in self.session.planes.items():
                if st.bbox is not None and st.mask is not None:
                    preview.data[self._index(key)] = st.mask
                    self._preview_keys.add(key)
        preview.refresh()

    def _sync_prompt_layers(self) -> None:
        """Redraw the clicks and boxes/scribbles layers from the session's current prompts."""
        points, shapes = self.layers.get("points"), self.layers.get("shapes")
        coords, polarity, shape_data, shape_types, shape_polarity = [], [], [], [], []
        session = self.session
        for key, st in (session.planes.items() if session is not None else ()):
            for p in st.prompts:
                if p.kind == "click":
                    coords.append(session.full_coords(key, p.points[0]))
                    polarity.append(p.positive)
                elif p.kind == "box":
                    y0, x0, y1, x1 = p.box
                    corners = [(y0, x0), (y0, x1 - 1), (y1 - 1, x1 - 1), (y1 - 1, x0)]
                    shape_data.append(np.array([session.full_coords(key, c) for c in corners], float))
                    shape_types.append("rectangle")
                    shape_polarity.append(True)
                elif p.kind == "scribble":
                    path = p.points[:: max(1, len(p.points) // 64)]
                    if len(path) < 2:
                        path = p.points[[0, -1]]
                    shape_data.append(np.array([session.full_coords(key, c) for c in path], float))
                    shape_types.append("path")
                    shape_polarity.append(p.positive)
        self._syncing = True
        try:
            if points is not None:
                ndim = points.ndim
                points.data = np.array(coords, float).reshape(-1, ndim)
                points.features = {"positive": np.array(polarity, bool)}
                if coords:
                    points.face_color = [POSITIVE_COLOR if p else NEGATIVE_COLOR for p in polarity]
                self._n_points = len(points.data)
                self.set_positive(self.positive)
            if shapes is not None:
                shapes.data = []
                if shape_data:
                    shapes.add(shape_data, shape_type=shape_types,
                               edge_color=[POSITIVE_COLOR if p else NEGATIVE_COLOR for p in shape_polarity])
                self._n_shapes = len(shapes.data)
        finally:
            self._syncing = False

    # ------------------------------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------------------------------
    def _need_session(self, what: str) -> bool:
        if self.session is None:
            show_warning(f"OAIMS: nothing to {what}: no image is being annotated")
            return False
        return True

    def undo(self) -> None:
        """Undo the last prompt or clear; right after an accept, take the accepted object back."""
        self._step_history(undo=True)

    def redo(self) -> None:
        self._step_history(undo=False)

    def _step_history(self, undo: bool) -> None:
        """Move one entry between the undo and redo stacks and apply it (session step or object)."""
        what = "undo" if undo else "redo"

        def work():  # the stacks are looked up when the job runs: other jobs may replace them
            source, target = (self._history, self._redo) if undo else (self._redo, self._history)
            if not self._need_session(what) or not source:
                return
            entry = source.pop()
            if entry == "s":
                self.session.undo() if undo else self.session.redo()
                self._redraw_preview()
                self._sync_prompt_layers()
            else:
                self._apply_object(entry, undo=undo)
                self._save_labels(entry, undone=undo)
            target.append(entry)

        self._submit(_Job(what, work))

    def clear(self) -> None:
        """Remove all prompts and the mask of the current object (undoable)."""
        def work():
            if not self._need_session("clear"):
                return
            if any(st.prompts or st.bbox for st in self.session.planes.values()):
                self.session.clear()
                self._history.append("s")
                self._redo.clear()
            self._redraw_preview()
            self._sync_prompt_layers()

        self._submit(_Job("clear", work))

    def accept(self) -> None:
        """Commit the preview into the objects layer (new id, chosen class), then learn from it."""
        self._submit(_Job("accept", self._accept))

    def next_object(self) -> None:
        """Accept the current object if it has a mask, else drop its prompts; then wait for a new click."""
        def work():
            if not self._need_session("finish"):
                return
            if any(st.bbox is not None for st in self.session.planes.values()):
                self._accept()
            elif any(st.prompts for st in self.session.planes.values()):
                self.session.clear()
                self._history.append("s")
                self._redraw_preview()
                self._sync_prompt_layers()
            points = self.layers.get("points")
            if points is not None and points in self.viewer.layers:
                self.viewer.layers.selection.active = points
                points.mode = "add"

        self._submit(_Job("next object", work))

    def _accept(self) -> None:
        if not self._need_session("accept"):
            return
        session = self.session
        planes = {k: (st.bbox, st.mask) for k, st in session.planes.items() if st.bbox is not None}
        if not planes:
            show_warning("OAIMS: nothing to accept: the current object is empty (click inside an object first)")
            return
        objects = self._layer("objects")
        object_id = session.object_id
        cls = self._current_class()
        # an attached store paints the object with its class (autosave)
        mask = session.accept(defer_update=True, class_id=cls[0], class_name=cls[1])
        records = []
        for key, (bb, plane_mask) in planes.items():
            region = (slice(bb[0], bb[2]), slice(bb[1], bb[3]))
            index = self._index(key, region)
            before = np.asarray(objects.data[index]).copy()
            after = before.copy()
            after[plane_mask[region]] = object_id  # the new object wins over earlier ones (as in the store)
            records.append((index, before, after))
        entry = ("accept", object_id, records, cls)
        self._history = [h for h in self._history if h != "s"]
        self._apply_object(entry, undo=False)
        self._history.append(entry)
        self._redo.clear()
        self._redraw_preview()
        self._sync_prompt_layers()
        self._learn(session)

    def _current_class(self) -> tuple[int, str]:
        name = self.class_choice.currentText().strip() or "object"
        if self.class_choice.findText(name) < 0:
            self.class_choice.addItem(name)
        return self.class_choice.findText(name) + 1, name

    def _apply_object(self, entry, undo: bool) -> None:
        """Write (or take back) an accepted object in the objects layer."""
        _, object_id, records, cls = entry
        objects = self.layers.get("objects")
        if objects is None:
            raise ValueError("the objects layer was removed: the object cannot be changed any more")
        for index, before, after in records:
            objects.data[index] = before if undo else after
        if undo:
            self._classes.pop(object_id, None)
            if self.session is not None:  # its size no longer counts for object size "auto"
                self._withdrawn[object_id] = self.session.withdraw(object_id)
        else:
            self._classes[object_id] = cls
            if self.session is not None and object_id in self._withdrawn:
                self.session.reinstate(object_id, self._withdrawn.pop(object_id))
        self._apply_classes()
        objects.refresh()
        self._update_status()

    def _apply_classes(self) -> None:
        """Show the objects' classes as features of the objects layer."""
        objects = self.layers["objects"]
        ids = sorted(self._classes)
        objects.features = {"index": np.array(ids, int), "class_id": [self._classes[i][0] for i in ids],
                            "class_name": [self._classes[i][1] for i in ids]}
        objects.metadata["oaims_classes"] = {i: self._classes[i][1] for i in ids}

    def _learn(self, session: "Session") -> None:
        """Queue the Post-Interaction update in a worker."""
        mode = self.engine.adaptation if self.engine is not None else "none"
        self._submit(_Job("learning from the object", session.run_pending_updates, lambda _: self._update_status(),
                          thread=True, progress="Learning from the object" if mode != "none" else None))

    def _number_objects(self) -> None:
        """Continue the object ids of the objects layer in the (new) session."""
        objects = self.layers.get("objects")
        if self.session is not None and objects is not None:
            top = int(np.max(objects.data)) if objects.data.size else 0
            self.session.object_id = max(self.session.object_id, top + 1)

    # ------------------------------------------------------------------------------------------
    # Session store (autosave)
    # ------------------------------------------------------------------------------------------
    def save_session(self, path: str | Path) -> None:
        """Save image, objects (with classes), event log and model to a ``.oaims.zarr`` folder; from
        then on every event is saved as it happens (until the image or the displayed axes change)."""
        if not self._need_session("save"):
            return
        session, path = self.session, Path(path)
        objects = self.layers.get("objects")
        labels = np.array(objects.data) if objects is not None else None
        classes = dict(self._classes)
        source = getattr(self.image_layer, "source", None)
        image_path = getattr(source, "path", None)
        image_path = image_path if image_path and Path(image_path).exists() else None

        def work():
            from napari_oaims.store.session_store import SessionStore

            store = SessionStore.create(path, engine=session.engine, session=session, image_path=image_path,
                                        overwrite=True)  # attaches: autosave from now on
            for object_id in (np.unique(labels) if labels is not None else ()):
                if object_id:
                    cls = classes.get(int(object_id), DEFAULT_CLASS)
                    store.commit_object(int(object_id), labels == object_id, class_id=cls[0], class_name=cls[1])
            return store

        def done(store):
            if session is not self.session:
                store.close()
                return
            self._stop_autosave()
            self._attach_store(store)
            show_info(f"OAIMS: session saved to {path}; further work is saved automatically")

        self._submit(_Job("save session", work, done, thread=True, progress="Saving the session"))

    def _save_labels(self, entry, undone: bool) -> None:
        """After an accept was undone or redone: bring the autosaved objects up to date."""
        store, object_id, cls = self.store, entry[1], entry[3]
        if store is None:
            return
        labels = np.array(self.layers["objects"].data)

        def work():
            if undone:
                store.write_labels(labels)
            else:
                store.commit_object(object_id, labels == object_id, class_id=cls[0], class_name=cls[1])

        self._submit(_Job("autosave", work, thread=True))

    def resume_session(self, path: str | Path) -> None:
        """Continue a saved ``.oaims.zarr`` session: its image, objects (with classes) and adapted
        model come back, the log goes on from where it stopped, and autosave continues into it."""
        path = Path(str(path).rstrip("/\\"))
        engine = self.engine

        def work():
            from napari_oaims.store.session_store import SessionStore

            store = SessionStore.open(path)
            try:
                state = store.resume(engine=engine)
                labels = np.array(state.labels[...], dtype=np.int32)
            except BaseException:
                store.close()
                raise
            return state, labels

        def done(result):
            state, labels = result
            if self._closed:
                state.store.close()
                return
            try:
                adopt(state, labels)
            except BaseException:
                state.store.close()
                raise

        def adopt(state, labels):
            from napari_oaims.store.session_store import SUFFIX

            self._stop_autosave()
            params = state.store.session_params()
            name = state.store.path.name[: -len(SUFFIX)]
            kwargs = {"rgb": True} if params["rgb"] else {}
            ndim = len(state.session.spatial_shape)
            if ndim > 2:  # show the plane the session segments
                pa = params["plane_axes"]
                self.viewer.dims.order = tuple([a for a in range(ndim) if a not in pa] + list(pa))
            image = self.viewer.add_image(state.image, name=name, **kwargs)
            if params["channel_axis"] is not None and not params["rgb"]:
                show_info("OAIMS: the session's image has channels; it is shown as one layer")
            self._detach_image()
            self.layers["objects"] = None
            if self.engine is not state.engine:  # the widget had no model yet: use the session's
                self._swap_engine(state.engine)
            self._open_image(image, session=state.session)
            objects = self.layers["objects"]
            objects.data = labels
            self._classes = {int(o["id"]): (int(o["class_id"]), str(o["class_name"])) for o in state.objects
                             if o["area"] > 0}
            for _, cls_name in sorted(self._classes.values()):
                if self.class_choice.findText(cls_name) < 0:
                    self.class_choice.addItem(cls_name)
            self._apply_classes()
            self._number_objects()
            self._attach_store(state.store)
            self._update_status()
            n = len(self._classes)
            show_info(f"OAIMS: resumed {path.name}: {n} object{'s' * (n != 1)}, {state.engine.updates} model "
                      "updates; further work is saved automatically")

        self._submit(_Job("resume session", work, done, thread=True, progress="Resuming the session"))

    def _ask_resume_session(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Resume OAIMS session (a .oaims.zarr folder)")
        if path:
            self.resume_session(path)

    def _attach_store(self, store) -> None:
        """Autosave into ``store`` from now on; its failures become notifications."""
        self.store = store
        store.on_error = self._autosave_failed
        self.store_label.setText(f"autosave: {store.path.name}")

    def _autosave_failed(self, err: BaseException | None) -> None:
        """Called by the store (from any thread) when autosave fails or works again."""
        self._autosave_state.emit(err)  # queued to the GUI thread

    def _show_autosave_state(self, err: BaseException | None) -> None:
        store = self.store
        if store is None:
            return
        if err is not None:
            self.store_label.setText(f"autosave FAILING: {store.path.name} (retried at each event)")
            show_warning(f"OAIMS: autosave to {store.path.name} failed ({err}). Your work is kept in memory and "
                         "saving is retried at every event: free some space or save the session elsewhere.")
        else:
            self.store_label.setText(f"autosave: {store.path.name}")
            show_info(f"OAIMS: autosave to {store.path.name} works again; nothing was lost")

    def _stop_autosave(self, reason: str | None = None) -> None:
        if self.store is None:
            return
        store, self.store = self.store, None
        self.store_label.setText("not saved")
        store.close()
        if reason:
            show_warning(f"OAIMS: autosave to {store.path.name} stopped ({reason}); save the session again to "
                         "go on saving")

    def _ask_save_session(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save OAIMS session", "session.oaims.zarr",
                                              "OAIMS session (*.oaims.zarr)")
        if path:
            if not path.endswith(".oaims.zarr"):
                path += ".oaims.zarr"
            self.save_session(path)

    # ------------------------------------------------------------------------------------------
    # Key bindings and life cycle
    # ------------------------------------------------------------------------------------------
    def _actions(self) -> dict[str, Callable[[], None]]:
        return {"toggle": self.toggle_positive, "accept": self.accept, "next": self.next_object, "undo": self.undo,
                "redo": self.redo, "clear": self.clear}

    def _bind_keys(self) -> None:
        for name, action in self._actions().items():
            self.viewer.bind_key(KEYS[name], lambda viewer, f=action: f(), overwrite=True)

    def _connect(self, emitter, callback: Callable, group: str = "viewer") -> None:
        emitter.connect(callback)
        self._connections[group].append((emitter, callback))

    def _disconnect(self, group: str) -> None:
        for emitter, callback in self._connections[group]:
            emitter.disconnect(callback)
        self._connections[group].clear()

    def detach(self) -> None:
        """Disconnect from the viewer (called when the widget closes); layers stay as they are."""
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self._stop_autosave()
        self._detach_image()
        for group in self._connections:
            self._disconnect(group)
        for name in KEYS.values():
            self.viewer.bind_key(name, None)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.detach()
        super().closeEvent(event)
