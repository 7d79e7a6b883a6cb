"""The *Session* panel: the image to annotate, and saving/resuming the session (with autosave).

*Save session…* writes image, objects (with classes), prompts, event log and model to a
``.oaims.zarr`` folder; from then on every event is saved as it happens (until the image or the
displayed axes change). *Resume session…* opens such a folder and goes on with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QComboBox, QFileDialog, QFormLayout, QGridLayout, QLabel, QPushButton, QWidget

from napari_oaims.plugin.widget.jobs import Job
from napari_oaims.plugin.widget.objects import DEFAULT_CLASS

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from napari_oaims.engine import Engine
    from napari_oaims.plugin.widget.current import Current
    from napari_oaims.plugin.widget.jobs import JobQueue
    from napari_oaims.plugin.widget.layers import PluginLayers
    from napari_oaims.plugin.widget.objects import AcceptedObjects, ObjectStep
    from napari_oaims.session import Session
    from napari_oaims.store.session_store import SessionStore

#: The image choice's first entry while no image is being annotated.
NO_IMAGE_ITEM = "no image open"
CHOOSE_ITEM = "choose an image…"


class SessionPanel(QWidget):
    """Image choice, save/resume and the autosave state (``store``: the session store, or None).

    Parameters
    ----------
    viewer : napari.Viewer
        A resumed session's image is added to it (its axes ordered as the session's planes).
    current : Current
        The session, engine and image layer (read only).
    layers, objects : PluginLayers, AcceptedObjects
        The objects layer and the accepted objects' classes (saved; loaded on resume).
    jobs : JobQueue
        Saving, resuming and autosaving run as jobs of this queue.
    set_image : callable
        Annotate the image layer chosen in the panel.
    open_session : callable
        ``(image layer, session, engine)``: annotate a resumed session's image with it.
    number_objects : callable
        Continue the object ids of the objects layer in the session.
    add_classes : callable
        Offer these class names for new objects.
    update_status : callable
        Called when what the status line shows may have changed.
    """

    #: autosave failed (the error) or works again (None); emitted from any thread
    _autosave_state = Signal(object)

    def __init__(
        self,
        viewer: "napari.viewer.Viewer",
        current: "Current",
        layers: "PluginLayers",
        objects: "AcceptedObjects",
        jobs: "JobQueue",
        set_image: Callable[[Image], None],
        open_session: Callable[[Image, "Session", "Engine"], None],
        number_objects: Callable[[], None],
        add_classes: Callable[[Iterable[str]], None],
        update_status: Callable[[], None],
    ):
        super().__init__()
        self._viewer = viewer
        self._current = current
        self._layers = layers
        self._objects = objects
        self._jobs = jobs
        self._set_image = set_image
        self._open_session = open_session
        self._number_objects = number_objects
        self._add_classes = add_classes
        self._update_status = update_status
        self.store: SessionStore | None = None
        form = QFormLayout(self)
        form.setContentsMargins(4, 0, 4, 4)
        self.image_choice = QComboBox()
        self.image_choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.image_choice.setMinimumContentsLength(10)
        self.image_choice.setToolTip(
            "The image layer to annotate (2D, RGB or a stack). Choosing one starts "
            "annotating it; an image opened while none is annotated is chosen by itself"
        )
        self.image_choice.activated.connect(self._chosen)
        label = QLabel("image")
        label.setToolTip(self.image_choice.toolTip())
        form.addRow(label, self.image_choice)
        grid = QGridLayout()
        self.buttons: dict[str, QPushButton] = {}
        for i, (name, text, tip, slot) in enumerate(
            [
                (
                    "save_session",
                    "Save session…",
                    (
                        "Write image, objects, prompts, event log and model to a .oaims.zarr "
                        "folder; then every further event is saved automatically"
                    ),
                    self._ask_save_session,
                ),
                (
                    "resume_session",
                    "Resume session…",
                    (
                        "Open a saved .oaims.zarr session to go on with it: image, objects, "
                        "classes, adapted model and log"
                    ),
                    self._ask_resume_session,
                ),
            ]
        ):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, f=slot: f())
            grid.addWidget(button, 0, i)
            self.buttons[name] = button
        form.addRow(grid)
        self.store_label = QLabel("not saved")
        self.store_label.setWordWrap(True)
        self.store_label.setToolTip("Where this session is autosaved (Save session… starts autosaving)")
        form.addRow(self.store_label)
        self._autosave_state.connect(self._show_autosave_state)

    def _chosen(self, index: int) -> None:
        layer = self.image_choice.itemData(index)
        if layer is None:  # the placeholder entry
            self._update_status()
        else:
            self._set_image(layer)

    def refresh_images(self, layers, current: Image | None) -> None:
        """List the viewer's image layers with ``current`` (the annotated one) chosen; with none
        annotated, a first entry says so."""
        images = [getattr(layer, "__wrapped__", layer) for layer in layers if isinstance(layer, Image)]
        self.image_choice.blockSignals(True)
        self.image_choice.clear()
        if current is None or not any(layer is current for layer in images):
            self.image_choice.addItem(CHOOSE_ITEM if images else NO_IMAGE_ITEM, None)
        for layer in images:
            self.image_choice.addItem(layer.name, layer)
        index = next((i for i in range(self.image_choice.count()) if self.image_choice.itemData(i) is current), 0)
        self.image_choice.setCurrentIndex(index if current is not None else 0)
        self.image_choice.blockSignals(False)

    # -- save ----------------------------------------------------------------------------------
    def save_session(self, path: str | Path) -> None:
        session, path = self._current.session, Path(path)
        if session is None:
            show_warning("OAIMS: nothing to save: no image is being annotated")
            return
        objects = self._layers["objects"]
        labels = np.array(objects.data) if objects is not None else None
        classes = dict(self._objects.classes)
        image_path = getattr(getattr(self._current.image_layer, "source", None), "path", None)
        image_path = image_path if image_path and Path(image_path).exists() else None

        def work():
            from napari_oaims.store.session_store import SessionStore

            store = SessionStore.create(
                path, engine=session.engine, session=session, image_path=image_path, overwrite=True
            )  # attaches: autosave from now on
            for object_id in np.unique(labels) if labels is not None else ():
                if object_id:
                    cls = classes.get(int(object_id), DEFAULT_CLASS)
                    store.commit_object(int(object_id), labels == object_id, class_id=cls[0], class_name=cls[1])
            return store

        def done(store):
            if session is not self._current.session:
                store.close()
                return
            self.stop_autosave()
            self._attach(store)
            show_info(f"OAIMS: session saved to {path}; further work is saved automatically")

        self._jobs.submit(Job("save session", work, done, thread=True, progress="Saving the session"))

    def object_changed(self, step: "ObjectStep") -> None:
        """An accept was undone or redone: bring the autosaved objects up to date."""
        store, objects = self.store, self._layers["objects"]
        if store is None or objects is None:
            return
        labels, (class_id, class_name) = np.array(objects.data), step.cls

        def work():
            if step.undone:
                store.write_labels(labels)
            else:
                store.commit_object(step.object_id, labels == step.object_id, class_id=class_id, class_name=class_name)

        self._jobs.submit(Job("autosave", work, thread=True))

    # -- resume --------------------------------------------------------------------------------
    def resume_session(self, path: str | Path) -> None:
        path, engine = Path(str(path).rstrip("/\\")), self._current.engine

        def work():
            from napari_oaims.store.session_store import SessionStore

            store = SessionStore.open(path)
            try:
                # A session made with other packaged base weights gets its own engine on them.
                base = store.meta.get("base_hash")
                same = engine is not None and base in (None, engine.base_hash)
                state = store.resume(engine=engine if same else None, device=str(engine.device) if engine else "auto")
                return state, np.array(state.labels[...], dtype=np.int32)
            except BaseException:
                store.close()
                raise

        def done(out):
            state, labels = out
            try:
                self._adopt(state, labels, path)
            except BaseException:
                state.store.close()
                raise

        self._jobs.submit(Job("resume session", work, done, thread=True, progress="Resuming the session"))

    def _adopt(self, state, labels: np.ndarray, path: Path) -> None:
        """Show a resumed session: its image, objects and classes; autosave goes on into its store."""
        from napari_oaims.store.layout import SUFFIX

        self.stop_autosave()
        params = state.store.session_params()
        viewer = self._viewer
        ndim = len(state.session.spatial_shape)
        if ndim > 2:  # show the plane the session segments
            pa = params["plane_axes"]
            viewer.dims.order = tuple([a for a in range(ndim) if a not in pa] + list(pa))
        image = viewer.add_image(
            state.image, name=state.store.path.name[: -len(SUFFIX)], **({"rgb": True} if params["rgb"] else {})
        )
        if params["channel_axis"] is not None and not params["rgb"]:
            show_info("OAIMS: the session's image has channels; it is shown as one layer")
        self._open_session(image, state.session, state.engine)
        classes = {int(o["id"]): (int(o["class_id"]), str(o["class_name"])) for o in state.objects if o["area"] > 0}
        self._objects.load(self._layers.objects(), labels, classes)
        self._add_classes(name for _, name in sorted(classes.values()))
        self._number_objects()
        self._attach(state.store)
        self._update_status()
        n = len(classes)
        show_info(
            f"OAIMS: resumed {path.name}: {n} object{'s' * (n != 1)}, {state.engine.updates} model "
            "updates; further work is saved automatically"
        )

    # -- autosave ------------------------------------------------------------------------------
    def _attach(self, store: "SessionStore") -> None:
        """Autosave into ``store`` from now on; its failures become notifications."""
        self.store = store
        store.on_error = self._autosave_state.emit  # called from any thread: queued to the GUI thread
        self.store_label.setText(f"autosave: {store.path.name}")

    def _show_autosave_state(self, err: BaseException | None) -> None:
        store = self.store
        if store is None:
            return
        if err is not None:
            self.store_label.setText(f"autosave FAILING: {store.path.name} (retried at each event)")
            show_warning(
                f"OAIMS: autosave to {store.path.name} failed ({err}). Your work is kept in memory and "
                "saving is retried at every event: free some space or save the session elsewhere."
            )
        else:
            self.store_label.setText(f"autosave: {store.path.name}")
            show_info(f"OAIMS: autosave to {store.path.name} works again; nothing was lost")

    def stop_autosave(self, reason: str | None = None) -> None:
        if self.store is None:
            return
        store, self.store = self.store, None
        self.store_label.setText("not saved")
        store.close()
        if reason:
            show_warning(
                f"OAIMS: autosave to {store.path.name} stopped ({reason}); save the session again to go on saving"
            )

    def _ask_save_session(self) -> None:
        from napari_oaims.store.layout import SUFFIX

        path, _ = QFileDialog.getSaveFileName(
            self, "Save OAIMS session", f"session{SUFFIX}", f"OAIMS session (*{SUFFIX})"
        )
        if path:
            self.save_session(path if path.endswith(SUFFIX) else path + SUFFIX)

    def _ask_resume_session(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Resume OAIMS session (a .oaims.zarr folder)")
        if path:
            self.resume_session(path)
