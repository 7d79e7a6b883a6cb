"""Answers that follow the image's edges (napari_oaims.core.edges): the rule, the evidence from
accepted objects, and the session, store and replay around them."""

from __future__ import annotations

import numpy as np
import pytest

from napari_oaims.core.edges import EdgeEvidence, grow_along_edges, snap_to_edges
from napari_oaims.evaluation.metrics import dice
from napari_oaims.evaluation.suites import suite

from conftest import largest_ids, object_centre


def _bar_scene():
    """A dark bar 8 px wide and 60 long in bright noisy tissue; the model's answer is a disc on it."""
    rng = np.random.default_rng(0)
    crop = 0.8 + 0.03 * rng.standard_normal((96, 96))
    bar = np.zeros((96, 96), bool)
    bar[44:52, 18:78] = True
    crop[bar] = 0.25
    yy, xx = np.mgrid[:96, :96]
    disc = (yy - 48) ** 2 + (xx - 48) ** 2 <= 25
    return crop, bar, disc & bar


def test_an_answer_grows_to_the_edges_only_where_the_model_is_unsure():
    crop, bar, answer = _bar_scene()
    unsure = np.where(answer, 4.0, np.where(bar, -3.0, -10.0))  # the model: "maybe" along the bar
    grown = grow_along_edges(crop, unsure, answer, np.array([[48, 48]]), np.zeros((0, 2)))
    assert dice(grown, bar) > 0.9 and dice(answer, bar) < 0.4
    sure = np.where(answer, 4.0, -10.0)  # sure it is background everywhere else: nothing grows
    assert np.array_equal(grow_along_edges(crop, sure, answer, np.array([[48, 48]]), np.zeros((0, 2))), answer)
    # a negative click on the bar stops the growth there
    cut = grow_along_edges(crop, unsure, answer, np.array([[48, 48]]), np.array([[48, 66]]))
    assert cut[48, 30] and not cut[48, 70]


def test_a_snap_shrinks_or_grows_the_answer_to_the_edges_between_sure_object_and_background():
    rng = np.random.default_rng(0)
    crop = 0.5 + 0.01 * rng.standard_normal((96, 96))
    yy, xx = np.mgrid[:96, :96]
    lesion = (yy - 48) ** 2 + (xx - 48) ** 2 <= 15**2
    crop[lesion] += 0.06  # a faint lesion in similar tissue
    click = np.array([[48, 48]])
    core = (yy - 48) ** 2 + (xx - 48) ** 2 <= 16
    too_large = (yy - 48) ** 2 + (xx - 48) ** 2 <= 24**2  # spills over the rim
    logits = np.where(core, 6.0, np.where(too_large, 1.0, -10.0))
    snapped = snap_to_edges(crop, logits, too_large, click, np.zeros((0, 2)))
    assert dice(snapped, lesion) > 0.9 and dice(too_large, lesion) < 0.6
    assert grow_along_edges(crop, logits, too_large, click, np.zeros((0, 2)))[too_large].all()  # growing cannot shrink
    small = core.copy()  # too small: the model is unsure over the rest of the lesion and around it
    logits = np.where(core, 6.0, np.where(too_large, -3.0, -10.0))
    assert dice(snap_to_edges(crop, logits, small, click, np.zeros((0, 2))), lesion) > 0.9


def test_the_evidence_judges_each_candidate_on_its_own_thresholds():
    ev = EdgeEvidence()
    for oid, (edge, snap) in enumerate([(-0.3, 0.15), (-0.2, -0.02), (0.1, 0.2)], start=1):
        ev.gains[oid], ev.snap_gains[oid] = edge, snap
    assert ev.choice() == "snap" and ev.follow()  # a mean gain of 0.11, won on 2 of 3
    ev.candidates = ("edges",)  # a session that judges growing alone (a log that names no candidates)
    assert ev.choice() is None
    ev.candidates = ("edges", "snap")
    ev.withdraw(3)
    assert ev.choice() is None and 3 not in ev.snap_gains and 3 not in ev.gains
    ev.reinstate(3)
    assert ev.choice() == "snap" and list(ev.snap_gains) == [1, 2, 3]
    for oid in (4, 5, 6):
        ev.gains[oid], ev.snap_gains[oid] = 0.6, 0.25
    assert ev.choice() == "edges"  # both qualify over the last five: growing comes first
    ev.snap_gains[7], ev.gains[7] = -0.5, -0.5
    ev.snap_gains[8], ev.gains[8] = -0.5, -0.5
    assert ev.choice() is None


