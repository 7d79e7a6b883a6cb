"""The annotator widget in a real napari viewer with the real engine: clicks, keys, undo, model controls."""

from __future__ import annotations

import time

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_oaims.adapt import ADAPTERS, Adapter  # noqa: E402
from napari_oaims.plugin.widget import KEYS  # noqa: E402
from widget_helpers import *  # noqa: E402, F403 - the shared fixtures
from widget_helpers import centre, click_in_region, errors, has, press, start, target, wait  # noqa: E402

from conftest import blind_engine  # noqa: E402

pytestmark = pytest.mark.gui


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
    assert w.editor.last_latency_ms is not None and "latency" in w.status.text() and "device cpu" in w.status.text()
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
    w.editor.accept()
    wait(qtbot, w)
    assert set(np.unique(objects.data)) == {0, 1}
    assert ((objects.data == 1) == mask).all()
    assert not preview.data.any() and len(points.data) == 0
    assert list(objects.features["class_name"]) == ["nucleus"] and list(objects.features["index"]) == [1]

    size = w.session.accepted_diameters[1]
    assert size == pytest.approx(2 * np.sqrt(mask.sum() / np.pi), abs=0.01)
    w.editor.undo()  # takes the accepted object back; its size no longer counts for object size "auto"
    wait(qtbot, w)
    assert not objects.data.any() and w.session.accepted_diameters == {}
    w.editor.redo()
    wait(qtbot, w)
    assert set(np.unique(objects.data)) == {0, 1} and w.session.accepted_diameters == {1: size}
    # both are in the log, so a replay of the session withdraws and reinstates the size too
    assert [(e["kind"], e["object"]) for e in w.session.events[-2:]] == [("withdraw", 1), ("reinstate", 1)]

    # a second object, its click undone and redone
    points.add(list(centre(labels, 60)))
    wait(qtbot, w)
    assert preview.data.any()
    w.editor.undo()
    wait(qtbot, w)
    assert not preview.data.any() and len(points.data) == 0
    w.editor.redo()
    wait(qtbot, w)
    assert preview.data.any() and len(points.data) == 1
    w.editor.clear()
    wait(qtbot, w)
    assert not preview.data.any() and len(points.data) == 0
    w.editor.undo()
    wait(qtbot, w)
    assert preview.data.any()
    w.editor.next_object()  # accepts it
    wait(qtbot, w)
    assert set(np.unique(objects.data)) == {0, 1, 2}
    assert not errors(notes)

    store = pytest.importorskip("napari_oaims.store.session_store")
    path = tmp_path / "nuclei.oaims.zarr"
    w.session_panel.save_session(path)
    wait(qtbot, w)
    panel = w.session_panel
    assert path.is_dir() and panel.store is not None and "autosave" in panel.store_label.text(), notes
    saved = store.SessionStore.open(path, read_only=True)
    assert np.array_equal(np.asarray(saved.labels()), objects.data)
    assert {o["id"]: o["class_name"] for o in saved.objects()} == {1: "nucleus", 2: "nucleus"}

    points.add(list(centre(labels, 90)))  # autosaved from now on
    wait(qtbot, w)
    w.annotate_panel.class_choice.setCurrentText("other")
    w.editor.accept()
    wait(qtbot, w)
    assert set(np.unique(objects.data)) == {0, 1, 2, 3}
    saved = store.SessionStore.open(path, read_only=True)
    assert np.array_equal(np.asarray(saved.labels()), objects.data)
    assert {o["id"]: o["class_name"] for o in saved.objects()}[3] == "other"
    assert [e["kind"] for e in saved.events()].count("accept") == 3
    w.editor.undo()  # the accepted object is taken back, on disk too
    wait(qtbot, w)
    assert np.array_equal(np.asarray(store.SessionStore.open(path, read_only=True).labels()), objects.data)

    # reopen through the plugin's reader
    opened = viewer.open(str(path), plugin="napari-oaims")
    reopened = [layer for layer in opened if isinstance(layer, napari.layers.Labels)]
    assert len(reopened) == 1 and np.array_equal(np.asarray(reopened[0].data), objects.data)
    assert not errors(notes)


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
    w.editor.accept()
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
    w.editor.undo()
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
    w.editor.accept()
    wait(qtbot, w)
    first = objects.data == 1
    ys, xs = np.nonzero(first)
    w.layers["shapes"].add(
        np.array([[ys.min() - 3, xs.min() - 3], [ys.max() + 3, xs.max() + 3]]), shape_type="rectangle"
    )  # the same nucleus again
    wait(qtbot, w)
    w.annotate_panel.overwrite_check.setChecked(True)  # the new object may take the first one's pixels
    w.editor.accept()
    wait(qtbot, w)
    assert (objects.data[first] == 2).any()
    w.editor.undo()
    wait(qtbot, w)
    assert np.array_equal(objects.data == 1, first) and not (objects.data == 2).any()
    w.editor.redo()
    wait(qtbot, w)
    assert (objects.data[first] == 2).any()


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
    w.editor.accept()
    qtbot.waitUntil(lambda: w.jobs.running is not None and w.jobs.running.thread, timeout=5000)
    t0 = time.perf_counter()
    first, second = centre(labels, 60), centre(labels, 61)
    points.add(list(first))
    w.set_positive(False)
    points.add(list(second))
    assert time.perf_counter() - t0 < 0.5  # the viewer did not wait for the update
    assert w.jobs.busy and w.jobs.waiting == 2 and "queued" in w.status.text()
    wait(qtbot, w)
    clicks = [e for e in w.session.events if e["kind"] == "click" and e["object"] == 2]
    assert [tuple(c["coords"]) for c in clicks] == [tuple(first), tuple(second)]
    assert [c["label"] for c in clicks] == [1, 0]
    seqs = {e["kind"]: e["seq"] for e in reversed(w.session.events)}  # first of each kind
    assert seqs["update"] < clicks[0]["seq"]  # the queued clicks ran after the update
    assert w.layers["preview"].data.any() and w.layers["objects"].data.max() == 1


