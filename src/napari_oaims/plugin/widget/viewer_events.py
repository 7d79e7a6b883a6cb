"""What the annotator does when the viewer changes under it.

* an image layer is added or removed: the image choice follows; an image added while none is
  annotated is annotated (one read from a saved session gets a hint to resume it instead); the
  annotated image removed: annotation stops; a working layer removed: it is added back; the
  objects layer removed: it is left alone and the next accepted object starts a new one;
* the displayed axes change: a new session on the plane now shown (objects are kept); the 3D
  view: a notification (and the status line) says that clicks there are not prompts;
* the image's data is replaced: a new session on it (new layers if its shape changed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from napari.layers import Image, Layer
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QTimer

from napari_oaims.plugin.widget.jobs import Job
from napari_oaims.plugin.widget.status import VIEW_3D

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.plugin.widget.annotator import AnnotatorWidget


def spatial_shape(layer: Image) -> tuple[int, ...]:
    data = layer.data[0] if layer.multiscale else layer.data
    return tuple(data.shape[:-1] if layer.rgb else data.shape)


class ViewerEvents:
    """Connects an :class:`AnnotatorWidget` to its viewer's layer and dims events."""

    def __init__(self, annotator: "AnnotatorWidget"):
        self._w = annotator
        viewer = annotator.viewer
        self._removed: list[Layer] = []
        self._removal_timer = QTimer(annotator)
        self._removal_timer.setSingleShot(True)
        self._removal_timer.timeout.connect(self._handle_removals)
        self._connections = [
            (viewer.layers.events.inserted, self._on_layer_inserted),
            (viewer.layers.events.removed, self._on_layer_removed),
            (viewer.dims.events.order, self._on_dims_changed),
            (viewer.dims.events.ndisplay, self._on_dims_changed),
            (viewer.dims.events.ndisplay, self._on_ndisplay),
        ]
        for emitter, callback in self._connections:
            emitter.connect(callback)
        self._image: Image | None = None

    def watch_image(self, layer: Image | None) -> None:
        """Follow the data of ``layer`` (instead of the image watched before)."""
        if self._image is not None:
            self._image.events.data.disconnect(self._on_image_data)
        self._image = layer
        if layer is not None:
            layer.events.data.connect(self._on_image_data)

    def close(self) -> None:
        self.watch_image(None)
        for emitter, callback in self._connections:
            emitter.disconnect(callback)
        self._connections = []

    def _refresh_images(self, event=None) -> None:
        self._w.session_panel.refresh_images(self._w.viewer.layers, self._w.image_layer)
        self._w.update_status()

    def _on_layer_inserted(self, event) -> None:
        self._refresh_images()
        layer = event.value
        if not isinstance(layer, Image) or self._w.image_layer is not None:
            return
        saved = layer.metadata.get("oaims_session")
        if saved:  # opened from a saved session (read-only): going on with it is a resume
            show_info(
                f"OAIMS: '{layer.name}' is the image of the saved session {saved}; Resume session… goes "
                "on with it (objects, classes, adapted model), or choose it under 'image' to start afresh"
            )
        else:
            self._w.set_image(layer, only_if_none=True)

    def _on_ndisplay(self, event=None) -> None:
        if self._w.viewer.dims.ndisplay == 3 and self._w.session is not None:
            show_info(f"OAIMS: {VIEW_3D}")
        self._w.update_status()

    # -- removed layers ------------------------------------------------------------------------
    def _on_layer_removed(self, event) -> None:
        # Handled once the removal is over: a viewer that closes removes all its layers first,
        # which must not read as the user deleting the annotator's layers.
        self._refresh_images()
        self._removed.append(event.value)
        self._removal_timer.start(0)

    def _handle_removals(self) -> None:
        w = self._w
        removed, self._removed = self._removed, []
        if w.jobs.closed:
            return
        if not len(w.viewer.layers):  # the viewer was cleared (or is closing): stop quietly
            w.jobs.clear()
            w.detach_image()
            return
        for layer in removed:
            if layer in w.viewer.layers:
                continue
            if layer is w.image_layer:
                w.jobs.clear()
                w.detach_image()
                show_warning(
                    f"OAIMS: the image layer '{layer.name}' was removed: annotation stopped (choose an image to go on)"
                )
                continue
            kind = w.layers.kind_of(layer)
            if kind is None or w.session is None:
                continue
            if kind == "objects":
                w.layers.detach_objects()
                w.editor.forget_objects()
                show_warning("OAIMS: the objects layer was removed; the next accepted object starts a new one")
                continue
            w.viewer.add_layer(layer)
            show_warning(f"OAIMS: the '{layer.name}' layer is needed while annotating; it was added back")

    # -- the displayed axes and the image's data -----------------------------------------------
    def _view_changed(self) -> bool:
        w = self._w
        if w.session is None or w.image_layer is None or w.engine is None:
            return False
        return w.plane_axes(w.image_layer.ndim) != tuple(sorted(w.session.source.plane_axes))

    def _on_dims_changed(self, event=None) -> None:
        def work():  # checked again when it runs: jobs before it may have changed the session
            if self._view_changed():
                self._w.restart_session("the displayed axes changed")

        if self._view_changed():
            self._w.jobs.submit(Job("change of view", work))

    def _on_image_data(self, event=None) -> None:
        layer = self._image

        def work():
            w = self._w
            if layer is None or layer is not w.image_layer:
                return
            shape = w.session.spatial_shape if w.session is not None else None
            if shape != spatial_shape(layer):
                show_warning(
                    f"OAIMS: the data of '{layer.name}' changed shape {shape} -> {spatial_shape(layer)}: "
                    "new annotation layers were created"
                )
                w.open_image(layer)
            else:
                w.restart_session(f"the data of '{layer.name}' was replaced")

        self._w.jobs.submit(Job("image replaced", work))
