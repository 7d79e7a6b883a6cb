"""Replay and resume of sessions that propagate objects through a stack: a real model learning at
accept (adaptation "oaims"), the session autosaved to a Zarr folder on disk, ``oaims replay``
reproducing every propagated mask exactly, and a resumed session going on."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from napari_oaims import Engine
from napari_oaims.cli.main import main
from napari_oaims.simulate.clicks import click_in_region, largest_error_component
from napari_oaims.store import SessionStore
from napari_oaims.store.replay import replay
from napari_oaims.training.volumes import VolumeSpec, make_volume

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tubes():
    """A 14-slice stack with three tubes, each over 9 to 13 slices."""
    image, labels = make_volume(VolumeSpec(kind="tube", shape=(14, 48, 48), seed=5, neighbours=2))
    return image, labels


def annotate(session, target: np.ndarray, clicks: int = 3) -> int:
    """Clicks at the largest error of the object's largest slice; returns that slice."""
    z = int(np.argmax(target.sum((1, 2))))
    mask = np.zeros(target.shape, bool)
    for _ in range(clicks):
        err = largest_error_component(mask[z], target[z])
        if err is None:
            break
        mask = session.click((z, *click_in_region(err[0])), positive=err[1]).mask
    return z


def correct(session, mask: np.ndarray, target: np.ndarray) -> int:
    """One click at the largest error of the propagated slice with the most wrong voxels."""
    anchors = {k[0] for k, st in session.planes.items() if st.prompts}
    wrong = (mask ^ target).sum((1, 2))
    wrong[list(anchors)] = 0
    z = int(np.argmax(wrong))
    assert wrong[z] > 0 and not session.prompts((z,))
    err = largest_error_component(mask[z], target[z])
    session.click((z, *click_in_region(err[0])), positive=err[1])
    return z


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, tubes):
    """Object 1: clicks, ema propagation, a correction click on a propagated slice, re-propagation
    with both chains, accept (the model learns). Object 2: an exact seed mask, frozen propagation,
    undone, registration instead, accept. Returns the folder and the accepted masks."""
    image, labels = tubes
    engine = Engine.pretrained(device="cpu", adaptation="oaims")
    s = engine.session(image, plane_axes=(1, 2))
    path = tmp_path_factory.mktemp("replay-propagate") / "stack.oaims.zarr"
    store = SessionStore.create(path, engine=engine, session=s)
    t1 = labels == 1
    annotate(s, t1)
    first = s.propagate(axis=0, method="ema").mask
    zc = correct(s, first, t1)
    # both chains across the gap (the default carries it from the larger anchor only, which
    # changes nothing here): a logged setting at its other value replays too
    second = s.propagate(axis=0, method="ema", cross_from_larger=False)
    assert [zc] in second.info["anchors"] and second.changes and not np.array_equal(second.mask, first)
    h0 = engine.weights_hash
    accepted = {1: s.accept().mask}
    assert engine.weights_hash != h0  # PI learnt from the 3D object
    t2 = labels == 2
    z2 = int(np.argmax(t2.sum((1, 2))))
    s.set_mask(t2[z2], plane=(z2,))
    s.propagate(method="frozen")
    s.undo()
    s.propagate(method="registration")
    accepted[2] = s.accept().mask
    assert np.array_equal(accepted[2][z2], t2[z2])
    assert sum(e["kind"] == "propagate" for e in s.events) == 4
    store.close()  # the session ends: the weights the last accept adapted are saved
    return path, accepted


@pytest.mark.slow
def test_replay_reproduces_propagated_masks(recorded, capsys):
    path, accepted = recorded
    assert main(["replay", str(path), "--device", "cpu"]) == 0  # as a user runs it
    assert "IDENTICAL" in capsys.readouterr().out
    report = replay(path)
    assert report.identical, report.table()
    assert [(o.object, o.identical, o.status) for o in report.objects] == [(1, True, "ok"), (2, True, "ok")]
    with SessionStore.open(path, read_only=True) as store:
        stored = np.asarray(store.labels()[...])
    assert stored.shape == accepted[1].shape and (stored == 1).any(axis=(1, 2)).sum() > 5  # a 3D object
    for oid, mask in accepted.items():
        assert np.array_equal(stored == oid, mask & ~((stored > 0) & (stored < oid)))  # earlier objects are kept


