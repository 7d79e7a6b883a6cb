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

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from napari.layers import Image, Layer
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QTimer

from napari_oaims.plugin.widget.jobs import Job
from napari_oaims.plugin.widget.status import VIEW_3D

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from napari_oaims.plugin.widget.current import Current
    from napari_oaims.plugin.widget.jobs import JobQueue
    from napari_oaims.plugin.widget.layers import PluginLayers


def spatial_shape(layer: Image) -> tuple[int, ...]:
    data = layer.data[0] if layer.multiscale else layer.data
    return tuple(data.shape[:-1] if layer.rgb else data.shape)


class ViewerEvents:
    """Connects the annotator to its viewer's layer and dims events (see the module docstring).

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer whose events it follows (a removed working layer is added back to it).
    current : Current
        The session, engine and image layer (read only).
    layers : PluginLayers
        The plugin's layers (which kind a removed layer was; the objects layer let go).
    jobs : JobQueue
        What an event changes runs as a job of this queue (cleared when the image goes).
    refresh_images : callable
        ``(layers, annotated image)``: list the viewer's images in the image choice.
    set_image, open_image, detach_image, restart_session : callable
        The annotator's own changes of image and session.
    plane_axes : callable
        ``(ndim) -> (axis, axis)``: the image axes shown on screen.
    forget_objects : callable
        The objects layer went away: forget its objects' undo steps.
    update_status : callable
        Called when what the status line shows may have changed.
    timer : QTimer
        Runs the handling of removed layers once a removal is over (a timer of the widget, so that
        it goes with it).
    """

    def __init__(
        self,
        viewer: "napari.viewer.Viewer",
        current: "Current",
        layers: "PluginLayers",
        jobs: "JobQueue",
        refresh_images: Callable[[Iterable[Layer], Image | None], None],
        set_image: Callable[..., None],
        open_image: Callable[[Image], None],
        detach_image: Callable[[], None],
        restart_session: Callable[[str], None],
        plane_axes: Callable[[int], tuple[int, int]],
        forget_objects: Callable[[], None],
        update_status: Callable[[], None],
        timer: QTimer,
    ):
        self._viewer = viewer
        self._current = current
        self._layers = layers
        self._jobs = jobs
        self._refresh = refresh_images
        self._set_image = set_image
        self._open_image = open_image
        self._detach_image = detach_image
        self._restart_session = restart_session
        self._plane_axes = plane_axes
        self._forget_objects = forget_objects
        self._update_status = update_status
        self._removed: list[Layer] = []
        self._removal_timer = timer
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
        self._refresh(self._viewer.layers, self._current.image_layer)
        self._update_status()

    def _on_layer_inserted(self, event) -> None:
        self._refresh_images()
        layer = event.value
        if not isinstance(layer, Image) or self._current.image_layer is not None:
            return
        saved = layer.metadata.get("oaims_session")
        if saved:  # opened from a saved session (read-only): going on with it is a resume
            show_info(
                f"OAIMS: '{layer.name}' is the image of the saved session {saved}; Resume session… goes "
                "on with it (objects, classes, adapted model), or choose it under 'image' to start afresh"
            )
        else:
            self._set_image(layer, only_if_none=True)

    def _on_ndisplay(self, event=None) -> None:
        if self._viewer.dims.ndisplay == 3 and self._current.session is not None:
            show_info(f"OAIMS: {VIEW_3D}")
        self._update_status()

    # -- removed layers ------------------------------------------------------------------------
    def _on_layer_removed(self, event) -> None:
        # Handled once the removal is over: a viewer that closes removes all its layers first,
        # which must not read as the user deleting the annotator's layers.
        self._refresh_images()
        self._removed.append(event.value)
        self._removal_timer.start(0)

    def _handle_removals(self) -> None:
        current, viewer = self._current, self._viewer
        removed, self._removed = self._removed, []
        if self._jobs.closed:
            return
        if not len(viewer.layers):  # the viewer was cleared (or is closing): stop quietly
            self._jobs.clear()
            self._detach_image()
            return
        for layer in removed:
            if layer in viewer.layers:
                continue
            if layer is current.image_layer:
                self._jobs.clear()
                self._detach_image()
                show_warning(
                    f"OAIMS: the image layer '{layer.name}' was removed: annotation stopped (choose an image to go on)"
                )
                continue
            kind = self._layers.kind_of(layer)
            if kind is None or current.session is None:
                continue
            if kind == "objects":
                self._layers.detach_objects()
                self._forget_objects()
                show_warning("OAIMS: the objects layer was removed; the next accepted object starts a new one")
                continue
            viewer.add_layer(layer)
            show_warning(f"OAIMS: the '{layer.name}' layer is needed while annotating; it was added back")

    # -- the displayed axes and the image's data -----------------------------------------------
    def _view_changed(self) -> bool:
        current = self._current
        if current.session is None or current.image_layer is None or current.engine is None:
            return False
        return self._plane_axes(current.image_layer.ndim) != tuple(sorted(current.session.source.plane_axes))

    def _on_dims_changed(self, event=None) -> None:
        def work():  # checked again when it runs: jobs before it may have changed the session
            if self._view_changed():
                self._restart_session("the displayed axes changed")

        if self._view_changed():
            self._jobs.submit(Job("change of view", work))

    def _on_image_data(self, event=None) -> None:
        layer = self._image

        def work():
            current = self._current
            if layer is None or layer is not current.image_layer:
                return
            shape = current.session.spatial_shape if current.session is not None else None
            if shape != spatial_shape(layer):
                show_warning(
                    f"OAIMS: the data of '{layer.name}' changed shape {shape} -> {spatial_shape(layer)}: "
                    "new annotation layers were created"
                )
                self._open_image(layer)
            else:
                self._restart_session(f"the data of '{layer.name}' was replaced")

        self._jobs.submit(Job("image replaced", work))
