"""The annotator widget in a real napari viewer with the real engine (run under Xvfb)."""

from __future__ import annotations

import time

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari.utils.notifications import notification_manager  # noqa: E402

from napari_oaims import Engine  # noqa: E402
from napari_oaims.adapt import ADAPTERS, Adapter  # noqa: E402
from napari_oaims.data import sample_nuclei  # noqa: E402
from napari_oaims.plugin.api import annotate, annotator  # noqa: E402
from napari_oaims.plugin.widget import KEYS, AnnotatorWidget  # noqa: E402
from napari_oaims.simulate.robot import click_in_region  # noqa: E402
from napari_oaims.training.synth import volume  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def napari_settings(monkeypatch):
    """napari's settings, in memory: the user's settings file is neither read nor written."""
    from napari import settings

    fresh = settings.NapariSettings(config_path=None)
    monkeypatch.setattr(settings, "_SETTINGS", fresh)
    return fresh


@pytest.fixture(scope="module")
def engine():
    return Engine.pretrained(device="cpu")


@pytest.fixture
def fresh_engine(engine):
    engine.reset()
    engine.adaptation = "none"
    yield engine
    engine.reset()
    engine.adaptation = "none"


@pytest.fixture(scope="module")
def nuclei():
    return sample_nuclei()


@pytest.fixture
def notes():
    """Messages of the napari notifications shown during the test: (severity, message)."""
    seen: list[tuple[str, str]] = []

    def keep(n):
        seen.append((str(n.severity), str(n.message)))

    notification_manager.notification_ready.connect(keep)
    yield seen
    notification_manager.notification_ready.disconnect(keep)


def wait(qtbot, widget, timeout=30_000):
    qtbot.waitUntil(lambda: not widget.busy, timeout=timeout)
    qtbot.wait(5)  # let deferred handlers (layer removals) run


def start(viewer, qtbot, engine, image, **kwargs) -> AnnotatorWidget:
    layer = image if isinstance(image, napari.layers.Layer) else viewer.add_image(image, **kwargs)
    widget = AnnotatorWidget(viewer, engine=engine)
    viewer.window.add_dock_widget(widget, name="OAIMS annotator")
    widget.set_image(layer)
    wait(qtbot, widget)
    return widget


def centre(labels, k):
    """A click at the centre of the k-th labelled object."""
    return click_in_region(labels == np.unique(labels[labels > 0])[k])


def target(labels, k):
    return labels == np.unique(labels[labels > 0])[k]


def has(notes, severity, text):
    return any(s.lower() == severity.lower() and text in m for s, m in notes)


def errors(notes):
    return [m for s, m in notes if s.lower() == "error"]


def test_full_workflow_click_accept_undo_save_reopen(make_napari_viewer, qtbot, fresh_engine, nuclei, notes, tmp_path):
    image, labels = nuclei
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image, name="nuclei")
    assert set(w.layers) == {"points", "shapes", "preview", "objects"}
    names = [layer.name for layer in viewer.layers]
    assert names[0] == "nuclei" and {"clicks", "boxes & scribbles", "preview", "objects"} <= set(names)
    points, preview, objects = w.layers["points"], w.layers["preview"], w.layers["objects"]
    assert viewer.layers.selection.active is points and points.mode == "add"

    points.add(list(centre(labels, 30)))
    wait(qtbot, w)
    mask = preview.data.astype(bool)
    assert (mask & target(labels, 30)).any()  # overlaps the nucleus (quality depends on the weights)
    assert w.last_latency_ms is not None and "latency" in w.status.text() and "device cpu" in w.status.text()
    kinds = [e["kind"] for e in w.session.events]
    assert kinds[-2:] == ["click", "predict"]

    # a negative click far away in the background: polarity shown by colour, mask kept
    w.toggle_positive()
    assert not w.positive and not w.annotate_panel.positive_check.isChecked()
    points.add([5, 5])
    wait(qtbot, w)
    assert np.allclose(points.face_color[-1], [1, 0, 0, 1]) and np.allclose(points.face_color[0], [0, 1, 0, 1])
    assert list(points.features["positive"]) == [True, False]
    assert w.session.events[-2]["label"] == 0
    w.set_positive(True)
    mask = preview.data.astype(bool)

    w.annotate_panel.class_choice.setCurrentText("nucleus")
    w.accept()
    wait(qtbot, w)
    assert set(np.unique(objects.data)) == {0, 1}
    assert ((objects.data == 1) == mask).all()
    assert not preview.data.any() and len(points.data) == 0
    assert list(objects.features["class_name"]) == ["nucleus"] and list(objects.features["index"]) == [1]

    size = w.session.accepted_diameters[1]
    assert size == pytest.approx(2 * np.sqrt(mask.sum() / np.pi), abs=0.01)
    w.undo()  # takes the accepted object back; its size no longer counts for object size "auto"
    wait(qtbot, w)
    assert not objects.data.any() and w.session.accepted_diameters == {}
    w.redo()
    wait(qtbot, w)
    assert set(np.unique(objects.data)) == {0, 1} and w.session.accepted_diameters == {1: size}
    # both are in the log, so a replay of the session withdraws and reinstates the size too
    assert [(e["kind"], e["object"]) for e in w.session.events[-2:]] == [("withdraw", 1), ("reinstate", 1)]

    # a second object, its click undone and redone
    points.add(list(centre(labels, 60)))
    wait(qtbot, w)
    assert preview.data.any()
    w.undo()
    wait(qtbot, w)
    assert not preview.data.any() and len(points.data) == 0
    w.redo()
    wait(qtbot, w)
    assert preview.data.any() and len(points.data) == 1
    w.clear()
    wait(qtbot, w)
    assert not preview.data.any() and len(points.data) == 0
    w.undo()
    wait(qtbot, w)
    assert preview.data.any()
    w.next_object()  # accepts it
    wait(qtbot, w)
    assert set(np.unique(objects.data)) == {0, 1, 2}
    assert not errors(notes)

    store = pytest.importorskip("napari_oaims.store.session_store")
    path = tmp_path / "nuclei.oaims.zarr"
    w.save_session(path)
    wait(qtbot, w)
    assert path.is_dir() and w.store is not None and "autosave" in w.session_panel.store_label.text(), notes
    saved = store.SessionStore.open(path, read_only=True)
    assert np.array_equal(np.asarray(saved.labels()), objects.data)
    assert {o["id"]: o["class_name"] for o in saved.objects()} == {1: "nucleus", 2: "nucleus"}

    points.add(list(centre(labels, 90)))  # autosaved from now on
    wait(qtbot, w)
    w.annotate_panel.class_choice.setCurrentText("other")
    w.accept()
    wait(qtbot, w)
    assert set(np.unique(objects.data)) == {0, 1, 2, 3}
    saved = store.SessionStore.open(path, read_only=True)
    assert np.array_equal(np.asarray(saved.labels()), objects.data)
    assert {o["id"]: o["class_name"] for o in saved.objects()}[3] == "other"
    assert [e["kind"] for e in saved.events()].count("accept") == 3
    w.undo()  # the accepted object is taken back, on disk too
    wait(qtbot, w)
    assert np.array_equal(np.asarray(store.SessionStore.open(path, read_only=True).labels()), objects.data)

    # reopen through the plugin's reader
    opened = viewer.open(str(path), plugin="napari-oaims")
    reopened = [layer for layer in opened if isinstance(layer, napari.layers.Labels)]
    assert len(reopened) == 1 and np.array_equal(np.asarray(reopened[0].data), objects.data)
    assert not errors(notes)