@pytest.mark.slow
def test_replay_reports_a_changed_or_damaged_propagation(tmp_path, recorded):
    path, _ = recorded
    copy = tmp_path / "changed.oaims.zarr"
    shutil.copytree(path, copy)
    store = SessionStore.open(copy)
    events = store.events()
    last = events[-1]
    ev = next(e for e in events if e["kind"] == "propagate")
    store.append_event({**ev, "seq": last["seq"] + 1, "extra": {"method": "ema"}})
    store.close()
    report = replay(copy)
    assert not report.identical
    assert any("does not record its call" in m for m in report.mismatches), report.mismatches
    bad = tmp_path / "bad.oaims.zarr"
    shutil.copytree(path, bad)
    store = SessionStore.open(bad)
    store.append_event({**ev, "seq": last["seq"] + 1, "extra": {**ev["extra"], "call": {"axis": 7}}})
    store.close()
    with pytest.raises(ValueError, match=r"damaged: event seq \d+ \(propagate\).*axis 7"):
        replay(bad)


@pytest.mark.slow
def test_a_resumed_session_goes_on_propagating(tmp_path, recorded, tubes):
    path, accepted = recorded
    image, labels = tubes
    copy = tmp_path / "resumed.oaims.zarr"
    shutil.copytree(path, copy)
    state = SessionStore.open(copy).resume(engine=Engine.pretrained(device="cpu", adaptation="oaims"))
    assert state.weights_match, state.weights_note
    assert np.array_equal(np.asarray(state.labels[...]) == 1, accepted[1] & ~accepted[2])
    s = state.session
    assert s.object_id == 3 and not s.planes
    t3 = labels == 3
    annotate(s, t3)
    res = s.propagate(method="ema")
    assert res.mask.any(axis=(1, 2)).sum() > 3
    correct(s, res.mask, t3)
    third = s.propagate(method="ema").mask
    assert np.array_equal(s.accept().mask, third)
    state.store.close()
    report = replay(copy)
    assert report.identical, report.table()
    assert [o.object for o in report.objects] == [1, 2, 3]
    with SessionStore.open(copy, read_only=True) as store:
        assert np.array_equal(np.asarray(store.labels()[...]) == 3, third)


# -- barriers ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def touching():
    """Nuclei of one intensity: the target (1) flattened against one above it (2) and one beside (3)."""
    return make_volume(VolumeSpec(kind="touching", shape=(20, 64, 64), seed=5, neighbours=0))


def replayed_labels(path):
    report = replay(path)
    with SessionStore.open(path, read_only=True) as store:
        return report, np.asarray(store.labels()[...])


