"""Replay of saved sessions from the base weights: identical on CPU, differences reported."""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest
import zarr

from napari_oaims import Engine
from napari_oaims.cli import replay as replay_mod
from napari_oaims.core.events import dumps
from napari_oaims.data import sample_nuclei
from napari_oaims.engine import shipped_weights_path
from napari_oaims.evaluation.metrics import dice
from napari_oaims.evaluation.store import object_centres
from napari_oaims.store import SessionStore
from napari_oaims.store.layout import ATTRS_KEY
from napari_oaims.store.replay import replay


@pytest.fixture(scope="module")
def nuclei():
    image, labels = sample_nuclei()
    return image, [yx for _, yx in object_centres(labels)]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A copy of the shipped weights: replay must start from the weights the session was made with."""
    folder = tmp_path_factory.mktemp("weights")
    for suffix in (".safetensors", ".json"):
        shutil.copy(shipped_weights_path().with_suffix(suffix), folder / f"base{suffix}")
    return folder / "base.safetensors"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, nuclei, base):
    """A short session of 3 objects with every prompt kind, undo/redo, a clear and a deferred update."""
    image, c = nuclei
    engine = Engine.pretrained(device="cpu", adaptation="none", weights=base)
    s = engine.session(image)
    path = tmp_path_factory.mktemp("replay") / "three.oaims.zarr"
    SessionStore.create(path, image, engine=engine, session=s)
    s.click(c[0])
    s.click((c[0][0] + 12, c[0][1] + 12), positive=False)
    s.undo()
    s.redo()
    s.accept()
    s.box((c[1][0] - 10, c[1][1] - 10, c[1][0] + 10, c[1][1] + 10))
    s.scribble([(c[1][0] - 2, c[1][1] - 2), (c[1][0] + 2, c[1][1] + 2)])
    s.accept(defer_update=True)
    s.click(c[3])
    s.clear()
    prior = np.zeros(image.shape, bool)
    prior[c[2][0] - 4 : c[2][0] + 4, c[2][1] - 4 : c[2][1] + 4] = True
    s.prior(prior)
    s.run_pending_updates()
    s.click(c[2])
    s.accept()
    return path


def test_replay_is_identical_on_cpu(tmp_path, recorded, base, capsys):
    """Through the command line (``oaims replay``), as a user would run it."""
    parser = argparse.ArgumentParser(prog="oaims")
    replay_mod.register(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "report.json"
    args = parser.parse_args(["replay", str(recorded), "--device", "cpu", "--weights", str(base), "--out", str(out)])
    assert args.func(args) == 0
    assert "IDENTICAL" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["identical"] is True and report["mismatches"] == []
    assert [(o["object"], o["dice"], o["identical"], o["status"]) for o in report["objects"]] == [
        (1, 1.0, True, "ok"),
        (2, 1.0, True, "ok"),
        (3, 1.0, True, "ok"),
    ]
    assert report["prompts"] == 7 and all(o["stored_area"] > 0 for o in report["objects"])


def test_replay_across_a_resume(tmp_path, nuclei, base):
    image, c = nuclei
    engine = Engine.pretrained(device="cpu", weights=base)
    s = engine.session(image)
    path = tmp_path / "resumed.oaims.zarr"
    SessionStore.create(path, image, engine=engine, session=s)
    s.click(c[0])
    s.accept()
    s.click(c[1])  # in progress when the process "dies": not accepted, lost on resume
    state = SessionStore.open(path).resume(engine=Engine.pretrained(device="cpu", weights=base))
    state.session.click(c[4])
    state.session.accept()
    report = replay(path, weights=base)
    assert report.identical, report.table()
    assert [o.object for o in report.objects] == [1, 2]


def test_replay_follows_an_undone_and_a_redone_accept(tmp_path, nuclei, base):
    """The widget's undo of an accept withdraws the object's size from object size "auto" (and its
    redo reinstates it): both are logged, so a replay picks the same windows for later objects."""
    image, c = nuclei
    engine = Engine.pretrained(device="cpu", adaptation="none", weights=base)
    s = engine.session(image)
    path = tmp_path / "undone.oaims.zarr"
    store = SessionStore.create(path, image, engine=engine, session=s)
    labels = np.zeros(image.shape, np.uint32)
    for i in (0, 1):
        s.click(c[i])
        labels[s.accept().mask] = i + 1
    sizes = dict(s.accepted_diameters)
    # undo of object 2's accept, as the widget does it: the labels go back, its size is withdrawn
    s.withdraw(2)
    labels[labels == 2] = 0
    store.write_labels(labels)
    # undo and redo of object 1's accept: its size is back
    s.reinstate(1, s.withdraw(1))
    assert s.accepted_diameters == {1: sizes[1]}
    s.click(c[4])
    window = s.events[-1]["extra"]["window"][2]
    # without the withdrawal the window would have been another size, so the log must carry it
    assert window == max(32, round(4 * sizes[1])) != max(32, round(4 * np.median(list(sizes.values()))))
    labels[s.accept().mask] = 3
    store.close()
    kinds = [e["kind"] for e in SessionStore.open(path, read_only=True).events()]
    assert kinds.count("withdraw") == 2 and kinds.count("reinstate") == 1
    report = replay(path, weights=base)
    assert report.identical, report.table()
    assert [(o.object, o.status, o.replayed_area > 0) for o in report.objects] == [
        (1, "ok", True),
        (2, "ok", False),
        (3, "ok", True),
    ]


def with_event(tmp_path, recorded, **event):
    """A copy of the recorded session with one more event after its last: the last one's fields,
    ``event`` over them."""
    copy = tmp_path / "damaged.oaims.zarr"
    shutil.copytree(recorded, copy)
    store = SessionStore.open(copy)
    last = store.events()[-1]
    store.append_event({**last, "seq": last["seq"] + 1, "plane": [], "latency_ms": None, **event})
    store.close()
    return copy


def test_replay_names_a_damaged_reinstate_event(tmp_path, recorded, base):
    reinstate = {"kind": "reinstate", "object": 1, "coords": None, "label": None, "extra": {"diameter": -5.0}}
    copy = with_event(tmp_path, recorded, **reinstate)
    with pytest.raises(ValueError, match=r"damaged: event seq \d+ \(reinstate\).*diameter"):
        replay(copy, weights=base)


def test_replay_names_a_damaged_edges_mode(tmp_path, recorded, base):
    click = {"kind": "click", "coords": [5, 5], "label": 1, "extra": {"adaptation": "none", "edges": "sometimes"}}
    copy = with_event(tmp_path, recorded, **click)
    with pytest.raises(ValueError, match=r"damaged: event seq \d+ \(click\).*edges must be one of"):
        replay(copy, weights=base)


def test_replay_reports_a_changed_object(tmp_path, recorded, base):
    copy = tmp_path / "changed.oaims.zarr"
    shutil.copytree(recorded, copy)
    labels = zarr.open_array(copy / "labels" / "objects" / "s0", mode="r+")
    ys, xs = np.nonzero(labels[...] == 2)
    labels[ys[0], xs[0]] = 0
    report = replay(copy, weights=base)
    assert not report.identical
    changed = next(o for o in report.objects if o.object == 2)
    assert changed.status == "differs" and 0.99 < changed.dice < 1.0
    assert "DIFFERS" in report.table()


def test_replay_needs_the_same_base_weights(tmp_path, recorded, base):
    copy = tmp_path / "other-base.oaims.zarr"
    shutil.copytree(recorded, copy)
    root = zarr.open_group(copy, mode="r+")
    root.attrs[ATTRS_KEY] = {**root.attrs[ATTRS_KEY], "base_hash": "0123456789abcdef"}
    with pytest.raises(ValueError, match="recorded with base weights 0123456789abcdef"):
        replay(copy, weights=base)


def test_replay_cli_errors(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="oaims")
    replay_mod.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["replay", str(tmp_path / "missing.oaims.zarr")])
    assert args.func(args) == 2
    assert "no session at" in capsys.readouterr().err


def test_replay_of_online_adaptation_is_identical(tmp_path, nuclei, base):
    """Mid- and Post-Interaction updates (deferred too) and a switch of adapter are re-run in order."""
    image, c = nuclei
    engine = Engine.pretrained(device="cpu", adaptation="oaims", weights=base)
    s = engine.session(image)
    path = tmp_path / "adapted.oaims.zarr"
    store = SessionStore.create(path, image, engine=engine, session=s)
    s.click(c[0])
    s.click((c[0][0] + 10, c[0][1]), positive=False)  # a Mid-Interaction update
    s.accept(defer_update=True)
    engine.adaptation = "pi"
    s.click(c[1])
    s.run_pending_updates()  # the first object's Post-Interaction update runs after the next click
    s.accept()
    assert engine.weights_hash != engine.base_hash and store.model_path() is not None
    report = replay(path, weights=base)
    assert report.identical, report.table()
    assert [o.object for o in report.objects] == [1, 2]


def test_a_format_version_1_folder_replays_and_a_retired_setting_is_named(tmp_path, nuclei, base):
    """Version 1 logged adapter settings with the retired experiment settings: at their shipped
    values the folder replays identically; another value is refused, naming the event and setting."""
    from test_store import as_version_1

    image, c = nuclei
    engine = Engine.pretrained(device="cpu", adaptation="oaims", weights=base)
    s = engine.session(image)
    path = tmp_path / "v1.oaims.zarr"
    SessionStore.create(path, image, engine=engine, session=s)
    s.click(c[0])
    s.click((c[0][0] + 10, c[0][1]), positive=False)
    s.accept()
    s.click(c[1])
    s.accept()
    SessionStore.open(path).close()
    as_version_1(path)
    report = replay(path, weights=base)
    assert report.identical, report.table()
    root = zarr.open_group(path, mode="r+")
    first = json.loads(str(root["log/extra"][0]))
    first["adapter"]["pi_views"] = 4  # an experiment this version cannot reproduce
    root["log/extra"][0] = dumps(first)
    with pytest.raises(
        ValueError,
        match=r"event seq 0 \(session\) holds adapter settings that cannot be used.*"
        r"pi_views=4.*retired in format version 2",
    ):
        replay(path, weights=base)


def test_rewound_mi_steps_are_saved_and_replayed(tmp_path, nuclei, base):
    """A click that corrects nothing rewinds the object's MI steps: logged, autosaved, replayed."""
    image, c = nuclei
    engine = Engine.pretrained(device="cpu", adaptation="oaims", weights=base)
    s = engine.session(image)
    path = tmp_path / "rewind.oaims.zarr"
    SessionStore.create(path, image, engine=engine, session=s)
    mask = s.click(c[0]).mask
    before = engine.weights_hash
    inside = np.argwhere(mask)
    mask = s.click(tuple(inside[len(inside) // 4]), positive=False).mask
    s.click(tuple(np.argwhere(mask)[len(np.argwhere(mask)) // 2]), positive=True)
    rewind = [e for e in s.events if e["kind"] == "update" and e["extra"]["method"] == "mi_rewind"]
    assert len(rewind) == 1 and engine.weights_hash == before
    s.accept()
    report = replay(path, weights=base)
    assert report.identical, report.table()


def test_a_replayed_session_starts_from_the_logged_object_sizes():
    """Object size "auto" and the edge evidence depend on the objects accepted before a resume: a
    replay takes them from the resumed session's start event, or, in logs made before they were
    logged, carries them over."""
    from napari_oaims.store.replay import _start_values

    before = {1: 20.0, 2: 18.5}
    logged = {"extra": {"resumed": True, "accepted_diameters": {"2": 18.5}, "edge_gains": {"2": 0.3}}}
    assert _start_values(logged, "accepted_diameters", before) == {2: 18.5}
    assert _start_values(logged, "edge_gains", {1: 0.1}) == {2: 0.3}
    assert _start_values({"extra": {"resumed": True}}, "accepted_diameters", before) == {1: 20.0, 2: 18.5}
    assert _start_values({"extra": {}}, "accepted_diameters", before) == {}  # a new session, not a resumed one
    assert _start_values({"extra": {"resumed": True}}, "edge_gains", None) == {}


def test_replay_rebuilds_the_adapter_the_log_recorded(tmp_path, nuclei, base):
    """The log holds the adapter's settings, not only its name: a session that learnt with
    ``oaims`` without the replay buffer (an adapter named "oaims" whose settings differ from
    today's defaults), and switched to ``pi`` with other settings mid-way, replays identically."""
    from napari_oaims.adapt.oaims import OAIMSAdapter

    image, c = nuclei
    engine = Engine.pretrained(device="cpu", adaptation=OAIMSAdapter(replay_size=0), weights=base)
    assert engine.adaptation == "oaims"
    s = engine.session(image)
    path = tmp_path / "settings.oaims.zarr"
    SessionStore.create(path, image, engine=engine, session=s)
    for i in range(3):
        s.click(c[i])
        s.click((c[i][0] + 6, c[i][1]), positive=False)
        s.accept()
    engine.adaptation = "pi:replay_size=1:lr=2e-4"
    s.click(c[3])
    s.accept()
    events = SessionStore.open(path).events()
    assert events[0]["extra"]["adapter"]["replay_size"] == 0
    switched = [e for e in events if "adapter" in e["extra"] and e["kind"] != "session"]
    assert [(e["kind"], e["extra"]["adapter"]["name"]) for e in switched] == [("click", "pi:replay_size=1:lr=2e-4")]
    report = replay(path, weights=base)
    assert report.identical, report.table()


def test_replay_names_damaged_adapter_settings(tmp_path, recorded, base):
    copy = tmp_path / "damaged-adapter.oaims.zarr"
    shutil.copytree(recorded, copy)
    store = SessionStore.open(copy)
    last = store.events()[-1]
    store.append_event(
        {
            **last,
            "seq": last["seq"] + 1,
            "kind": "click",
            "object": last["object"] + 1,
            "plane": [],
            "coords": [5, 5],
            "label": 1,
            "latency_ms": None,
            "extra": {"adaptation": "oaims", "adapter": {"name": "oaims", "replay_size": "many"}},
        }
    )
    store.close()
    with pytest.raises(ValueError, match=r"event seq \d+ \(click\) holds adapter settings that cannot be used"):
        replay(copy, weights=base)


EARLIER = "5eb3513865717c6b"  # the weights of 0.3.0, packaged beside the shipped ones


def test_a_session_made_with_the_earlier_packaged_weights_replays_and_resumes(tmp_path, nuclei):
    from napari_oaims.engine import bundled_weights_path

    assert bundled_weights_path(Engine.pretrained(device="cpu").base_hash) == shipped_weights_path()
    assert bundled_weights_path("0123456789abcdef") is None
    image, c = nuclei
    engine = Engine.for_base(EARLIER, device="cpu", adaptation="pi")
    assert engine.base_hash == EARLIER != Engine.pretrained(device="cpu").base_hash
    s = engine.session(image)
    path = tmp_path / "earlier.oaims.zarr"
    store = SessionStore.create(path, image, engine=engine, session=s)
    s.click(c[0])
    s.click((c[0][0] + 3, c[0][1] + 3))
    s.accept()
    store.close()

    report = replay(path, device="cpu")  # no weights given: the packaged file with the session's hash
    assert report.base_hash == EARLIER and report.identical, report.table()
    state = SessionStore.open(path).resume(device="cpu")
    assert state.engine.base_hash == EARLIER and state.engine.updates == engine.updates
    state.engine.reset()  # back to the earlier packaged weights, not to the shipped ones
    assert state.engine.weights_hash == EARLIER
    state.store.close()
    with pytest.raises(ValueError, match="no weights packaged .* 0123456789abcdef"):
        Engine.for_base("0123456789abcdef", device="cpu")


def test_a_log_without_the_correction_rule_replays_without_it(tmp_path, base):
    """A session event that does not name ``correct_near`` (older logs) replays with corrections
    answered as they were then: the model's whole new answer."""
    from scipy import ndimage

    image, labels = (a[:160, :160].copy() for a in sample_nuclei())
    engine = Engine.pretrained(device="cpu", adaptation="none", weights=base)
    s = engine.session(image)
    s.correct_near = False
    del s.events[0]["extra"]["correct_near"]  # as an older log wrote it
    path = tmp_path / "older.oaims.zarr"
    SessionStore.create(path, image, engine=engine, session=s)
    tid = np.bincount(labels.ravel())[1:].argmax() + 1
    ys, xs = np.nonzero(labels == tid)
    first = s.click((int(np.median(ys)), int(np.median(xs)))).mask
    y, x = np.argwhere(ndimage.distance_transform_edt(first) == 1)[0]
    s.click((int(y), int(x)), positive=False)  # on the rim: the rule would keep the rest of the edge
    s.accept()
    report = replay(path, weights=base)
    assert report.identical, report.table()


def _rule_session(engine, image, tmp_path, rule: str, older: bool, **kw):
    """A session as a log that does not name answer rule ``rule`` (older logs: the rule off) was
    written, or with every rule (``older`` False), saved to a new store; and the store's path."""
    s = engine.session(image, **kw)
    if older:
        setattr(s, rule, False)
        del s.events[0]["extra"][rule]  # as an older log wrote it
    path = tmp_path / f"{rule}_{older}.oaims.zarr"
    SessionStore.create(path, image, engine=engine, session=s)
    return s, path


def test_a_log_without_larger_windows_replays_without_them(tmp_path, base):
    """A session event that does not name ``larger_windows`` (older logs) replays a click inside
    an organ larger than its first window as it was answered: on the first window."""
    from test_answer import _organ

    image, organ = _organ()
    engine = Engine.pretrained(device="cpu", adaptation="none", weights=base)
    for older in (True, False):
        s, path = _rule_session(engine, image, tmp_path, "larger_windows", older)
        mask = s.click((768, 768)).mask
        assert (dice(mask, organ) < 0.2) is older
        s.accept()
        report = replay(path, weights=base)
        assert report.identical, report.table()


def test_a_log_without_remove_again_replays_without_it(tmp_path, base):
    """A session event that does not name ``remove_again`` (older logs) replays a second negative
    click in a propagated slice's component as it was answered: a trim, not the whole component."""
    from napari_oaims.evaluation.propagate import procedural_cases

    case = {c["name"]: c for c in procedural_cases(3, (28, 96, 96), failures=True)}["touching_2"]
    image, target = case["image"], case["target"]
    engine = Engine.pretrained(device="cpu", adaptation="none", weights=base)
    areas = {}
    for older in (True, False):
        s, path = _rule_session(engine, image, tmp_path, "remove_again", older, plane_axes=(1, 2))
        s.set_mask(target[10], plane=(10,))
        s.propagate(axis=0)
        s.click((16, 40, 46), positive=False)  # beyond the target's end: the slice empties
        s.click((15, 36, 49), positive=False)  # off the middle of the neighbour's part: a trim
        areas[older] = int(s.click((15, 43, 41), positive=False).mask[15].sum())
        s.accept()
        report = replay(path, weights=base)
        assert report.identical, report.table()
    assert areas[False] == 0 < areas[True]


def test_a_log_without_first_peak_replays_with_the_strongest_blob(tmp_path, base):
    """A session event that does not name ``first_peak`` (older logs) sizes a first window from
    the strongest blob under the click, as it was answered: a cell among touching cells."""
    from napari_oaims.evaluation.suites import suite
    from napari_oaims.session_windows import first_window
    from napari_oaims.simulate.clicks import click_in_region

    image, labels = suite("neighbours", seed=0, tiles=(1, 2))
    engine = Engine.pretrained(device="cpu", adaptation="none", weights=base)
    probe = engine.session(image)
    windows = {}
    for i in [int(i) for i in np.unique(labels) if i]:
        yx = click_in_region(labels == i)
        for rule in (True, False):
            probe.first_peak = rule
            windows[rule] = first_window(probe, (), np.array([yx], float))
        if windows[True] < windows[False]:
            break
    assert windows[True] < windows[False], "no cell here whose blob is its cluster's"
    for older in (True, False):
        s, path = _rule_session(engine, image, tmp_path, "first_peak", older)
        s.click(yx)
        assert s.first_sizes[s.object_id] == windows[not older]
        s.accept()
        report = replay(path, weights=base)
        assert report.identical, report.table()


def test_a_log_without_edge_candidates_replays_with_growing_alone(tmp_path, base):
    """A session event that does not name ``edge_candidates`` (older logs) replays judging growing
    along edges alone: a lesion image whose accepted objects favour the snap keeps the model's
    answers, as the session that wrote the log gave them."""
    from napari_oaims.evaluation.suites import suite

    image, labels = suite("lesions", seed=0, tiles=(1, 2))
    ids = [int(i) for i in np.argsort(np.bincount(labels.ravel())[1:])[::-1][:4] + 1]
    engine = Engine.pretrained(device="cpu", adaptation="none", weights=base)
    s = engine.session(image)
    s.edge_evidence.candidates = ("edges",)
    del s.events[0]["extra"]["edge_candidates"]  # as an older log wrote it
    path = tmp_path / "older.oaims.zarr"
    SessionStore.create(path, image, engine=engine, session=s)
    for i in ids:
        ys, xs = np.nonzero(labels == i)
        s.click((int(np.median(ys)), int(np.median(xs))))
        s.set_mask(labels == i)
        s.accept()
    assert len(s.edge_evidence.snap_gains) == 0 and not any(
        e["extra"].get("followed_edges") for e in s.events if e["kind"] == "predict"
    )
    report = replay(path, weights=base)
    assert report.identical, report.table()


def test_a_session_that_snapped_to_edges_replays_and_resumes_with_its_evidence(tmp_path, base):
    from napari_oaims.evaluation.suites import suite

    image, labels = suite("lesions", seed=0, tiles=(1, 2))
    ids = [int(i) for i in np.argsort(np.bincount(labels.ravel())[1:])[::-1][:5] + 1]
    engine = Engine.pretrained(device="cpu", adaptation="none", weights=base)
    s = engine.session(image)
    path = tmp_path / "snap.oaims.zarr"
    SessionStore.create(path, image, engine=engine, session=s)
    for i in ids:
        ys, xs = np.nonzero(labels == i)
        centre = (int(np.median(ys)), int(np.median(xs)))
        s.click(centre)
        s.click((centre[0] + 2, centre[1] + 2), positive=False)
        s.set_mask(labels == i)
        s.accept()
    assert s.edge_evidence.choice() == "snap"
    assert any(e["extra"].get("followed_edges") == "snap" for e in s.events if e["kind"] == "predict")
    report = replay(path, weights=base)
    assert report.identical, report.table()
    gains = dict(s.edge_evidence.snap_gains)
    state = SessionStore.open(path).resume(engine=Engine.pretrained(device="cpu", weights=base))
    assert state.session.edge_evidence.snap_gains == gains and state.session.edge_evidence.choice() == "snap"
    assert state.session.events[-1]["extra"]["snap_gains"] == {str(k): v for k, v in gains.items()}