def press(viewer, qtbot, key: str, layer=None) -> None:
    """Press ``key`` (a napari key name) in the viewer's canvas, with ``layer`` active."""
    from qtpy.QtCore import Qt

    if layer is not None:
        viewer.layers.selection.active = layer
    *mods, name = key.split("-")
    modifier = Qt.KeyboardModifier.ShiftModifier if mods == ["Shift"] else Qt.KeyboardModifier.NoModifier
    qtbot.keyClick(viewer.window._qt_viewer, getattr(Qt.Key, f"Key_{name}"), modifier)


def keymaps(viewer):
    """Every keymap napari itself consults besides the layers' own: the viewer's and the classes'."""
    classes = [
        napari.components.ViewerModel,
        napari.layers.Layer,
        napari.layers.Image,
        napari.layers.Points,
        napari.layers.Shapes,
        napari.layers.Labels,
    ]
    return {"viewer": dict(viewer.keymap), **{c.__name__: dict(c.class_keymap) for c in classes}}


def test_keys_are_bound_on_the_plugin_layers_only(make_napari_viewer, qtbot, fresh_engine, nuclei):
    from napari.utils.key_bindings import coerce_keybinding

    image, labels = nuclei
    viewer = make_napari_viewer()
    theirs = []  # another plugin's viewer-wide binding of one of the annotator's keys
    viewer.bind_key(KEYS["accept"], lambda v: theirs.append(v))
    before = keymaps(viewer)
    w = start(viewer, qtbot, fresh_engine, image, name="nuclei")
    assert keymaps(viewer) == before  # napari's and other plugins' bindings are untouched
    ours = {coerce_keybinding(k) for k in KEYS.values()}
    for kind, layer in w.layers.items():
        assert ours <= set(layer.keymap), kind
    assert not ours & set(viewer.layers["nuclei"].keymap)
    for name, text in KEYS.items():
        assert text in w.annotate_panel.buttons.get(name, w.annotate_panel.positive_check).text()

    points, preview, objects = w.layers["points"], w.layers["preview"], w.layers["objects"]
    press(viewer, qtbot, KEYS["toggle"], points)
    assert not w.positive and not w.annotate_panel.positive_check.isChecked()
    press(viewer, qtbot, KEYS["toggle"], w.layers["shapes"])
    assert w.positive
    points.add(list(centre(labels, 30)))
    wait(qtbot, w)
    shown = preview.data.copy()
    assert shown.any()
    press(viewer, qtbot, KEYS["clear"], preview)
    wait(qtbot, w)
    assert not preview.data.any() and len(points.data) == 0
    press(viewer, qtbot, KEYS["undo"], preview)
    wait(qtbot, w)
    assert np.array_equal(preview.data, shown) and len(points.data) == 1
    press(viewer, qtbot, KEYS["redo"], objects)
    wait(qtbot, w)
    assert not preview.data.any()
    press(viewer, qtbot, KEYS["undo"], objects)
    wait(qtbot, w)
    assert preview.data.any()

    # the image layer is not the annotator's: there the key is the other plugin's
    press(viewer, qtbot, KEYS["accept"], viewer.layers["nuclei"])
    wait(qtbot, w)
    assert theirs == [viewer] and not objects.data.any()
    press(viewer, qtbot, KEYS["accept"], objects)
    wait(qtbot, w)
    assert theirs == [viewer] and objects.data.max() == 1 and not preview.data.any()
    press(viewer, qtbot, KEYS["next"], objects)  # nothing to accept: ready for the next object
    wait(qtbot, w)
    assert viewer.layers.selection.active is points and points.mode == "add"

    w.detach()
    for layer in (points, preview, objects):
        assert not ours & set(layer.keymap)
    assert keymaps(viewer) == before
    press(viewer, qtbot, KEYS["accept"], objects)
    assert theirs == [viewer, viewer]


