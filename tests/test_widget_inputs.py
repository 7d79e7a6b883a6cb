"""The annotator widget on stacks, other kinds of images and prompts, and bad input (real napari viewer)."""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_oaims.plugin.api import annotate  # noqa: E402
from napari_oaims.simulate.robot import click_in_region  # noqa: E402
from napari_oaims.training.synth import volume  # noqa: E402
from widget_helpers import *  # noqa: E402, F403 - the shared fixtures
from widget_helpers import centre, click_canvas, errors, has, start, target, wait  # noqa: E402

pytestmark = pytest.mark.gui


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
    w.editor.accept()
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
    w.editor.accept()
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
    w.editor.accept()
    wait(qtbot, w)
    assert w.layers["objects"].data[:, y, :].max() == 1
    viewer.dims.order = (0, 1, 2)  # back to z slices: a new session, objects kept
    wait(qtbot, w)
    assert w.session.source.plane_axes == (1, 2) and w.layers["objects"].data.max() == 1
    assert not errors(notes)


@pytest.mark.slow
def test_the_3d_view_says_that_clicks_there_are_not_prompts(make_napari_viewer, qtbot, fresh_engine, notes):
    from napari_oaims.plugin.widget.status import VIEW_3D

    image, _ = volume(np.random.default_rng(0))
    viewer = make_napari_viewer(show=True)
    w = start(viewer, qtbot, fresh_engine, image)
    click_canvas(viewer, qtbot)  # 2D: a click is a prompt
    wait(qtbot, w)
    assert [e["kind"] for e in w.session.events][-2:] == ["click", "predict"] and VIEW_3D not in w.status.text()
    w.editor.clear()
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
    w.editor.clear()
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
    w.editor.accept()  # nothing to accept
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


@pytest.mark.slow
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
    w.editor.accept()
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
