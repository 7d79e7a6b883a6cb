"""The annotator widget's sessions: opening, choosing images, saving, resuming, autosave (real napari viewer)."""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_oaims.plugin.api import annotate, annotator  # noqa: E402
from napari_oaims.plugin.widget import AnnotatorWidget  # noqa: E402
from napari_oaims.simulate.clicks import correction_clicks  # noqa: E402
from napari_oaims.simulate.robot import click_in_region  # noqa: E402
from widget_helpers import *  # noqa: E402, F403 - the shared fixtures
from widget_helpers import centre, choose, errors, has, start, target, wait  # noqa: E402

pytestmark = pytest.mark.gui


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


@pytest.mark.slow
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
        (fix,) = correction_clicks(w.session.mask, target(labels, k), 1, mode="center")
        w.set_positive(fix.positive)
        w.layers["points"].add([fix.y, fix.x])
        wait(qtbot, w)
        w.set_positive(True)
        w.annotate_panel.class_choice.setCurrentText(cls)
        w.editor.accept()
        wait(qtbot, w)
        if k == 10:
            w.session_panel.save_session(path)
            wait(qtbot, w)
    saved_labels = np.array(w.layers["objects"].data)
    updates, weights = fresh_engine.updates, fresh_engine.weights_hash
    n_events = len(w.session.events)
    assert updates >= 2  # PI learns from each corrected object (an uncorrected accept teaches nothing)
    w.close()
    viewer.close()

    fresh_engine.reset()  # the resumed session brings the adapted weights back
    assert fresh_engine.updates == 0
    viewer2 = make_napari_viewer()
    w2 = AnnotatorWidget(viewer2, engine=fresh_engine)
    viewer2.window.add_dock_widget(w2)
    w2.session_panel.resume_session(path)
    wait(qtbot, w2)
    assert not errors(notes), notes
    assert has(notes, "info", "resumed resume.oaims.zarr: 2 objects")
    assert np.array_equal(w2.layers["objects"].data, saved_labels)
    assert dict(zip(w2.layers["objects"].features["index"], w2.layers["objects"].features["class_name"])) == {
        1: "nucleus",
        2: "mitosis",
    }
    assert fresh_engine.updates == updates and fresh_engine.weights_hash == weights
    assert w2.session_panel.store is not None and "autosave" in w2.session_panel.store_label.text()
    assert sorted(w2.session.accepted_diameters) == [1, 2]  # object size "auto" remembers them

    w2.layers["points"].add(list(centre(labels, 70)))
    wait(qtbot, w2)
    w2.annotate_panel.class_choice.setCurrentText("mitosis")
    w2.editor.accept()
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
    w.session_panel.resume_session(tmp_path / "other.zarr")
    wait(qtbot, w)
    assert errors(notes) and "other.zarr" in errors(notes)[-1]
    assert w.session is None and w.session_panel.store is None


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
    w.session_panel.save_session(path)
    wait(qtbot, w)
    assert w.session_panel.store is not None
    fill_disk(tiny_disk / "filler")
    crop = labels[:128, :128]
    click = list(click_in_region(crop == np.bincount(crop.ravel())[1:].argmax() + 1))
    for _ in range(30):  # enough events to overflow what still fits
        w.layers["points"].add(click)
        wait(qtbot, w)
        w.editor.undo()
        wait(qtbot, w)
        if w.session_panel.store.error is not None:
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