def test_a_new_objects_layer_gets_the_keys_and_a_detached_one_loses_them(
    make_napari_viewer, qtbot, fresh_engine, nuclei
):
    from napari.utils.key_bindings import coerce_keybinding

    image, labels = nuclei
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image)
    old = w.layers["objects"]
    viewer.layers.remove(old)
    wait(qtbot, w)
    assert not {coerce_keybinding(k) for k in KEYS.values()} & set(old.keymap)
    w.layers["points"].add(list(centre(labels, 30)))
    wait(qtbot, w)
    w.accept()
    wait(qtbot, w)
    new = w.layers["objects"]
    assert new is not old and new.data.max() == 1
    w.layers["points"].add(list(centre(labels, 60)))
    wait(qtbot, w)
    press(viewer, qtbot, KEYS["accept"], new)
    wait(qtbot, w)
    assert set(np.unique(new.data)) == {0, 1, 2}


def test_the_widget_imports_neither_torch_nor_the_model():
    """Opening the annotator stays fast: the model (and torch) load later, in a worker."""
    import subprocess
    import sys

    code = (
        "import sys\nimport napari_oaims\nassert 'napari' not in sys.modules and 'qtpy' not in sys.modules\n"
        "import napari_oaims.plugin.widget\n"
        "heavy = [m for m in ('torch', 'napari_oaims.engine', 'napari_oaims.model') if m in sys.modules]\n"
        "assert not heavy, heavy\nprint('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]


def test_the_preview_redraws_only_what_a_step_changed(make_napari_viewer, qtbot, fresh_engine, nuclei):
    image, labels = nuclei
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image)
    preview = w.layers["preview"]
    partial = []
    preview.events.labels_update.connect(lambda e: partial.append(e.data.shape[:2]))
    w.layers["points"].add(list(centre(labels, 30)))
    wait(qtbot, w)
    w.undo()
    wait(qtbot, w)
    assert len(partial) == 2  # napari's partial refresh, once per step
    assert all(h * x < image.size / 4 for h, x in partial)  # a window around the object, not the slice


def test_an_undone_accept_gives_the_overlapped_object_back(make_napari_viewer, qtbot, fresh_engine, nuclei):
    image, labels = nuclei
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image)
    objects = w.layers["objects"]
    w.layers["points"].add(list(centre(labels, 30)))
    wait(qtbot, w)
    w.accept()
    wait(qtbot, w)
    first = objects.data == 1
    ys, xs = np.nonzero(first)
    w.layers["shapes"].add(
        np.array([[ys.min() - 3, xs.min() - 3], [ys.max() + 3, xs.max() + 3]]), shape_type="rectangle"
    )  # the same nucleus again: the new object wins
    wait(qtbot, w)
    w.accept()
    wait(qtbot, w)
    assert (objects.data[first] == 2).any()
    w.undo()
    wait(qtbot, w)
    assert np.array_equal(objects.data == 1, first) and not (objects.data == 2).any()
    w.redo()
    wait(qtbot, w)
    assert (objects.data[first] == 2).any()


def test_a_session_on_transposed_plane_axes(make_napari_viewer, qtbot, fresh_engine):
    """A session whose plane reads (x, y) (e.g. a resumed one): preview and objects stay in place."""
    image, labels = volume(np.random.default_rng(0))
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image)
    w.open_session(w.image_layer, fresh_engine.session(image, plane_axes=(2, 1)), fresh_engine)
    assert w.session.source.plane_axes == (2, 1)
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    obj = int(ids[np.argmax(counts)])
    z = int(np.argmax((labels == obj).sum((1, 2))))
    y, x = click_in_region(labels[z] == obj)
    w.layers["points"].add([z, y, x])
    wait(qtbot, w)
    preview = w.layers["preview"].data.astype(bool)
    assert np.array_equal(preview, w.session.mask) and (preview[z] & (labels[z] == obj)).any()
    assert np.allclose(w.layers["points"].data, [[z, y, x]])
    w.accept()
    wait(qtbot, w)
    assert np.array_equal(w.layers["objects"].data == 1, preview) and not w.layers["preview"].data.any()


