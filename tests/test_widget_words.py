"""What the annotator and the API say: no toast about the plugin's own layer names or a
deliberate image switch, the object size named as in the README, which reading of an ambiguous
image was taken, how to install napari, and saving all layers with napari's own save."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from widget_helpers import *  # noqa: F403
from widget_helpers import centre, start, wait

pytestmark = pytest.mark.gui


def test_switching_images_says_nothing_about_layer_names_or_autosave(
    make_napari_viewer, qtbot, fresh_engine, nuclei, notes, tmp_path
):
    image, labels = nuclei
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image, name="first")
    w.session_panel.save_session(tmp_path / "first.oaims.zarr")
    wait(qtbot, w)
    w.layers["points"].add(list(centre(labels, 3)))
    wait(qtbot, w)
    w.editor.accept()
    wait(qtbot, w)
    second = viewer.add_image(image[:256, :256].copy(), name="second")
    notes.clear()
    w.set_image(second)
    wait(qtbot, w)
    assert w.image_layer is second and "objects [1]" in [layer.name for layer in viewer.layers]
    assert not [m for _, m in notes if "is now called" in m or "stopped" in m], notes
    assert w.session_panel.store is None  # the first session is complete on disk; the second is not saved
    # a layer the user renames is still reported
    w.layers["objects"].name = "my nuclei"
    qtbot.wait(5)
    assert any("now called 'my nuclei'" in m for _, m in notes)


def test_object_size_says_auto_for_the_shipped_weights(make_napari_viewer, qtbot, fresh_engine, nuclei):
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, nuclei[0], name="nuclei")
    assert fresh_engine.first_window == "auto"
    assert w.model_panel.size_choice.currentText() == "auto (model default)"


def test_an_ambiguous_image_says_how_it_was_read(make_napari_viewer, qtbot, fresh_engine, notes):
    data = np.random.default_rng(0).random((256, 256, 4)).astype(np.float32)
    with pytest.warns(UserWarning, match=r"read as 4 channels .*rgb=True") as caught:
        fresh_engine.session(data)
    assert len(caught) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit choice is not a guess: no message
        fresh_engine.session(data, rgb=True)
        fresh_engine.session(data, channel_axis=-1)
        fresh_engine.session((data[:64, :64, :3] * 255).astype(np.uint8))  # 8-bit RGB is not ambiguous
    viewer = make_napari_viewer()
    layer = viewer.add_image(data, name="four")
    assert layer.rgb  # napari shows it as RGBA
    notes.clear()
    w = start(viewer, qtbot, fresh_engine, layer)
    said = [m for _, m in notes if "'four'" in m]
    assert w.session is not None and w.session.source.rgb
    assert len(said) == 1 and "read as RGBA, as napari shows it" in said[0] and "channel_axis=-1" in said[0]


def test_annotate_without_napari_says_what_to_install():
    code = (
        "import sys; sys.modules['napari'] = None\n"  # as if napari were not installed
        "import numpy as np, napari_oaims\n"
        "napari_oaims.annotate(np.zeros((8, 8)))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError:") and 'pip install "napari-oaims[napari]"' in last


def test_saving_all_layers_writes_the_session(make_napari_viewer, qtbot, fresh_engine, nuclei, tmp_path):
    from napari_oaims.store import SessionStore

    image, labels = nuclei
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image, name="nuclei")
    w.layers["points"].add(list(centre(labels, 3)))
    wait(qtbot, w)
    w.editor.accept()
    wait(qtbot, w)
    w.layers["points"].add(list(centre(labels, 5)))  # an object in progress: its preview is not saved
    wait(qtbot, w)
    written = viewer.layers.save(str(tmp_path / "all.oaims.zarr"))
    assert written == [str(tmp_path / "all.oaims.zarr")]
    store = SessionStore.open(tmp_path / "all.oaims.zarr", read_only=True)
    saved = np.asarray(store.labels())
    assert np.array_equal(saved, w.layers["objects"].data) and set(np.unique(saved)) == {0, 1}
    store.close()


def test_the_dock_fits_napari_default_window_with_the_status_line_in_view(
    make_napari_viewer, qtbot, fresh_engine, nuclei
):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1089, 630)  # napari's default window under xvfb-run
    w = start(viewer, qtbot, fresh_engine, nuclei[0], name="nuclei")
    qtbot.wait(100)
    assert not w.sections["model"].expanded  # folded until wanted
    status = w.status
    seen = status.visibleRegion().boundingRect()
    assert status.isVisible() and status.text()
    assert seen.height() == status.height() and seen.width() == status.width()  # not clipped by the dock
    top = status.mapTo(viewer.window._qt_window, status.rect().topLeft())
    assert top.y() >= 0 and top.y() + status.height() <= viewer.window._qt_window.height()
    for name in ("accept", "next", "redo", "propagate", "propagate_all", "cancel"):  # the buttons are in view too
        button = w.annotate_panel.buttons[name]
        seen = button.visibleRegion().boundingRect()
        assert seen.height() == button.height() and seen.width() == button.width(), name
    w.sections["model"].set_expanded(True)  # unfolded, the dock scrolls; the status line stays in view
    qtbot.wait(50)
    assert status.visibleRegion().boundingRect().height() == status.height()