def test_the_evidence_needs_several_objects_that_agree():
    ev = EdgeEvidence()
    for oid, gain in enumerate([0.3, 0.4], start=1):
        ev.gains[oid] = gain
    assert not ev.follow()  # two objects are not enough
    ev.gains[3] = 0.35
    assert ev.follow()
    ev.withdraw(2)
    assert not ev.follow() and 2 not in ev.gains
    ev.reinstate(2)
    assert ev.follow() and list(ev.gains) == [1, 2, 3]
    for oid, gain in zip(range(4, 7), [-0.3, 0.05, -0.2]):
        ev.gains[oid] = gain
    assert not ev.follow()  # the latest objects say the model's answers were better


def _accept_truth(session, labels, ids):
    """A first click on each object, then its true mask set exactly, then accept."""
    for i in ids:
        session.click(object_centre(labels, i))
        session.set_mask(labels == i)
        session.accept()


def test_answers_follow_edges_once_accepted_objects_show_it_helps(engine):
    image, labels = suite("cavities", seed=0, tiles=(1, 2))
    ids = largest_ids(labels, 5)
    s = engine.session(image)
    _accept_truth(s, labels, ids[:3])
    assert min(s.edge_evidence.gains.values()) > 0.1 and s.edge_evidence.follow()
    assert [e["extra"]["edge_gain"] for e in s.events if e["kind"] == "accept"] == list(s.edge_evidence.gains.values())
    target = labels == ids[3]
    followed = s.click(object_centre(labels, ids[3])).mask
    assert s.events[-1]["extra"]["followed_edges"] == {"edges": True, "snap": "snap"}[s.edge_evidence.choice()]
    s.undo()
    engine.edges = "never"
    model = s.click(object_centre(labels, ids[3])).mask
    assert "followed_edges" not in s.events[-1]["extra"]
    assert dice(followed, target) > dice(model, target) + 0.1


def test_lesion_answers_snap_to_edges_once_accepted_objects_show_it_helps(engine):
    image, labels = suite("lesions", seed=0, tiles=(1, 2))
    ids = largest_ids(labels, 4)
    s = engine.session(image)
    _accept_truth(s, labels, ids[:3])
    assert s.edge_evidence.choice() == "snap" and np.mean(list(s.edge_evidence.gains.values())) < 0
    logged = [e["extra"]["snap_gain"] for e in s.events if e["kind"] == "accept"]
    assert logged == list(s.edge_evidence.snap_gains.values())
    target = labels == ids[3]
    followed = s.click(object_centre(labels, ids[3])).mask
    assert s.events[-1]["extra"]["followed_edges"] == "snap"
    s.undo()
    engine.edges = "never"
    model = s.click(object_centre(labels, ids[3])).mask
    assert dice(followed, target) > dice(model, target) + 0.1


def test_touching_neighbours_keep_the_model_answers(engine):
    image, labels = suite("neighbours", seed=0, tiles=(1, 2))
    s = engine.session(image)
    _accept_truth(s, labels, largest_ids(labels, 5))
    assert len(s.edge_evidence.snap_gains) == 5 and s.edge_evidence.choice() is None
    assert np.mean(list(s.edge_evidence.snap_gains.values())) < 0


def test_a_click_on_a_flat_spot_is_no_evidence_for_the_snap(engine):
    image, labels = suite("uniform", seed=0, tiles=(1, 2))
    s = engine.session(image)
    i = largest_ids(labels, 1)[0]
    assert s.click(object_centre(labels, i)).fallback == "uniform"  # the answer is the flat region
    s.set_mask(labels == i)
    s.accept()
    assert "edge_gain" in s.events[-1]["extra"] and "snap_gain" not in s.events[-1]["extra"]
    assert not s.edge_evidence.snap_gains


def test_on_round_nuclei_the_evidence_keeps_the_model_answers(engine, nuclei_crop):
    image, labels = nuclei_crop
    s = engine.session(image)
    _accept_truth(s, labels, largest_ids(labels, 4))
    assert len(s.edge_evidence.gains) == 4 and not s.edge_evidence.follow()


def test_the_mode_is_checked_and_logged(engine, nuclei_crop):
    with pytest.raises(ValueError, match="edges must be one of"):
        engine.edges = "sometimes"
    engine.edges = "always"
    s = engine.session(nuclei_crop[0])
    assert s.events[0]["extra"]["edges"] == "always"