def test_click_on_a_slice_of_a_3d_stack_commits_only_there(make_napari_viewer, qtbot, fresh_engine):
    image, labels = volume(np.random.default_rng(0))
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image)
    assert w.session.source.plane_axes == (1, 2)
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    obj = int(ids[np.argmax(counts)])
    z = int(np.argmax((labels == obj).sum((1, 2))))
    viewer.dims.set_current_step(0, z)
    y, x = click_in_region(labels[z] == obj)
    w.layers["points"].add([z, y, x])
    wait(qtbot, w)
    preview = w.layers["preview"].data
    assert preview[z].any() and not np.delete(preview, z, axis=0).any()
    assert (preview[z].astype(bool) & (labels[z] == obj)).any()
    w.accept()
    wait(qtbot, w)
    objects = w.layers["objects"].data
    assert objects.shape == image.shape and objects[z].max() == 1
    assert not np.delete(objects, z, axis=0).any()


def test_clicks_follow_the_displayed_orientation(make_napari_viewer, qtbot, fresh_engine, notes):
    image, labels = volume(np.random.default_rng(0))
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image)
    viewer.dims.order = (1, 0, 2)  # show z-x planes, step through y
    wait(qtbot, w)
    assert w.session.source.plane_axes == (0, 2)
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    obj = int(ids[np.argmax(counts)])
    y = int(np.argmax((labels == obj).sum((0, 2))))
    viewer.dims.set_current_step(1, y)
    z, x = click_in_region(labels[:, y, :] == obj)
    w.layers["points"].add([z, y, x])
    wait(qtbot, w)
    preview = w.layers["preview"].data
    assert preview[:, y, :].any() and not np.delete(preview, y, axis=1).any()
    assert (preview[:, y, :].astype(bool) & (labels[:, y, :] == obj)).any()
    w.accept()
    wait(qtbot, w)
    assert w.layers["objects"].data[:, y, :].max() == 1
    viewer.dims.order = (0, 1, 2)  # back to z slices: a new session, objects kept
    wait(qtbot, w)
    assert w.session.source.plane_axes == (1, 2) and w.layers["objects"].data.max() == 1
    assert not errors(notes)


def test_boxes_and_scribbles(make_napari_viewer, qtbot, fresh_engine, nuclei, notes):
    image, labels = nuclei
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image)
    ys, xs = np.nonzero(target(labels, 30))
    shapes, preview = w.layers["shapes"], w.layers["preview"]
    shapes.add(np.array([[ys.min() - 2, xs.min() - 2], [ys.max() + 2, xs.max() + 2]]), shape_type="rectangle")
    wait(qtbot, w)
    assert (preview.data.astype(bool) & target(labels, 30)).any()
    assert w.session.events[-2]["kind"] == "box"
    w.clear()
    wait(qtbot, w)
    y, x = centre(labels, 30)
    shapes.add(np.array([[y - 3, x - 3], [y + 3, x + 3]]), shape_type="path")
    wait(qtbot, w)
    assert w.session.events[-2]["kind"] == "scribble" and preview.data.any()
    shapes.add(np.array([[10, 10], [20, 20]]), shape_type="ellipse")
    wait(qtbot, w)
    assert has(notes, "WARNING", "not a prompt") and len(shapes.data) == 1


def test_bad_inputs_become_notifications(make_napari_viewer, qtbot, fresh_engine, nuclei, notes):
    image, _ = nuclei
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image, name="nuclei")
    good = w.session

    # a non-image layer, no layer, a constant image, a too small (nearly 1D) image
    labels_layer = viewer.add_labels(np.zeros((32, 32), np.int32), name="not an image")
    w.set_image(labels_layer)
    assert has(notes, "ERROR", "'not an image' is a Labels layer")
    w.set_image(None)
    assert has(notes, "WARNING", "no image layer chosen")
    for name, data in (("flat", np.full((64, 64), 7.0)), ("line", np.arange(128.0).reshape(2, 64))):
        w.set_image(viewer.add_image(data, name=name))
        wait(qtbot, w)
    assert has(notes, "ERROR", "cannot annotate 'flat'") and has(notes, "ERROR", "constant")
    assert has(notes, "ERROR", "cannot annotate 'line'") and has(notes, "ERROR", "too small")
    assert w.session is good and w.image_layer.name == "nuclei"  # still annotating the good image
    with pytest.raises(ValueError, match="at least 2 axes"):
        annotate(np.arange(10.0), viewer=viewer)

    # a click outside the image is dropped with a warning
    points = w.layers["points"]
    points.add([600, 10])
    wait(qtbot, w)
    assert len(points.data) == 0 and has(notes, "WARNING", "outside the image")
    assert not any(e["kind"] == "click" for e in w.session.events)
    w.accept()  # nothing to accept
    wait(qtbot, w)
    assert has(notes, "WARNING", "nothing to accept") and not w.layers["objects"].data.any()


def test_rgb_image(make_napari_viewer, qtbot, fresh_engine, nuclei):
    image, labels = nuclei
    rgb = np.stack([(image / image.max() * 255).astype(np.uint8)] * 3, axis=-1)
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, rgb, rgb=True)
    assert w.session.source.rgb and w.layers["preview"].data.shape == image.shape
    w.layers["points"].add(list(centre(labels, 30)))
    wait(qtbot, w)
    assert (w.layers["preview"].data.astype(bool) & target(labels, 30)).any()


