"""The plugin's bundled 3D sample in a real napari viewer: one click on each nucleus's middle slice
and one propagation, and *Propagate all* from one annotated slice (one undo step, cancel, the
progress bar, one redraw of the objects layer)."""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from qtpy.QtCore import QTimer  # noqa: E402

from napari_oaims.evaluation.metrics import dice  # noqa: E402
from napari_oaims.plugin.sample_data import volume_3d  # noqa: E402
from napari_oaims.simulate.clicks import click_in_region  # noqa: E402
from widget_helpers import *  # noqa: E402, F403 - the shared fixtures
from widget_helpers import errors, has, start, wait  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def sample():
    (image, _, _), (labels, _, _) = volume_3d()
    return image, labels


def seeds_slice(labels: np.ndarray) -> int:
    """The slice holding the most nuclei (then the most labelled pixels)."""
    return int(np.argmax([len(np.unique(p)) * 10**6 + np.count_nonzero(p) for p in labels]))


def test_one_click_per_nucleus_and_one_propagation(make_napari_viewer, qtbot, fresh_engine, sample, notes):
    image, labels = sample
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image, name="volume")
    rows = []
    for lab in range(1, int(labels.max()) + 1):
        truth = labels == lab
        zs = np.flatnonzero(truth.any((1, 2)))
        z = int((zs[0] + zs[-1]) // 2)
        viewer.dims.set_current_step(0, z)
        w.layers["points"].add([z, *click_in_region(truth[z])])
        wait(qtbot, w)
        anchor = dice(w.session.plane_mask((z,)), truth[z])
        w.annotate_panel.buttons["propagate"].click()
        wait(qtbot, w, timeout=120_000)
        propagated = w.session.mask.copy()
        propagated[z] = False
        # the nuclei accepted before are barriers: no propagated slice takes their voxels
        assert not (propagated & (np.asarray(w.layers["objects"].data) > 0)).any()
        object_id = w.session.object_id
        w.editor.next_object()
        wait(qtbot, w)
        kept = np.asarray(w.layers["objects"].data) == object_id
        rows.append((lab, anchor, dice(kept, truth), int((kept & (labels > 0) & ~truth).sum()), int(truth.sum())))
    print("nucleus, anchor slice Dice, accepted 3D Dice, voxels in other nuclei, voxels:", rows)
    assert not errors(notes)
    # Each nucleus as accepted: the ones before it keep their voxels (nucleus 6's click also
    # takes parts of nuclei 1 and 4 on its own slice).
    assert min(r[2] for r in rows) >= 0.85
    assert sum(r[3] <= 0.05 * r[4] for r in rows) >= len(rows) - 1
    # "accept over other objects" ticked: the propagation may carry the object into them
    w.annotate_panel.overwrite_check.setChecked(True)
    truth = labels == 6
    zs = np.flatnonzero(truth.any((1, 2)))
    z = int((zs[0] + zs[-1]) // 2)
    viewer.dims.set_current_step(0, z)
    w.layers["points"].add([z, *click_in_region(truth[z])])
    wait(qtbot, w)
    w.annotate_panel.buttons["propagate"].click()
    wait(qtbot, w, timeout=120_000)
    propagated = w.session.mask.copy()
    propagated[z] = False
    assert (propagated & (np.asarray(w.layers["objects"].data) > 0)).sum() > 100
    assert w.session.events[-1]["extra"]["barrier"] is False


def test_propagate_all_from_one_annotated_slice(make_napari_viewer, qtbot, fresh_engine, sample, notes):
    image, labels = sample
    z = seeds_slice(labels)
    ids = [int(v) for v in np.unique(labels[z]) if v]
    viewer = make_napari_viewer()
    w = start(viewer, qtbot, fresh_engine, image, name="volume")
    button = w.annotate_panel.buttons["propagate_all"]
    viewer.dims.set_current_step(0, z)
    button.click()  # no object on the slice yet: a notice, nothing runs
    wait(qtbot, w)
    assert has(notes, "warning", "no object on this slice")
    objects = w.layers.objects()
    objects.data[z] = labels[z]  # every nucleus of one slice annotated
    objects.refresh()
    before = np.array(objects.data)

    button.click()
    assert w.jobs.busy and not button.isEnabled()
    w.annotate_panel.buttons["cancel"].click()
    wait(qtbot, w, timeout=120_000)
    assert np.array_equal(objects.data, before) and has(notes, "info", "cancelled")

    bar, seen, redraws = w.annotate_panel.progress_bar, [], []
    objects.events.set_data.connect(lambda event: redraws.append(1))

    def watch() -> None:  # while it runs: the panel's bar, with a range (a busy bar redraws at every frame)
        if w.stack.running:
            seen.append((not bar.isHidden(), bar.maximum(), bar.value()))

    timer = QTimer()
    timer.timeout.connect(watch)
    timer.start(20)
    button.click()
    wait(qtbot, w, timeout=120_000)
    timer.stop()
    assert not errors(notes)
    assert seen and all(shown and top >= 1 for shown, top, _ in seen)
    assert max(top for _, top, _ in seen) > 1 and max(value for *_, value in seen) > 0  # it moved
    assert bar.isHidden() and bar.format() == f"{len(ids)} objects: %v / %m slices"
    assert len(redraws) == 1  # the objects land together: one redraw of the layer
    out = np.asarray(objects.data)
    new = [int(v) for v in np.unique(out) if v and v not in ids]
    assert len(new) == len(ids)  # one new accepted object per seed
    scores = []
    for v in new:
        obj = out == v
        seed = int(np.bincount(labels[z][obj[z]]).argmax())
        assert np.array_equal(obj[z], labels[z] == seed)  # the seed is kept exactly
        scores.append(dice(obj, labels == seed))
    print("Propagate all, 3D Dice per nucleus:", [round(s, 3) for s in scores], "mean", round(np.mean(scores), 3))
    assert np.mean(scores) >= 0.85
    w.editor.undo()  # one step takes every propagated object back, with one redraw
    wait(qtbot, w)
    assert np.array_equal(objects.data, before) and len(redraws) == 2
    w.editor.redo()
    wait(qtbot, w)
    assert np.array_equal(objects.data, out) and len(redraws) == 3
