"""The OAIMS annotator: a napari dock widget around :class:`napari_oaims.Session`.

It translates between napari layers and events and session calls, and composes:

* :mod:`.layers`: the four layers it adds for the image (clicks, boxes & scribbles, preview,
  objects), and :mod:`.prompt_input`: new points and shapes in them become prompts;
* :mod:`.editing`: prompts, undo/redo, clear, accept, with one undo history; :mod:`.objects`:
  accepted objects in the objects layer;
* :mod:`.jobs`: the one ordered queue every call into the engine goes through (worker threads);
* :mod:`.stack`: propagation through a stack (a cancellable worker job whose slices appear as
  they are made, :mod:`.propagation_view`) and the next-slice suggestion;
* :mod:`.keys`: the key bindings, on the plugin's own layers; :mod:`.viewer_events`: what
  happens when layers or the displayed axes change under it (an image opened while none is
  annotated is annotated);
* the panels :mod:`.session_panel`, :mod:`.annotate_panel`, :mod:`.model_panel`, each in a
  :mod:`.section` that folds away, in a scroll area, and the :mod:`.status` line, which says
  first what to do when clicks cannot work yet (no image, the 3D view).

The widget is the composition root: it builds the parts and gives each, in its constructor, exactly
the objects and callables it may use (:class:`~.current.Current`, what is annotated now, is written
by the widget only). No part sees the widget. Scripts reach the actions through the parts:
``widget.editor.accept()``, ``widget.stack.propagate()``, ``widget.model_panel.set_device("cpu")``,
``widget.session_panel.save_session(path)``; ``widget.jobs.busy`` while anything runs or waits.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QSize, Qt, QTimer
from qtpy.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

from napari_oaims.core.source import looks_like_channels
from napari_oaims.plugin.reader import prefer_session_reader
from napari_oaims.plugin.widget.annotate_panel import AnnotatePanel
from napari_oaims.plugin.widget.current import Current
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
        # The composition root: each part gets exactly what it may use, in its constructor.
        self.viewer = napari_viewer
        self.current = Current()
        current = self.current
        self.jobs = JobQueue(self.update_status)
        self.keys = LayerKeys(self._actions())
        self.layers = PluginLayers(
            napari_viewer,
            self.keys,
            on_renamed=lambda kind, layer: show_info(
                f"OAIMS: the {kind} layer is now called '{layer.name}'; the annotator keeps using it"
            ),
        )
        self.objects = AcceptedObjects()
        self.annotate_panel = AnnotatePanel(self._actions(), self.set_positive, METHOD_CHOICES)
        self.session_panel = SessionPanel(
            napari_viewer,
            current,
            self.layers,
            self.objects,
            self.jobs,
            set_image=self.set_image,
            open_session=self.open_session,
            number_objects=self.number_objects,
            add_classes=self.annotate_panel.add_classes,
            update_status=self.update_status,
        )
        self.editor = Editor(
            current,
            self.layers,
            self.objects,
            self.jobs,
            object_class=self.annotate_panel.current_class,
            overwrite=self.annotate_panel.overwrite_check.isChecked,
            object_changed=self.session_panel.object_changed,
            update_status=self.update_status,
        )
        self.stack = StackTools(
            napari_viewer.dims,
            current,
            self.layers,
            self.objects,
            self.jobs,
            self.editor.history,
            self.annotate_panel,
            update_status=self.update_status,
            timer=QTimer(self),
        )
        self.model_panel = ModelPanel(
            current,
            self.jobs,
            swap_engine=self.swap_engine,
            update_status=self.update_status,
            device=device,
            adaptation=engine.adaptation if engine is not None else adaptation,
            weights=weights,
        )
        self.status = StatusLine(
            napari_viewer,
            current,
            self.jobs,
            latency=lambda: self.editor.last_latency_ms,
            model_choice=lambda: (self.model_panel.adaptation, self.model_panel.device),
        )
        self.input = PromptInput(
            self.layers,
            lambda: current.session,
            lambda: current.positive,
            self.editor.prompt,
            lambda: napari_viewer.dims.ndisplay == 3,
        )
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
        self.viewer_events = ViewerEvents(
            napari_viewer,
            current,
            self.layers,
            self.jobs,
            refresh_images=self.session_panel.refresh_images,
            set_image=self.set_image,
            open_image=self.open_image,
            detach_image=self.detach_image,
            restart_session=self.restart_session,
            plane_axes=self.plane_axes,
            forget_objects=self.editor.forget_objects,
            update_status=self.update_status,
            timer=QTimer(self),
        )
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

    def _actions(self) -> dict[str, Callable[[], None]]:
        """The actions of the keys and buttons (looked up when used: the parts are built after them)."""
        return {
            "toggle": self.toggle_positive,
            "accept": lambda: self.editor.accept(),
            "next": lambda: self.editor.next_object(),
            "undo": lambda: self.editor.undo(),
            "redo": lambda: self.editor.redo(),
            "clear": lambda: self.editor.clear(),
            "propagate": lambda: self.stack.propagate(),
            "propagate_all": lambda: self.stack.propagate_all(),
            "suggest": lambda: self.stack.suggest(),
            "cancel": lambda: self.stack.cancel(),
        }

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

    # -- what it works on (see :class:`~napari_oaims.plugin.widget.current.Current`) -----------
    @property
    def session(self) -> "Session | None":
        """The session of the annotated image (None: no image is annotated)."""
        return self.current.session

    @property
    def engine(self) -> "Engine | None":
        """The engine (None while the model loads)."""
        return self.current.engine

    @property
    def image_layer(self) -> Image | None:
        """The annotated image layer."""
        return self.current.image_layer

    @property
    def positive(self) -> bool:
        """Polarity of the next clicks and scribbles."""
        return self.current.positive

    def update_status(self) -> None:
        """Show the current state in the status line and the stack buttons."""
        self.status.show_state()
        self.stack.refresh()

    def set_positive(self, positive: bool) -> None:
        """Polarity of the next clicks and scribbles (green positive, red negative)."""
        self.current.positive = bool(positive)
        self.annotate_panel.show_positive(self.positive)
        self.layers.set_polarity(self.positive)

    def toggle_positive(self) -> None:
        self.set_positive(not self.positive)

    # -- the engine, the image and its session -------------------------------------------------
    def swap_engine(self, engine: "Engine") -> None:
        """Use ``engine`` from now on (the session too)."""
        self.current.engine = engine
        self.model_panel.apply_choices(engine)
        if self.session is not None:
            self.session.engine = engine
        self.update_status()

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
            self.current.image_layer = layer
            self.viewer_events.watch_image(layer)
        self.editor.history.clear()
        self.objects.reset()
        self.session_panel.stop_autosave(f"annotation of '{layer.name}' restarted")
        self.current.session = session
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
        self.current.image_layer = None
        self.current.session = None
        self.update_status()

    def restart_session(self, reason: str) -> None:
        """A new session on the same image (e.g. other plane axes); the current object is dropped."""
        old = self.session
        had_prompts = old is not None and any(old.prompts(key) for key in self.layers.planes)
        self.current.session = None
        self.current.session = self._new_session(self.image_layer)
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