def test_layers_deleted_renamed_or_replaced_mid_session(make_napari_viewer, qtbot, fresh_engine, nuclei, notes):
    image, labels = nuclei
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image, name="nuclei")
    points = w.layers["points"]
    points.name = "my clicks"
    assert has(notes, "INFO", "now called 'my clicks'")
    points.add(list(centre(labels, 30)))
    wait(qtbot, w)
    assert w.layers["preview"].data.any()

    preview = w.layers["preview"]
    viewer.layers.remove(preview)  # working layers come back
    wait(qtbot, w)
    assert preview in viewer.layers and has(notes, "WARNING", "added back")

    objects = w.layers["objects"]
    viewer.layers.remove(objects)  # the objects layer is detached; the next accept makes a new one
    wait(qtbot, w)
    assert has(notes, "WARNING", "objects layer was removed")
    w.accept()
    wait(qtbot, w)
    assert w.layers["objects"] is not objects and w.layers["objects"].data.max() == 1

    # the image data is replaced by other data of the same shape: a new session on it
    layer = viewer.layers["nuclei"]
    layer.data = image[::-1].copy()
    wait(qtbot, w)
    assert w.session.source.array is layer.data
    # ... and by data of another shape: new annotation layers
    layer.data = image[:256, :300].copy()
    wait(qtbot, w)
    assert w.layers["preview"].data.shape == (256, 300) and has(notes, "WARNING", "changed shape")
    w.layers["points"].add([100, 100])
    wait(qtbot, w)

    viewer.layers.remove(layer)  # the image goes away: annotation stops, clicks are ignored
    wait(qtbot, w)
    assert w.session is None and has(notes, "WARNING", "was removed: annotation stopped")
    w.layers["points"].add([10, 10])
    wait(qtbot, w)
    assert has(notes, "WARNING", "click ignored: no image")
    assert not errors(notes)


class SlowAdapter(Adapter):
    """A stand-in Post-Interaction update that takes a while (learning nothing)."""

    name = "slow"

    def on_accept(self, engine, ctx):
        time.sleep(1.0)
        return [{"method": "slow", "loss": 0.0, "latency_ms": 1000.0}]


def test_clicks_during_an_update_are_queued_in_order(make_napari_viewer, qtbot, fresh_engine, nuclei):
    image, labels = nuclei
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image)
    fresh_engine.adaptation = SlowAdapter()
    points = w.layers["points"]
    points.add(list(centre(labels, 30)))
    wait(qtbot, w)
    w.accept()
    qtbot.waitUntil(lambda: w.jobs.running is not None and w.jobs.running.thread, timeout=5000)
    t0 = time.perf_counter()
    first, second = centre(labels, 60), centre(labels, 61)
    points.add(list(first))
    w.set_positive(False)
    points.add(list(second))
    assert time.perf_counter() - t0 < 0.5  # the viewer did not wait for the update
    assert w.busy and w.jobs.waiting == 2 and "queued" in w.status.text()
    wait(qtbot, w)
    clicks = [e for e in w.session.events if e["kind"] == "click" and e["object"] == 2]
    assert [tuple(c["coords"]) for c in clicks] == [tuple(first), tuple(second)]
    assert [c["label"] for c in clicks] == [1, 0]
    seqs = {e["kind"]: e["seq"] for e in reversed(w.session.events)}  # first of each kind
    assert seqs["update"] < clicks[0]["seq"]  # the queued clicks ran after the update
    assert w.layers["preview"].data.any() and w.layers["objects"].data.max() == 1


def test_model_controls(make_napari_viewer, qtbot, fresh_engine, nuclei, notes, tmp_path):
    image, _ = nuclei
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image)
    labels = [w.model_panel.adaptation_choice.itemText(i) for i in range(w.model_panel.adaptation_choice.count())]
    assert [w.model_panel.adaptation_choice.itemData(i) for i in range(len(labels))] == ["none", "mi", "pi", "oaims"]
    for name in ("mi", "pi", "oaims"):
        w.set_adaptation(name)
        wait(qtbot, w)
        if name in ADAPTERS:
            assert w.engine.adaptation == name and w.model_panel.adaptation_choice.currentData() == name
        else:
            assert has(notes, "WARNING", f"adaptation '{name}' is not available")
            assert w.engine.adaptation == "none" and w.model_panel.adaptation_choice.currentData() == "none"
    w.set_adaptation("none")
    wait(qtbot, w)

    devices = w.model_panel.device_choice.model()
    import torch

    assert devices.item(w.model_panel.device_choice.findText("cpu")).isEnabled()
    assert devices.item(w.model_panel.device_choice.findText("cuda")).isEnabled() == torch.cuda.is_available()

    w.save_weights(tmp_path / "adapted")
    wait(qtbot, w)
    assert (tmp_path / "adapted.safetensors").exists() and has(notes, "INFO", "saved weights")
    # Object size: the first click's window is four diameters, "auto", or the weights' own ("auto").
    assert w.model_panel.size_choice.currentData() is None and w.engine.first_window == "auto"
    w.set_object_size("auto")
    assert w.engine.first_window == "auto"
    assert w.model_panel.size_choice.currentText() == "auto (learnt from accepted objects)"
    w.set_object_size(25)
    assert w.engine.first_window == 100 and w.model_panel.size_choice.currentText() == "about 25 px across"
    with pytest.raises(ValueError, match="object size"):
        w.set_object_size(-3)
    assert w.engine.first_window == 100
    old = w.engine
    w.load_weights(tmp_path / "adapted.safetensors")
    wait(qtbot, w)
    assert w.engine is not old and w.session.engine is w.engine and w.engine.weights_hash == old.weights_hash
    assert w.engine.first_window == 100  # the choice carries over to loaded weights
    w.set_object_size(None)
    assert w.engine.first_window == "auto"  # the loaded weights' own
    w.model_panel.size_choice.setCurrentIndex(4)  # the dropdown itself, as a user picks it
    w.model_panel.size_choice.activated.emit(4)
    assert w.engine.first_window == 200
    w.model_panel.size_choice.setCurrentIndex(0)
    w.model_panel.size_choice.activated.emit(0)
    assert w.engine.first_window == "auto"
    w.load_weights(tmp_path / "missing.safetensors")
    wait(qtbot, w)
    assert has(notes, "ERROR", "load weights") and w.session.engine is w.engine
    w.reset_model()
    wait(qtbot, w)
    assert has(notes, "INFO", "model reset")
    w.set_device("cpu")
    wait(qtbot, w)
    assert str(w.engine.device) == "cpu" and w.session.engine is w.engine


