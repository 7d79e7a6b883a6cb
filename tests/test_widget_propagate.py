"""Propagation through a stack and the next-slice suggestion in the annotator widget (real napari
viewer, real engine, a tiny procedural stack)."""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_oaims.plugin.widget.stack import stack_axis  # noqa: E402
from napari_oaims.simulate.clicks import click_in_region  # noqa: E402
from napari_oaims.training.volumes import VolumeSpec, make_volume  # noqa: E402
from widget_helpers import *  # noqa: E402, F403 - the shared fixtures
from widget_helpers import errors, has, start, wait  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def blob():
    """A 12-slice stack with one object on slices 2..9 (flat ends) and a neighbour; its largest slice."""
    image, labels = make_volume(VolumeSpec(kind="abrupt", shape=(12, 48, 48), seed=3, neighbours=1, blur=0.8))
    target = labels == 1
    return image, target, int(np.argmax(target.sum((1, 2))))


def anchor(viewer, qtbot, w, target, z, t=None):
    """A click at the centre of the object on slice ``z`` (of time point ``t``), as a user gives it."""
    lead = () if t is None else (t,)
    viewer.dims.set_current_step(len(lead), z)
    y, x = click_in_region(target[z])
    w.layers["points"].add([*lead, z, y, x])
    wait(qtbot, w)
    assert w.session.events[-1]["kind"] == "predict"


def slices_with_mask(data) -> list[int]:
    return [int(z) for z in np.flatnonzero(np.asarray(data).any(axis=(-2, -1)))]


def test_propagate_shows_slices_as_they_come_undo_takes_it_back_accept_paints_3d(
    make_napari_viewer, qtbot, fresh_engine, blob, notes
):
    image, target, z = blob
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image, name="stack")
    button = w.annotate_panel.buttons["propagate"]
    assert (
        button.isEnabled() and "along axis 0" in button.toolTip() and not w.annotate_panel.buttons["cancel"].isEnabled()
    )
    anchor(viewer, qtbot, w, target, z)
    preview = w.layers["preview"]
    assert slices_with_mask(preview.data) == [z]
    redrawn = []  # napari redraws the slice on screen only (the others are read when shown)
    preview.events.labels_update.connect(lambda e: redrawn.append(w.stack.running))
    viewer.dims.set_current_step(0, z + 1)

    w.annotate_panel.method_choice.setCurrentIndex(w.annotate_panel.method_choice.findData("frozen"))
    button.click()
    assert w.jobs.busy and not button.isEnabled()  # the click returned at once: the propagation runs in a worker
    seen = []  # the slices of the preview with a mask, while the propagation runs

    def look() -> bool:
        if w.stack.running:
            seen.append(tuple(slices_with_mask(preview.data)))
        return not w.jobs.busy

    qtbot.waitUntil(look, timeout=30_000)
    wait(qtbot, w)
    assert len(set(seen)) >= 3  # slices appeared one by one
    assert any(redrawn)  # the slice on screen was redrawn when its mask came
    propagated = w.session.mask
    assert np.array_equal(preview.data.astype(bool), propagated)
    zs = slices_with_mask(propagated)
    assert len(zs) >= 5 and z in zs and w.session.events[-1]["kind"] == "propagate"
    assert w.session.events[-1]["extra"]["method"] == "frozen" and not errors(notes)
    assert button.isEnabled() and not w.annotate_panel.buttons["cancel"].isEnabled()

    w.editor.undo()  # the whole propagation is one step
    wait(qtbot, w)
    assert slices_with_mask(preview.data) == [z] and np.array_equal(preview.data.astype(bool), w.session.mask)
    w.editor.redo()
    wait(qtbot, w)
    assert np.array_equal(preview.data.astype(bool), propagated)

    w.editor.accept()  # the 3D object goes into the objects layer, as a 2D one does
    wait(qtbot, w)
    objects = w.layers["objects"].data
    assert np.array_equal(objects == 1, propagated) and not preview.data.any()
    w.editor.undo()
    wait(qtbot, w)
    assert not w.layers["objects"].data.any()
    assert not errors(notes)


def test_cancel_leaves_everything_as_it_was(make_napari_viewer, qtbot, fresh_engine, blob, notes):
    image, target, z = blob
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image, name="stack")
    anchor(viewer, qtbot, w, target, z)
    preview = w.layers["preview"]
    before = preview.data.copy(), w.session.mask.copy(), len(w.session.events)
    cancel = w.annotate_panel.buttons["cancel"]
    bar = w.annotate_panel.progress_bar
    for run in ("first", "again"):
        w.stack.propagate("ema")  # slow enough to be stopped midway
        qtbot.waitUntil(lambda: w.stack.running and len(slices_with_mask(preview.data)) > 1, timeout=30_000)
        assert cancel.isEnabled() and not bar.isHidden()  # a propagated slice is shown already
        cancel.click()
        wait(qtbot, w)
        assert has(notes, "info", "propagation cancelled"), run
        assert np.array_equal(preview.data, before[0]) and np.array_equal(w.session.mask, before[1]), run
        assert len(w.session.events) == before[2] and not cancel.isEnabled() and bar.isHidden()
    w.editor.undo()  # the last step is still the click
    wait(qtbot, w)
    assert not preview.data.any() and not w.session.mask.any()
    assert not errors(notes)


