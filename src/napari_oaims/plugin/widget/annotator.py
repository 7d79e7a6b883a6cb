"""The OAIMS annotator: a napari dock widget around :class:`napari_oaims.Session`.

It translates between napari layers and events and session calls, and composes:

* :mod:`.layers`: the four layers it adds for the image (clicks, boxes & scribbles, preview,
  objects), and :mod:`.prompt_input`: new points and shapes in them become prompts;
* :mod:`.editing`: prompts, undo/redo, clear, accept, with one undo history; :mod:`.objects`:
  accepted objects in the objects layer;
* :mod:`.jobs`: the one ordered queue every call into the engine goes through (worker threads);
* :mod:`.stack`: propagation through a stack (a cancellable worker job whose slices appear as
  they are made) and the next-slice suggestion;
* :mod:`.keys`: the key bindings, on the plugin's own layers; :mod:`.viewer_events`: what
  happens when layers or the displayed axes change under it (an image opened while none is
  annotated is annotated);
* the panels :mod:`.session_panel`, :mod:`.annotate_panel`, :mod:`.model_panel`, each in a
  :mod:`.section` that folds away, in a scroll area, and the :mod:`.status` line, which says
  first what to do when clicks cannot work yet (no image, the 3D view).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

from napari_oaims.core.source import looks_like_channels
from napari_oaims.plugin.reader import prefer_session_reader
from napari_oaims.plugin.widget.annotate_panel import AnnotatePanel
from napari_oaims.plugin.widget.editing import Editor
from napari_oaims.plugin.widget.jobs import Job, JobQueue
from napari_oaims.plugin.widget.keys import KEYS, LayerKeys
from napari_oaims.plugin.widget.layers import PluginLayers
from napari_oaims.plugin.widget.model_panel import ModelPanel
from napari_oaims.plugin.widget.objects import AcceptedObjects
from napari_oaims.plugin.widget.prompt_input import PromptInput
from napari_oaims.plugin.widget.section import Section
from napari_oaims.plugin.widget.session_panel import SessionPanel
from napari_oaims.plugin.widget.stack import METHOD_CHOICES, StackTools
from napari_oaims.plugin.widget.status import StatusLine
from napari_oaims.plugin.widget.viewer_events import ViewerEvents

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from napari_oaims.engine import Engine
    from napari_oaims.session import Session


def unwrap(layer):
    """The layer itself, not napari's proxy of it (a plugin's viewer hands out proxies, and the
    annotator compares layers by identity)."""
    return getattr(layer, "__wrapped__", layer)


class AnnotatorWidget(QWidget):
    """Click, box and scribble annotation with a model that learns from the user (see module doc).

    With no ``engine``, the model (``device``, ``adaptation``, ``weights``) loads in a worker;
    ``adaptation`` None is :data:`~napari_oaims.plugin.widget.model_panel.DEFAULT_ADAPTATION`
    (learning on, guarded).
    """

    KEYS = KEYS
    #: Width the dock asks for (px); the panels fit down to about 250.
    WIDTH = 290

    def __init__(
        self,
        napari_viewer: "napari.viewer.Viewer",
        engine: "Engine | None" = None,
        device: str = "auto",
        adaptation: str | None = None,
        weights: str | Path | None = None,
    ):
        super().__init__()
        self.viewer = napari_viewer
        self.engine: Engine | None = None
        self.session: Session | None = None
        self.image_layer: Image | None = None
        self.positive = True
        actions = {
            "toggle": self.toggle_positive,
            "accept": self.accept,
            "next": self.next_object,
            "undo": self.undo,
            "redo": self.redo,
            "clear": self.clear,
            "propagate": self.propagate,
            "propagate_all": self.propagate_all,
            "suggest": self.suggest_slice,
            "cancel": self.cancel_propagation,
        }
        self.keys = LayerKeys(actions)
        self.layers = PluginLayers(
            napari_viewer,
            self.keys,
            on_renamed=lambda kind, layer: show_info(
                f"OAIMS: the {kind} layer is now called '{layer.name}'; the annotator keeps using it"
            ),
        )
        self.objects = AcceptedObjects()
        self.editor = Editor(self)
        self.stack = StackTools(self)
        self.status = StatusLine()
        self.jobs = JobQueue(self.update_status)
        self.input = PromptInput(
            self.layers,
            lambda: self.session,
            lambda: self.positive,
            self.editor.prompt,
            lambda: self.viewer.dims.ndisplay == 3,
        )
        self.session_panel = SessionPanel(self)
        self.annotate_panel = AnnotatePanel(actions, self.set_positive, METHOD_CHOICES)
        self.model_panel = ModelPanel(self, device, engine.adaptation if engine is not None else adaptation, weights)
        self.sections = {
            "session": Section(
                "Image and session",
                self.session_panel,
                tooltip="The image to annotate; saving and resuming the session",
            ),
            "annotate": Section("Annotate", self.annotate_panel, tooltip="Click polarity, class and actions"),
            "model": Section(
                "Model",
                self.model_panel,
                expanded=False,  # set once, rarely changed: folded, so the dock fits napari's default window
                tooltip="Device, online adaptation, object size and weights",
            ),
        }
        self._build_layout()
        self.viewer_events = ViewerEvents(self)
        self.session_panel.refresh_images(napari_viewer.layers, None)
        prefer_session_reader()
        if engine is None:
            self.model_panel.load_engine()
        else:
            self.model_panel.engine_ready(engine)
        active = unwrap(napari_viewer.layers.selection.active)
        first = (
            active
            if isinstance(active, Image)
            else next((unwrap(layer) for layer in napari_viewer.layers if isinstance(layer, Image)), None)
        )
        if first is not None:
            self.set_image(first)
        self.update_status()

    def _build_layout(self) -> None:
        """The sections in a scroll area, the status line pinned below it (always in view): the
        dock stays narrow and short."""
        inner = QWidget()
        column = QVBoxLayout(inner)
        column.setContentsMargins(2, 2, 2, 2)
        for section in self.sections.values():
            column.addWidget(section)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll, 1)
        status = QVBoxLayout()
        status.setContentsMargins(4, 2, 4, 4)
        status.addWidget(self.status)
        layout.addLayout(status)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(self.WIDTH, super().sizeHint().height())

    # -- state ---------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while a job runs or waits (tests and scripts wait for ``not busy``)."""
        return self.jobs.busy

    @property
    def last_latency_ms(self) -> float | None:
        """Time from the last prompt to its preview (ms)."""
        return self.editor.last_latency_ms

    @property
    def store(self):
        """The session store autosaving this session (None until the session is saved)."""
        return self.session_panel.store

    def update_status(self) -> None:
        self.status.show_state(self)
        self.stack.refresh()

    # -- actions (also on the keys) ------------------------------------------------------------
    def set_positive(self, positive: bool) -> None:
        """Polarity of the next clicks and scribbles (green positive, red negative)."""
        self.positive = bool(positive)
        self.annotate_panel.show_positive(self.positive)
        self.layers.set_polarity(self.positive)

    def toggle_positive(self) -> None:
        self.set_positive(not self.positive)

    def accept(self) -> None:
        """Commit the preview into the objects layer (new id, chosen class), then learn from it."""
        self.editor.accept()

    def next_object(self) -> None:
        """Accept the current object if it has a mask, else drop its prompts; then wait for a new click."""
        self.editor.next_object()

    def undo(self) -> None:
        """Undo the last prompt or clear; right after an accept, take the accepted object back."""
        self.editor.step(undo=True)

    def redo(self) -> None:
        self.editor.step(undo=False)

    def clear(self) -> None:
        """Remove all prompts and the mask of the current object (undoable)."""
        self.editor.clear()

    # -- stacks --------------------------------------------------------------------------------
    def propagate(self, method: str | None = None) -> None:
        """Carry the object through the stack along the axis of the viewer's sliders (see
        :mod:`.stack`), in a worker; ``method``: ``ema``, ``frozen``, ``registration`` or ``copy``
        (default: the one chosen in the panel). One undo step; the result stays in the preview
        until accepted."""
        self.stack.propagate(method)

    def propagate_all(self, method: str | None = None) -> None:
        """Carry every object of the slice on screen through the stack at once (see :mod:`.stack`):
        the objects layer's labels on that slice are the seeds, the objects elsewhere barriers;
        the results land as new accepted objects, one undo step for all."""
        self.stack.propagate_all(method)

    def cancel_propagation(self) -> None:
        """Stop the running propagation (nothing changes)."""
        self.stack.cancel()

    def suggest_slice(self) -> None:
        """Move the viewer to the propagated slice most worth checking."""
        self.stack.suggest()

    # -- model and session files ---------------------------------------------------------------
    def set_device(self, name: str) -> None:
        """Move the model (with what it learnt so far) to ``auto``, ``cpu``, ``cuda`` or ``mps``."""
        self.model_panel.set_device(name)

    def set_adaptation(self, name: str) -> None:
        """Switch online adaptation (``none``, ``mi``, ``pi``, ``oaims``); weights learnt so far are kept."""
        self.model_panel.set_adaptation(name)

    def set_object_size(self, size: "int | str | None") -> None:
        """Objects about ``size`` px across (sets the first click's window), ``"auto"`` (from the
        objects accepted so far) or None (the weights' own first window)."""
        self.model_panel.set_object_size(size)

    def reset_model(self) -> None:
        """Back to the pretrained weights (drops what was learnt online)."""
        self.model_panel.reset_model()

    def load_weights(self, path: str | Path) -> None:
        """Load adapted weights written by :meth:`save_weights` (``.safetensors`` + ``.json``)."""
        self.model_panel.load_weights(path)

    def save_weights(self, path: str | Path) -> None:
        """Write the current (adapted) weights to ``path`` (``.safetensors`` + ``.json``)."""
        self.model_panel.save_weights(path)

    def save_session(self, path: str | Path) -> None:
        """Save to a ``.oaims.zarr`` folder; from then on every event is saved as it happens."""
        self.session_panel.save_session(path)

    def resume_session(self, path: str | Path) -> None:
        """Go on with a saved ``.oaims.zarr`` session: image, objects, classes, adapted model, log."""
        self.session_panel.resume_session(path)

    def swap_engine(self, engine: "Engine") -> None:
        """Use ``engine`` from now on (the session too)."""
        self.engine = engine
        self.model_panel.apply_object_size(engine)
        if self.session is not None:
            self.session.engine = engine
        self.update_status()

    # -- the image and its session -------------------------------------------------------------
    def set_image(self, layer: Image | str | None, only_if_none: bool = False) -> None:
        """Annotate ``layer`` (an image layer or its name): creates the session and the plugin's layers.

        ``only_if_none``: only if no image is being annotated when it is its turn (a newly opened image).
        """
        if isinstance(layer, str):
            layer = next((candidate for candidate in self.viewer.layers if candidate.name == layer), None)
        layer = unwrap(layer)
        if layer is None:
            show_warning("OAIMS: no image layer chosen: open an image, then choose it under 'image'")
        elif not isinstance(layer, Image):
            show_error(f"OAIMS: '{layer.name}' is a {type(layer).__name__} layer; choose an image layer")
        else:

            def work():  # checked when it runs: jobs before it may have opened an image
                if only_if_none and self.image_layer is not None:
                    return
                if layer in self.viewer.layers and (layer is not self.image_layer or self.session is None):
                    self.open_image(layer)

            self.jobs.submit(Job("open image", work))

    def open_session(self, image: Image, session: "Session", engine: "Engine") -> None:
        """Annotate ``image`` with a resumed ``session`` (made by ``engine``)."""
        self.detach_image()
        self.layers.detach_objects()
        if engine is not self.engine:
            self.swap_engine(engine)
        self.open_image(image, session=session)

    def number_objects(self) -> None:
        """Continue the object ids of the objects layer in the session."""
        objects = self.layers["objects"]
        if self.session is not None and objects is not None and objects.data.size:
            self.session.object_id = max(self.session.object_id, int(np.max(objects.data)) + 1)

    def plane_axes(self, ndim: int) -> tuple[int, int]:
        """The image axes shown on screen (the last two displayed viewer axes), in ascending order."""
        offset = self.viewer.dims.ndim - ndim
        axes = [a - offset for a in self.viewer.dims.displayed[-2:]]
        if len(axes) != 2 or min(axes) < 0:
            return (ndim - 2, ndim - 1)
        return tuple(sorted(axes))  # type: ignore[return-value]

    def _new_session(self, layer: Image) -> "Session":
        data = layer.data[0] if layer.multiscale else layer.data
        shape = tuple(data.shape)
        if not layer.rgb and looks_like_channels(shape):
            raise ValueError(
                f"its last axis looks like {shape[-1]} channels, but napari shows it as a spatial axis (planes of "
                f"{shape[-2]} x {shape[-1]} pixels). Add it with the channels split, viewer.add_image(data, "
                "channel_axis=-1), and annotate one channel layer (or with rgb=True for RGB)"
            )
        session = self.engine.session(data, plane_axes=self.plane_axes(layer.ndim), rgb=bool(layer.rgb))
        if layer.rgb and np.dtype(data.dtype) != np.uint8 and layer is not self.image_layer:
            show_info(
                f"OAIMS: '{layer.name}' {shape} ({np.dtype(data.dtype).name}) is read as RGB"
                f"{'A' if shape[-1] == 4 else ''}, as napari shows it (the model sees its luminance). For "
                f"{shape[-1]} channels, add it with viewer.add_image(data, channel_axis=-1)"
            )
        return session

    def open_image(self, layer: Image, session: "Session | None" = None) -> None:
        """Annotate ``layer`` now, with a new session (or the given one)."""
        layer = unwrap(layer)
        if self.engine is None:
            raise ValueError("the model is not loaded (see the previous error)")
        try:
            session = session or self._new_session(layer)
        except (ValueError, TypeError) as err:
            if layer is self.image_layer:  # its data changed into something unusable
                self.detach_image()
            self.session_panel.refresh_images(self.viewer.layers, self.image_layer)
            raise ValueError(f"cannot annotate '{layer.name}': {err}") from None
        if layer is not self.image_layer:
            self.detach_image()
            self.layers.detach_objects()  # the objects of another image stay in the viewer, detached
            self.image_layer = layer
            self.viewer_events.watch_image(layer)
        self.editor.history.clear()
        self.objects.reset()
        self.session_panel.stop_autosave(f"annotation of '{layer.name}' restarted")
        self.session = session
        self.layers.create(layer, session.spatial_shape, self.positive)
        self.input.watch(self.layers["points"], self.layers["shapes"])
        self.objects.use(self.layers["objects"])
        self.number_objects()
        self.session_panel.refresh_images(self.viewer.layers, self.image_layer)
        self.update_status()

    def detach_image(self) -> None:
        """Stop annotating the current image (the layers stay in the viewer)."""
        self.viewer_events.watch_image(None)
        self.session_panel.stop_autosave()  # a deliberate switch: the session on disk is complete
        self.image_layer = None
        self.session = None
        self.update_status()

    def restart_session(self, reason: str) -> None:
        """A new session on the same image (e.g. other plane axes); the current object is dropped."""
        old = self.session
        had_prompts = old is not None and any(old.prompts(key) for key in self.layers.planes)
        self.session = None
        self.session = self._new_session(self.image_layer)
        if old is not None and old.source.plane_axes == self.session.source.plane_axes:
            # same objects seen the same way: their sizes still count for object size "auto"
            self.session.accepted_diameters = dict(old.accepted_diameters)
        self.editor.forget_session_steps()
        self.objects.reset()
        self.number_objects()
        self.session_panel.stop_autosave(reason)
        self.layers.clear_object()
        self.layers.sync_prompts(self.session, self.positive)
        if had_prompts:
            show_info(f"OAIMS: {reason}: the object in progress was discarded")

    # -- life cycle ----------------------------------------------------------------------------
    def detach(self) -> None:
        """Disconnect from the viewer (called when the widget closes); layers stay, their keys go."""
        if self.jobs.closed:
            return
        self.stack.close()
        self.jobs.close()
        self.session_panel.stop_autosave()
        self.detach_image()
        self.viewer_events.close()
        self.input.unwatch()
        self.layers.close()
        self.keys.unbind_all()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.detach()
        super().closeEvent(event)