def test_annotate_api_docks_the_widget(make_napari_viewer, qtbot, fresh_engine, nuclei):
    image, labels = nuclei
    viewer = make_napari_viewer()
    assert annotate(image, viewer=viewer, engine=fresh_engine) is viewer
    w = annotator(viewer)
    wait(qtbot, w)
    assert isinstance(w, AnnotatorWidget) and w.image_layer is viewer.layers["image"]
    assert w.layers["points"] in viewer.layers


def test_opens_from_the_plugin_menu_and_loads_its_own_model(make_napari_viewer, qtbot, nuclei):
    image, labels = nuclei
    viewer = make_napari_viewer()
    viewer.add_image(image, name="nuclei")
    _, w = viewer.window.add_plugin_dock_widget("napari-oaims", "OAIMS annotator")
    assert isinstance(w, AnnotatorWidget)
    wait(qtbot, w, timeout=60_000)  # the shipped model loads in a worker, then the image opens
    assert w.engine is not None and w.image_layer is viewer.layers["nuclei"] and w.session is not None
    w.layers["points"].add(list(centre(labels, 30)))
    wait(qtbot, w)
    assert (w.layers["preview"].data.astype(bool) & target(labels, 30)).any()


def test_resume_session_in_the_widget(make_napari_viewer, qtbot, fresh_engine, nuclei, notes, tmp_path):
    """Save, close, resume in a new viewer: objects, classes and the adapted model come back, and
    the log and object ids go on in the same store."""
    from napari_oaims.store.session_store import SessionStore

    image, labels = nuclei
    fresh_engine.adaptation = "pi"
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image, name="nuclei")
    path = tmp_path / "resume.oaims.zarr"
    for k, cls in ((10, "nucleus"), (40, "mitosis")):
        w.layers["points"].add(list(centre(labels, k)))
        wait(qtbot, w)
        w.annotate_panel.class_choice.setCurrentText(cls)
        w.accept()
        wait(qtbot, w)
        if k == 10:
            w.save_session(path)
            wait(qtbot, w)
    saved_labels = np.array(w.layers["objects"].data)
    updates, weights = fresh_engine.updates, fresh_engine.weights_hash
    n_events = len(w.session.events)
    assert updates == 2  # one PI step per object: an uncorrected accept learns no stage 2
    w.close()
    viewer.close()

    fresh_engine.reset()  # the resumed session brings the adapted weights back
    assert fresh_engine.updates == 0
    viewer2 = make_napari_viewer()
    w2 = AnnotatorWidget(viewer2, engine=fresh_engine)
    viewer2.window.add_dock_widget(w2)
    w2.resume_session(path)
    wait(qtbot, w2)
    assert not errors(notes), notes
    assert has(notes, "info", "resumed resume.oaims.zarr: 2 objects")
    assert np.array_equal(w2.layers["objects"].data, saved_labels)
    assert dict(zip(w2.layers["objects"].features["index"], w2.layers["objects"].features["class_name"])) == {
        1: "nucleus",
        2: "mitosis",
    }
    assert fresh_engine.updates == updates and fresh_engine.weights_hash == weights
    assert w2.store is not None and "autosave" in w2.session_panel.store_label.text()
    assert sorted(w2.session.accepted_diameters) == [1, 2]  # object size "auto" remembers them

    w2.layers["points"].add(list(centre(labels, 70)))
    wait(qtbot, w2)
    w2.annotate_panel.class_choice.setCurrentText("mitosis")
    w2.accept()
    wait(qtbot, w2)
    assert set(np.unique(w2.layers["objects"].data)) == {0, 1, 2, 3}
    w2.close()
    reopened = SessionStore.open(path, read_only=True)
    events = reopened.events()
    assert [e["seq"] for e in events] == list(range(len(events))) and len(events) > n_events
    assert {o["id"]: o["class_name"] for o in reopened.objects() if o["area"]} == {
        1: "nucleus",
        2: "mitosis",
        3: "mitosis",
    }
    assert np.array_equal(np.asarray(reopened.labels()), w2.layers["objects"].data)