def test_a_session_that_followed_edges_replays_and_resumes_with_its_evidence(tmp_path):
    import shutil

    from napari_oaims import Engine
    from napari_oaims.engine import shipped_weights_path
    from napari_oaims.store import SessionStore
    from napari_oaims.store.replay import replay

    for suffix in (".safetensors", ".json"):
        shutil.copy(shipped_weights_path().with_suffix(suffix), tmp_path / f"base{suffix}")
    base = tmp_path / "base.safetensors"
    image, labels = suite("cavities", seed=0, tiles=(1, 2))
    ids = largest_ids(labels, 5)
    engine = Engine.pretrained(device="cpu", adaptation="none", weights=base)
    engine.edges = "always"  # replay must take the mode from the log (a default engine says "auto")
    s = engine.session(image)
    path = tmp_path / "edges.oaims.zarr"
    SessionStore.create(path, image, engine=engine, session=s)
    for i in ids[:2]:
        centre = object_centre(labels, i)
        s.click(centre)
        s.click((centre[0] + 3, centre[1] + 3), positive=False)
        s.accept()
    engine.edges = "never"  # changed during the session: the next prompt event says so
    s.click(object_centre(labels, ids[2]))
    s.accept()
    assert [e["extra"]["edges"] for e in s.events if "edges" in e["extra"]] == ["always", "never"]
    assert sum(bool(e["extra"].get("followed_edges")) for e in s.events if e["kind"] == "predict") == 4
    gains = dict(s.edge_evidence.gains)
    assert len(gains) == 2  # no evidence is kept while the mode is "never"
    report = replay(path, weights=base)
    assert report.identical, report.table()
    state = SessionStore.open(path).resume(engine=Engine.pretrained(device="cpu", weights=base))
    assert state.session.edge_evidence.gains == gains
    assert state.session.events[-1]["extra"]["edge_gains"] == {str(k): v for k, v in gains.items()}


def test_the_annotators_note_names_the_candidate_answers_follow(engine):
    """The note after an accept says whether answers started to grow, to snap, or stopped."""
    from napari_oaims.core.ui import SWITCH_NOTES, edges_switch

    s = engine.session(np.zeros((32, 32), np.float32) + np.arange(32, dtype=np.float32))
    assert s.engine.edges == "auto" and s.edge_evidence.choice() is None
    s.edge_evidence.snap_gains.update({1: 0.3, 2: 0.2, 3: 0.15})
    assert edges_switch(None, s) == SWITCH_NOTES["snap"] and "snap" in SWITCH_NOTES["snap"]
    assert edges_switch("snap", s) is None  # no change, no note
    s.edge_evidence.gains.update({1: 0.3, 2: 0.4, 3: 0.5})
    assert edges_switch("snap", s) == SWITCH_NOTES["edges"]  # growing is tried first
    s.edge_evidence.gains.clear()
    s.edge_evidence.snap_gains.clear()
    assert edges_switch("edges", s) == SWITCH_NOTES[None]


def test_snap_mode_snaps_the_first_answer_of_the_first_object(engine):
    """``edges = "snap"``: a user who knows the objects are faint gets snapped first answers from the
    first object on; corrections are the model's own, and only the snap is kept as evidence."""
    image, labels = suite("lesions", seed=0, tiles=(1, 2))
    ids = largest_ids(labels, 4)
    target = labels == ids[3]
    engine.edges = "snap"
    try:
        s = engine.session(image)
        assert s.events[0]["extra"]["edges"] == "snap"
        snapped = s.click(object_centre(labels, ids[3])).mask
        assert s.events[-1]["extra"]["followed_edges"] == "snap"
        err = np.argwhere(target & ~snapped) if (target & ~snapped).any() else np.argwhere(snapped & ~target)
        s.click(tuple(err[len(err) // 2]), positive=bool((target & ~snapped).any()))
        assert "followed_edges" not in s.events[-1]["extra"]  # a correction: the model's own answer
        s.set_mask(target)
        s.accept()
        assert set(s.events[-1]["extra"]) >= {"snap_gain"} and "edge_gain" not in s.events[-1]["extra"]
    finally:
        engine.edges = "auto"
    s2 = engine.session(image)
    model = s2.click(object_centre(labels, ids[3])).mask  # auto, no evidence yet: the model's own
    assert "followed_edges" not in s2.events[-1]["extra"]
    assert dice(snapped, target) > dice(model, target) + 0.1