def test_a_propagation_kept_out_of_accepted_objects_replays_exactly(tmp_path, touching):
    image, labels = touching
    engine = Engine.pretrained(device="cpu")
    s = engine.session(image, plane_axes=(1, 2))
    path = tmp_path / "barrier.oaims.zarr"
    store = SessionStore.create(path, engine=engine, session=s)
    taken = np.zeros(labels.shape, np.uint32)
    for oid in (2, 3):  # the neighbours, drawn slice by slice and accepted first
        for z in np.flatnonzero((labels == oid).any((1, 2))):
            s.set_mask(labels[z] == oid, plane=(int(z),))
        accepted = s.accept()
        taken[accepted.mask] = accepted.object_id
    z = int(np.argmax((labels == 1).sum((1, 2))))
    leak = labels == 1  # and a part of the target beyond its middle, which object 2 holds too
    leak[: z + 2] = False
    leak[..., : labels.shape[2] // 2] = False
    taken[leak] = 2
    s.set_mask(labels[z] == 1, plane=(z,))
    free = s.propagate(axis=0, method="frozen").mask
    s.undo()
    kept = s.propagate(axis=0, method="frozen", barrier=taken)
    assert not np.array_equal(free, kept.mask) and not (kept.mask & (taken > 0)).any()  # the barrier mattered
    seq = s.events[-1]["seq"]
    assert s.events[-1]["kind"] == "propagate" and seq in s.barrier_masks
    accepted = s.accept()
    store.close()
    with SessionStore.open(path, read_only=True) as saved:
        assert saved.barrier_mask(seq) is not None and np.asarray(saved.barrier_mask(seq)[...]).any()
        recorded = np.asarray(saved.labels()[...])
    report, again = replayed_labels(path)
    assert report.identical, report.table()
    assert np.array_equal(again, recorded) and np.array_equal(again == accepted.object_id, accepted.mask)
    # without the saved barrier (as in a log of format version 4) the replay runs into the neighbours
    old = tmp_path / "old.oaims.zarr"
    shutil.copytree(path, old)
    shutil.rmtree(old / "barriers" / str(seq))
    report, _ = replayed_labels(old)
    assert not report.identical


def test_propagated_objects_replay_exactly(tmp_path, touching):
    image, labels = touching
    engine = Engine.pretrained(device="cpu")
    s = engine.session(image, plane_axes=(1, 2))
    path = tmp_path / "objects.oaims.zarr"
    store = SessionStore.create(path, engine=engine, session=s)
    z = int(np.argmax((labels == 1).sum((1, 2))))
    out = s.propagate_objects(labels[z], plane=(z,), method="frozen")
    assert len(out.objects) >= 2 and s.barrier_masks  # each object was kept out of the others
    store.close()
    with SessionStore.open(path, read_only=True) as saved:
        recorded = np.asarray(saved.labels()[...])
    report, again = replayed_labels(path)
    assert report.identical, report.table()
    assert np.array_equal(again, recorded)
    for accepted in out.objects:
        assert np.array_equal(again == accepted.object_id, accepted.mask)


# -- the end along the axis ----------------------------------------------------------------------------
def test_a_propagation_stopped_at_a_waist_replays_exactly(tmp_path):
    """Nuclei stacked along z, blurred along it: the chain stops at the waist between the target and
    the nucleus above it; the saved session replays to the same masks."""
    from napari_oaims.training.volumes import failure_suite

    image, labels = make_volume([s for s in failure_suite(3) if s.kind == "stacked"][2])
    target = labels == 1
    engine = Engine.pretrained(device="cpu")
    s = engine.session(image, plane_axes=(1, 2))
    path = tmp_path / "stacked.oaims.zarr"
    store = SessionStore.create(path, engine=engine, session=s)
    z = int(np.argmax(target.sum((1, 2))))
    s.click((z, *click_in_region(target[z])))
    r = s.propagate(axis=0, method="frozen")
    assert "waist" in [c["stop"] for c in r.info["chains"]]
    accepted = s.accept()
    store.close()
    report, again = replayed_labels(path)
    assert report.identical, report.table()
    assert np.array_equal(again == accepted.object_id, accepted.mask)


def test_propagations_stopped_at_a_plateau_and_at_the_earliest_end_replay_exactly(tmp_path):
    """A mass against a wall, whose chains stop where the mask stopped tapering (the wall rule of
    ``through`` off) or where only the wall that runs through the stack is left (on), and a
    stacked nucleus whose chain two rules stop on one slice (the earliest end wins): the saved
    sessions replay to the same masks."""
    from napari_oaims.training.volumes import failure_suite

    engine = Engine.pretrained(device="cpu")
    cases = [
        ([sp for sp in failure_suite(3) if sp.kind == "wall"][0], 1, "plateau", {"through": 0.0}),
        ([sp for sp in failure_suite(3) if sp.kind == "wall"][0], 1, "through", {}),
        ([sp for sp in failure_suite(20) if sp.kind == "stacked"][1], 9, "waist", {}),
    ]
    for i, (spec, lab, stop, settings) in enumerate(cases):
        image, labels = make_volume(spec)
        target = labels == lab
        s = engine.session(image, plane_axes=(1, 2))
        path = tmp_path / f"case{i}.oaims.zarr"
        store = SessionStore.create(path, engine=engine, session=s)
        z = int(np.argmax(target.sum((1, 2))))
        s.click((z, *click_in_region(target[z])))
        r = s.propagate(axis=0, method="frozen", **settings)
        assert stop in [c["stop"] for c in r.info["chains"]]
        accepted = s.accept()
        store.close()
        report, again = replayed_labels(path)
        assert report.identical, report.table()
        assert np.array_equal(again == accepted.object_id, accepted.mask)