def test_resume_a_foreign_folder_is_a_notification(make_napari_viewer, qtbot, fresh_engine, notes, tmp_path):
    viewer = make_napari_viewer()
    w = AnnotatorWidget(viewer, engine=fresh_engine)
    (tmp_path / "other.zarr").mkdir()
    (tmp_path / "other.zarr" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    w.resume_session(tmp_path / "other.zarr")
    wait(qtbot, w)
    assert errors(notes) and "other.zarr" in errors(notes)[-1]
    assert w.session is None and w.store is None


def test_autosave_on_a_full_disk_is_a_notification(make_napari_viewer, qtbot, fresh_engine, nuclei, notes, tiny_disk):
    """A full disk while autosaving: a warning notification, the work goes on in memory, an info
    notification once space is back, and then everything is on disk (256 KiB tmpfs; needs root)."""
    import os

    from napari_oaims.store.session_store import SessionStore

    from conftest import fill_disk

    image, labels = nuclei
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image[:128, :128], name="crop")
    path = tiny_disk / "s.oaims.zarr"
    w.save_session(path)
    wait(qtbot, w)
    assert w.store is not None
    fill_disk(tiny_disk / "filler")
    crop = labels[:128, :128]
    click = list(click_in_region(crop == np.bincount(crop.ravel())[1:].argmax() + 1))
    for _ in range(30):  # enough events to overflow what still fits
        w.layers["points"].add(click)
        wait(qtbot, w)
        w.undo()
        wait(qtbot, w)
        if w.store.error is not None:
            break
    qtbot.waitUntil(lambda: has(notes, "warning", "autosave to s.oaims.zarr failed"), timeout=5000)
    assert "FAILING" in w.session_panel.store_label.text() and not errors(notes)
    os.remove(tiny_disk / "filler")
    w.layers["points"].add(click)
    wait(qtbot, w)
    qtbot.waitUntil(lambda: has(notes, "info", "works again"), timeout=5000)
    assert "FAILING" not in w.session_panel.store_label.text()
    events = [e["seq"] for e in w.session.events]
    w.close()
    assert [e["seq"] for e in SessionStore.open(path, read_only=True).events()] == events


# -- a new user's first hour ---------------------------------------------------------------------
def choose(qtbot, w, name):
    """Pick ``name`` in the image dropdown, as a user does."""
    choice = w.session_panel.image_choice
    index = choice.findText(name)
    assert index >= 0, [choice.itemText(i) for i in range(choice.count())]
    choice.setCurrentIndex(index)
    choice.activated.emit(index)
    wait(qtbot, w)


def test_docked_before_any_image_then_every_image_choice_starts_a_session(make_napari_viewer, qtbot, nuclei, notes):
    from napari_oaims.plugin.widget.session_panel import CHOOSE_ITEM, NO_IMAGE_ITEM
    from napari_oaims.plugin.widget.status import CHOOSE_IMAGE, NO_IMAGE

    image, labels = nuclei
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-oaims", "OAIMS annotator")  # no image yet
    wait(qtbot, w, timeout=60_000)
    assert w.engine is not None and w.session is None
    assert NO_IMAGE in w.status.text() and w.session_panel.image_choice.currentText() == NO_IMAGE_ITEM

    first = viewer.add_image(image, name="nuclei")  # File > Open, drag and drop, or a script
    wait(qtbot, w)
    assert w.image_layer is first and w.session is not None and NO_IMAGE not in w.status.text()
    assert w.session_panel.image_choice.currentText() == "nuclei"
    w.layers["points"].add(list(centre(labels, 30)))
    wait(qtbot, w)
    assert (w.layers["preview"].data.astype(bool) & target(labels, 30)).any()

    second = viewer.add_image(image[:, ::-1].copy(), name="flipped")  # opened later: does not take over
    wait(qtbot, w)
    assert w.image_layer is first
    choose(qtbot, w, "flipped")
    assert w.image_layer is second and w.session is not None
    choose(qtbot, w, "nuclei")  # back to the first, then the same one again: still annotated
    choose(qtbot, w, "nuclei")
    assert w.image_layer is first and w.session is not None

    viewer.layers.remove(first)
    wait(qtbot, w)
    assert w.session is None and CHOOSE_IMAGE in w.status.text()
    assert w.session_panel.image_choice.currentText() == CHOOSE_ITEM
    choose(qtbot, w, "flipped")
    assert w.image_layer is second and w.session is not None and CHOOSE_IMAGE not in w.status.text()
    assert not errors(notes), notes