def test_closing_the_widget_mid_propagation_stops_it_quietly(make_napari_viewer, qtbot, fresh_engine, blob, notes):
    image, target, z = blob
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image, name="stack")
    anchor(viewer, qtbot, w, target, z)
    events = len(w.session.events)
    session = w.session
    w.stack.propagate("ema")
    qtbot.waitUntil(lambda: w.stack.running, timeout=30_000)
    w.close()
    qtbot.waitUntil(lambda: w.jobs.running is None, timeout=30_000)
    assert len(session.events) == events and not errors(notes)


def test_a_correction_on_a_propagated_slice_is_kept_by_the_next_propagation(
    make_napari_viewer, qtbot, fresh_engine, blob, notes
):
    image, target, z = blob
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image, name="stack")
    anchor(viewer, qtbot, w, target, z)
    w.stack.propagate("copy")
    wait(qtbot, w)
    end = max(slices_with_mask(w.session.mask))
    assert end > z + 1
    viewer.dims.set_current_step(0, end)  # the object should not reach this far: a negative click ends it
    y, x = (int(v) for v in np.argwhere(w.session.mask[end])[0])
    w.set_positive(False)
    w.layers["points"].add([end, y, x])
    wait(qtbot, w)
    assert not w.layers["preview"].data[end, y, x]
    w.stack.propagate("copy")
    wait(qtbot, w)
    shown = w.layers["preview"].data.astype(bool)
    assert np.array_equal(shown, w.session.mask) and not shown[end, y, x]
    assert len(w.layers["points"].data) == 2  # both clicks are shown, on their slices
    assert not errors(notes)


def test_suggest_next_slice_moves_the_viewer(make_napari_viewer, qtbot, fresh_engine, blob, notes):
    image, target, z = blob
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image, name="stack")
    anchor(viewer, qtbot, w, target, z)
    w.stack.suggest()  # nothing propagated yet: nothing to check
    wait(qtbot, w)
    assert has(notes, "info", "nothing uncertain") and viewer.dims.current_step[0] == z
    w.stack.propagate("frozen")
    wait(qtbot, w)
    expected = w.session.suggest_slice(axis=0)
    assert expected is not None and expected != z
    w.annotate_panel.buttons["suggest"].click()
    wait(qtbot, w)
    assert viewer.dims.current_step[0] == expected
    assert not errors(notes)


def test_a_2d_image_has_no_stack_actions_and_bad_states_are_notifications(
    make_napari_viewer, qtbot, fresh_engine, nuclei, blob, notes
):
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, nuclei[0][:128, :128], name="flat")
    for name in ("propagate", "suggest"):
        button = w.annotate_panel.buttons[name]
        assert not button.isEnabled() and "2D" in button.toolTip() and "propagation needs a stack" in button.toolTip()
    w.stack.propagate()  # from a script: a warning, nothing runs
    assert has(notes, "warning", "cannot propagate: the image is 2D") and not w.jobs.busy

    image, target, z = blob
    w.set_image(viewer.add_image(image, name="stack"))
    wait(qtbot, w)
    assert w.annotate_panel.buttons["propagate"].isEnabled()
    events = len(w.session.events)
    w.annotate_panel.buttons["propagate"].click()  # no prompt yet
    wait(qtbot, w)
    assert has(notes, "error", "nothing to propagate: prompt the object on a slice first")
    assert len(w.session.events) == events and not w.layers["preview"].data.any()
    assert w.annotate_panel.buttons["propagate"].isEnabled()  # ready again after the error


def test_the_axis_follows_the_slider_moved_last(make_napari_viewer, qtbot, fresh_engine, blob, notes):
    image, target, z = blob
    timelapse = np.stack([image, np.roll(image, 1, axis=2)])  # t, z, y, x
    moving = np.stack([target, np.roll(target, 1, axis=2)])
    assert stack_axis((2, 12, 48, 48), (2, 3), None) == 1 and stack_axis((1, 12, 48, 48), (2, 3), 0) == 1
    assert stack_axis((48, 48), (0, 1), None) is None
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, timelapse, name="timelapse")
    assert w.stack.axis() == 1  # z by default
    viewer.dims.set_current_step(0, 1)  # the user moves the t slider
    assert w.stack.axis() == 0 and "along axis 0" in w.annotate_panel.buttons["propagate"].toolTip()
    viewer.dims.set_current_step(0, 0)
    anchor(viewer, qtbot, w, moving[0], z, t=0)
    assert w.stack.axis() == 1  # the z slider moved last
    viewer.dims.set_current_step(0, 1)
    w.stack.propagate("copy")  # along t: the slice's mask goes to the other time point, no other slice
    wait(qtbot, w)
    shown = w.layers["preview"].data.astype(bool)
    assert shown[1, z].any() and not np.delete(shown[1], z, axis=0).any()
    assert np.array_equal(shown, w.session.mask) and w.session.events[-1]["extra"]["axis"] == 0
    assert not errors(notes)