def test_a_prompt_answered_with_background_says_what_to_do(make_napari_viewer, qtbot, fresh_engine, nuclei, notes):
    image, labels = nuclei
    w = start(make_napari_viewer(), qtbot, fresh_engine, image)
    w.layers["points"].add(list(centre(labels, 30)))
    wait(qtbot, w)
    assert w.layers["preview"].data.any() and not has(notes, "info", "found no object")
    w = start(make_napari_viewer(), qtbot, blind_engine(fresh_engine), image)
    w.layers["points"].add(list(centre(labels, 30)))
    wait(qtbot, w)
    assert w.layers["preview"].data.any()  # never empty: the region of similar values under the click
    assert has(notes, "info", "the model found no object at this prompt; showing the region of similar values")
    assert has(notes, "info", "Undo it [U]") and not errors(notes)
    seen = len(notes)
    w.set_positive(False)
    w.layers["points"].add(list(centre(labels, 31)))  # background is the right answer to a negative click
    wait(qtbot, w)
    assert len(w.session.prompts(())) == 2 and not any("found no object" in m for _, m in notes[seen:])


def test_model_controls(make_napari_viewer, qtbot, fresh_engine, nuclei, notes, tmp_path):
    image, _ = nuclei
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image)
    labels = [w.model_panel.adaptation_choice.itemText(i) for i in range(w.model_panel.adaptation_choice.count())]
    assert [w.model_panel.adaptation_choice.itemData(i) for i in range(len(labels))] == ["none", "mi", "pi", "oaims"]
    for name in ("mi", "pi", "oaims"):
        w.model_panel.set_adaptation(name)
        wait(qtbot, w)
        if name in ADAPTERS:
            assert w.engine.adaptation == name and w.model_panel.adaptation_choice.currentData() == name
        else:
            assert has(notes, "WARNING", f"adaptation '{name}' is not available")
            assert w.engine.adaptation == "none" and w.model_panel.adaptation_choice.currentData() == "none"
    w.model_panel.set_adaptation("none")
    wait(qtbot, w)

    devices = w.model_panel.device_choice.model()
    import torch

    assert devices.item(w.model_panel.device_choice.findText("cpu")).isEnabled()
    assert devices.item(w.model_panel.device_choice.findText("cuda")).isEnabled() == torch.cuda.is_available()

    w.model_panel.save_weights(tmp_path / "adapted")
    wait(qtbot, w)
    assert (tmp_path / "adapted.safetensors").exists() and has(notes, "INFO", "saved weights")
    # Object size: the first click's window is four diameters, "auto", or the weights' own ("auto").
    assert w.model_panel.size_choice.currentData() is None and w.engine.first_window == "auto"
    w.model_panel.set_object_size("auto")
    assert w.engine.first_window == "auto"
    assert w.model_panel.size_choice.currentText() == "auto (learnt from accepted objects)"
    w.model_panel.set_object_size(25)
    assert w.engine.first_window == 100 and w.model_panel.size_choice.currentText() == "about 25 px across"
    with pytest.raises(ValueError, match="object size"):
        w.model_panel.set_object_size(-3)
    assert w.engine.first_window == 100
    old = w.engine
    w.model_panel.load_weights(tmp_path / "adapted.safetensors")
    wait(qtbot, w)
    assert w.engine is not old and w.session.engine is w.engine and w.engine.weights_hash == old.weights_hash
    assert w.engine.first_window == 100  # the choice carries over to loaded weights
    # Edges: "auto" unless chosen; the choice reaches the engine and carries over to loaded weights.
    assert w.engine.edges == "auto" and w.model_panel.edges_choice.currentData() == "auto"
    w.model_panel.set_edges("never")
    assert w.engine.edges == "never" and w.model_panel.edges_choice.currentText() == "never"
    with pytest.raises(ValueError, match="edges must be one of"):
        w.model_panel.set_edges("sometimes")
    w.model_panel.load_weights(tmp_path / "adapted.safetensors")
    wait(qtbot, w)
    assert w.engine.edges == "never"
    snap = w.model_panel.edges_choice.findData("snap")  # the dropdown itself, as a user picks it
    w.model_panel.edges_choice.setCurrentIndex(snap)
    w.model_panel.edges_choice.activated.emit(snap)
    assert w.engine.edges == "snap" and w.model_panel.edges_choice.currentText().startswith("snap")
    w.model_panel.set_edges("auto")
    w.model_panel.set_object_size(None)
    assert w.engine.first_window == "auto"  # the loaded weights' own
    w.model_panel.size_choice.setCurrentIndex(4)  # the dropdown itself, as a user picks it
    w.model_panel.size_choice.activated.emit(4)
    assert w.engine.first_window == 200
    w.model_panel.size_choice.setCurrentIndex(0)
    w.model_panel.size_choice.activated.emit(0)
    assert w.engine.first_window == "auto"
    w.model_panel.load_weights(tmp_path / "missing.safetensors")
    wait(qtbot, w)
    assert has(notes, "ERROR", "load weights") and w.session.engine is w.engine
    w.model_panel.reset_model()
    wait(qtbot, w)
    assert has(notes, "INFO", "model reset")
    w.model_panel.set_device("cpu")
    wait(qtbot, w)
    assert str(w.engine.device) == "cpu" and w.session.engine is w.engine


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


def test_the_annotator_says_when_answers_start_to_follow_edges(make_napari_viewer, qtbot, fresh_engine, notes):
    """Thin dark cavities: the model cuts them short, so once three objects were accepted as they
    truly are, answers follow the image's edges, and the annotator says so once."""
    from napari_oaims.evaluation.suites import suite

    from conftest import largest_ids

    image, labels = suite("cavities", seed=0, tiles=(1, 2))
    ids = largest_ids(labels, 4)
    w = start(make_napari_viewer(), qtbot, fresh_engine, image)
    for i in ids[:3]:
        w.layers["points"].add(list(click_in_region(labels == i)))
        wait(qtbot, w)
        w.session.set_mask(labels == i)  # the user corrected the object to what it is
        w.editor.accept()
        wait(qtbot, w)
    assert sum("now grow along the image's edges" in m for _, m in notes) == 1
    w.layers["points"].add(list(click_in_region(labels == ids[3])))
    wait(qtbot, w)
    assert w.session.events[-1]["extra"].get("followed_edges") is True
    assert not errors(notes)