def click_canvas(viewer, qtbot) -> None:
    """A real left click at the middle of the canvas."""
    from qtpy.QtCore import QPoint, Qt
    from qtpy.QtTest import QTest

    canvas = viewer.window._qt_viewer.canvas.native
    at = QPoint(canvas.width() // 2, canvas.height() // 2)
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    qtbot.wait(20)


def test_the_3d_view_says_that_clicks_there_are_not_prompts(make_napari_viewer, qtbot, fresh_engine, notes):
    from napari_oaims.plugin.widget.status import VIEW_3D

    image, _ = volume(np.random.default_rng(0))
    viewer = make_napari_viewer(show=True)
    w = start(viewer, qtbot, fresh_engine, image)
    click_canvas(viewer, qtbot)  # 2D: a click is a prompt
    wait(qtbot, w)
    assert [e["kind"] for e in w.session.events][-2:] == ["click", "predict"] and VIEW_3D not in w.status.text()
    w.clear()
    wait(qtbot, w)
    events = len(w.session.events)

    viewer.dims.ndisplay = 3
    wait(qtbot, w)
    assert has(notes, "info", "3D view: clicks here are not prompts") and VIEW_3D in w.status.text()
    click_canvas(viewer, qtbot)
    wait(qtbot, w)
    assert has(notes, "warning", "click ignored. 3D view") and len(w.layers["points"].data) == 0
    w.layers["shapes"].add(np.array([[10, 10, 10], [10, 20, 20]]), shape_type="path")
    wait(qtbot, w)
    assert has(notes, "warning", "shape ignored. 3D view") and len(w.layers["shapes"].data) == 0
    assert len(w.session.events) == events and not errors(notes)

    viewer.dims.ndisplay = 2
    wait(qtbot, w)
    assert VIEW_3D not in w.status.text()
    click_canvas(viewer, qtbot)
    wait(qtbot, w)
    assert w.session.events[-1]["kind"] == "predict"


def test_every_control_explains_itself_and_the_dock_leaves_room(make_napari_viewer, qtbot, fresh_engine, nuclei):
    from qtpy.QtWidgets import QAbstractButton, QComboBox

    from napari_oaims.plugin.widget.model_panel import OBJECT_SIZES

    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1100, 800)
    w = start(viewer, qtbot, fresh_engine, nuclei[0], name="nuclei")
    qtbot.wait(100)
    controls = w.findChildren(QAbstractButton) + w.findChildren(QComboBox)
    assert len(controls) >= 17
    missing = [c.text() if isinstance(c, QAbstractButton) else c.currentText() for c in controls if not c.toolTip()]
    assert not missing
    for name in ("load_weights", "save_weights", "reset"):
        assert "weights" in w.model_panel.buttons[name].toolTip()
    assert w.model_panel.device_choice.toolTip() and w.status.toolTip()
    assert [label for label, _ in OBJECT_SIZES][0] == "model default"
    canvas = viewer.window._qt_viewer.canvas.native
    assert w.width() <= 320 and canvas.width() >= 450, (w.width(), canvas.width())
    w.sections["model"].set_expanded(False)  # sections fold away
    assert not w.model_panel.isVisible() and w.sections["model"].header.isVisible()
    w.sections["model"].header.click()
    assert w.model_panel.isVisible()


def test_channels_and_pixels_without_signal_in_the_widget(make_napari_viewer, qtbot, fresh_engine, nuclei, notes):
    image, labels = nuclei
    viewer = make_napari_viewer()
    five = np.stack([image[:256, :256].astype(np.float32)] * 5, axis=-1)  # shown as 256 planes of 256 x 5
    w = start(viewer, qtbot, fresh_engine, five, name="five channels")
    assert w.session is None and has(notes, "ERROR", "looks like 5 channels")
    assert has(notes, "ERROR", "channel_axis=-1")
    split = viewer.add_image(five, channel_axis=-1, name=[f"c{i}" for i in range(5)])
    w.set_image(split[0])
    wait(qtbot, w)
    assert w.session is not None and w.session.spatial_shape == (256, 256)

    holes = image.astype(np.float32)
    holes[200:300, 200:300] = np.nan
    w.set_image(viewer.add_image(holes, name="holes"))
    wait(qtbot, w)
    points = w.layers["points"]
    points.add([250, 250])
    wait(qtbot, w)
    assert has(notes, "WARNING", "no signal at (250, 250)") and len(points.data) == 0
    assert not any(e["kind"] == "click" for e in w.session.events)
    points.add(list(centre(labels, 30)))
    wait(qtbot, w)
    assert w.session.events[-1]["kind"] == "predict" and w.layers["preview"].data.any()


def test_file_open_of_a_session_needs_no_choice_of_readers(
    make_napari_viewer, qtbot, fresh_engine, nuclei, notes, napari_settings, tmp_path
):
    from napari_oaims.plugin.reader import FOLDER_PATTERN
    from napari_oaims.store.session_store import SessionStore

    image, labels = nuclei
    s = fresh_engine.session(image)
    path = tmp_path / "cells.oaims.zarr"
    SessionStore.create(path, image, engine=fresh_engine, session=s)
    s.click(centre(labels, 30))
    s.accept()
    viewer = make_napari_viewer()
    w = AnnotatorWidget(viewer, engine=fresh_engine)  # the annotator makes its reader napari's choice
    viewer.window.add_dock_widget(w, name="OAIMS annotator")
    assert napari_settings.plugins.extension2reader[FOLDER_PATTERN] == "napari-oaims"
    viewer.open(str(path), plugin=None)  # as File > Open and drag and drop choose the reader
    wait(qtbot, w)
    assert [layer.name for layer in viewer.layers] == [
        "cells",
        "cells objects",
        "cells clicks",
        "cells boxes and scribbles",
    ]
    assert has(notes, "info", "Resume session") and w.session is None  # a saved session is resumed, not restarted
    assert not errors(notes)
