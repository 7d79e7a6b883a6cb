"""Accepted objects are kept: a new object takes no pixels of an accepted one unless asked to, in
the labels, the session store, and replay (which follows the rule each accept event recorded)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from napari_oaims import Engine
from napari_oaims.core.labels import paint, paint_planes, unpaint
from napari_oaims.data import sample_nuclei
from napari_oaims.engine import shipped_weights_path
from napari_oaims.store import SessionStore
from napari_oaims.store.replay import replay


def test_paint_keeps_other_objects_unless_overwrite():
    labels = np.zeros((6, 6), np.int32)
    labels[:3] = 1
    mask = np.zeros((6, 6), bool)
    mask[2:5] = True
    area, taken, before = paint(labels, np.s_[:, :], mask, 2)
    assert area == 12 and taken == {} and (labels[2] == 1).all() and (labels[3:5] == 2).all()
    assert (before[:3] == 1).all()
    area, taken, _ = paint(labels, np.s_[:, :], mask, 3, overwrite=True)
    assert area == 18 and taken == {1: 6, 2: 12} and (labels[2:5] == 3).all()


def test_paint_planes_and_unpaint_follow_the_rule():
    labels = np.zeros((2, 5, 5), np.int32)
    labels[1, :2] = 7
    crop = np.ones((3, 5), bool)
    area, taken, records = paint_planes(labels, (-2, -1), {(1,): ((0, 0, 3, 5), crop)}, 8)
    assert area == 5 and taken == {} and (labels[1, :2] == 7).all() and (labels[1, 2] == 8).all()
    unpaint(labels, records)
    assert (labels[1, 2] == 0).all() and (labels[1, :2] == 7).all()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    for suffix in (".safetensors", ".json"):
        shutil.copy(shipped_weights_path().with_suffix(suffix), folder / f"base{suffix}")
    return folder / "base.safetensors"


def _square(shape, y, x, side=20):
    m = np.zeros(shape, bool)
    m[y : y + side, x : x + side] = True
    return m


def _record(path, base, strip_flag: bool):
    """Three objects given as exact masks: 2 overlaps 1 (default rule), 3 overlaps 1 with overwrite."""
    image, _ = sample_nuclei()
    engine = Engine.pretrained(device="cpu", weights=base)
    s = engine.session(image)
    if strip_flag:  # a log written before accept events recorded the rule (runs before the store's listener)
        s.subscribe(lambda e, r: e["extra"].pop("overwrite", None) if e["kind"] == "accept" else None)
    SessionStore.create(path, image, engine=engine, session=s)
    s.set_mask(_square(image.shape, 40, 40))
    s.accept()
    s.set_mask(_square(image.shape, 50, 50))
    s.accept(overwrite=strip_flag)
    s.set_mask(_square(image.shape, 30, 30))
    s.accept(overwrite=True)
    store = SessionStore.open(path, read_only=True)
    return np.asarray(store.labels()[...]), [e for e in store.events() if e["kind"] == "accept"]


def test_store_keeps_accepted_objects_and_replay_follows_the_logged_rule(tmp_path, base):
    labels, accepts = _record(tmp_path / "kept.oaims.zarr", base, strip_flag=False)
    assert [e["extra"]["overwrite"] for e in accepts] == [False, False, True]
    assert labels[55, 55] == 1  # object 2 did not take object 1's pixels
    assert labels[65, 65] == 2
    assert labels[45, 45] == 3  # object 3 was accepted with overwrite=True
    report = replay(tmp_path / "kept.oaims.zarr", weights=base)
    assert report.identical, report.table()


def test_an_accept_without_the_flag_replays_with_the_new_object_winning(tmp_path, base):
    labels, accepts = _record(tmp_path / "old.oaims.zarr", base, strip_flag=True)
    assert all("overwrite" not in e["extra"] for e in accepts)
    assert labels[55, 55] == 2 and labels[45, 45] == 3  # painted with the new object winning
    report = replay(tmp_path / "old.oaims.zarr", weights=base)
    assert report.identical, report.table()
