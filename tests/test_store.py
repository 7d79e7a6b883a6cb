"""Zarr sessions: autosave, reopen, resume, kill -9, and every bad input (real files, real engine)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from napari_oaims import Engine
from napari_oaims.core.events import dumps, normalise_event
from napari_oaims.data import sample_nuclei
from napari_oaims.evaluation.store import kill_run, object_centres
from napari_oaims.store import SessionStore
from napari_oaims.store import layout as store_mod
from napari_oaims.store.layout import FORMAT_VERSION, file_digest
from napari_oaims.store.resume import accepted_diameters


@pytest.fixture(scope="module")
def engine():
    return Engine.pretrained(device="cpu")


@pytest.fixture(scope="module")
def nuclei():
    image, labels = sample_nuclei()
    return image, labels, [yx for _, yx in object_centres(labels)]


def tree_digest(path: Path) -> str:
    """Digest of every file (names and bytes) under ``path``: proves nothing was changed. The
    writer lock is left out: a writable open records its owner and time there."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and p.name != "writer.lock"):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@contextlib.contextmanager
def as_unprivileged_user():
    """Run the block as a user without write access to root's files (tests run as root in CI
    containers; root bypasses file modes). Outside root it changes nothing."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def annotate(s, centres):
    """Two objects with clicks, an undo/redo, a box, a scribble and a prior; a cleared attempt."""
    s.click(centres[0])
    s.click((centres[0][0] + 15, centres[0][1] + 15), positive=False)
    s.undo()
    s.redo()
    first = s.accept().mask
    s.box((centres[1][0] - 12, centres[1][1] - 12, centres[1][0] + 12, centres[1][1] + 12))
    s.scribble([(centres[1][0] - 2, centres[1][1]), (centres[1][0] + 2, centres[1][1])])
    prior = np.zeros(s.spatial_shape, bool)
    prior[centres[1][0] - 5 : centres[1][0] + 5, centres[1][1] - 5 : centres[1][1] + 5] = True
    s.prior(prior)
    second = s.accept().mask
    s.click(centres[2])
    s.clear()
    return first, second, prior


def test_autosave_reopen_equal(tmp_path, engine, nuclei):
    image, _, centres = nuclei
    s = engine.session(image)
    path = tmp_path / "a.oaims.zarr"
    store = SessionStore.create(path, image, engine=engine, session=s)
    first, second, prior = annotate(s, centres)
    # Everything is on disk already, before close (journal + arrays): a second reader sees it.
    live = SessionStore.open(path, read_only=True)
    assert live.events() == [normalise_event(e) for e in s.events]
    journaled = live.objects()
    store.close()
    assert (path / "log" / "journal.jsonl").stat().st_size == 0  # compacted into the arrays
    again = SessionStore.open(path)
    assert again.events() == [normalise_event(e) for e in s.events]
    labels = np.asarray(again.labels()[...])
    expected = np.zeros(image.shape, np.uint32)
    expected[first] = 1
    expected[second] = 2
    np.testing.assert_array_equal(labels, expected)
    objects = again.objects()
    assert [(o["id"], o["area"], o["planes"]) for o in objects] == [
        (1, int((expected == 1).sum()), [[]]),
        (2, int(second.sum()), [[]]),
    ]
    assert journaled == objects  # the same before compaction (journal) and after (arrays)
    np.testing.assert_array_equal(np.asarray(again.image()), image)
    prior_seq = next(e["seq"] for e in s.events if e["kind"] == "prior")
    np.testing.assert_array_equal(again.prior_mask(prior_seq), prior)
    prompts = again.prompts()  # derived from the log: the cleared click is not there
    assert prompts.points.tolist() == [list(map(float, centres[0])), [centres[0][0] + 15.0, centres[0][1] + 15.0]]
    assert prompts.positive.tolist() == [True, False]
    assert prompts.shape_types == ["rectangle", "path"]
    # The log arrays follow the documented schema.
    root = zarr.open_group(path, mode="r")
    assert root["log"].attrs["kinds"]["click"] == 1 and root["log"].attrs["length"] == len(s.events)
    assert root["log/kind"][0] == 0 and root["log/label"][0] == -1 and np.isnan(root["log/latency_ms"][0])
    assert bytes(root["log/weights"][0]).decode() == engine.weights_hash
    assert root.attrs["ome"]["multiscales"][0]["axes"][0]["name"] == "y"
    assert "objects" in root["labels"].attrs["ome"]["labels"]


def test_prompt_layers_written(tmp_path, nuclei):
    image, _, _ = nuclei
    store = SessionStore.create(tmp_path / "p.oaims.zarr", image)
    shapes = [np.array([[1, 1], [1, 9], [9, 9], [9, 1.0]]), np.array([[3, 3], [4, 5], [6, 7.0]])]
    store.write_prompts([[5, 5], [7, 8]], [True, False], shapes, ["rectangle", "path"])
    store.write_prompts([[5, 6]], [False], shapes[:1], ["rectangle"])  # replaces the previous layers
    p = SessionStore.open(store.path).prompts()
    assert p.points.tolist() == [[5.0, 6.0]] and p.positive.tolist() == [False]
    np.testing.assert_array_equal(p.shapes[0], shapes[0])
    assert p.shape_types == ["rectangle"]
    with pytest.raises(ValueError, match="positive flags"):
        store.write_prompts([[5, 5]], [True, False], [], [])


def test_nd_and_rgb_images(tmp_path, engine, nuclei):
    image, _, centres = nuclei
    stack = np.stack([image[:128, :128], image[1:129, 1:129], image[2:130, 2:130]])  # (z, y, x)
    s = engine.session(stack, plane_axes=(2, 1))  # planes are (x, y): masks are transposed in the labels
    store = SessionStore.create(tmp_path / "z.oaims.zarr", stack, engine=engine, session=s)
    yx = next(c for c in centres if c[0] < 120 and c[1] < 120)
    s.click((1, yx[0], yx[1]))
    mask = s.accept().mask
    store.close()
    again = SessionStore.open(store.path)
    np.testing.assert_array_equal(np.asarray(again.labels()[...]) == 1, mask)
    assert again.objects()[0]["planes"] == [[1]]
    assert again.session_params()["plane_axes"] == (2, 1)
    again.commit_object(2, np.roll(mask, 1, axis=0))  # the same shape on the next plane, via the public call
    assert again.objects()[1]["planes"] == [[2]]
    rgb = np.stack([image[:64, :64] / image.max() * 255] * 3, axis=-1).astype(np.uint8)
    rs = SessionStore.create(tmp_path / "rgb.oaims.zarr", rgb)
    assert rs.session_params()["rgb"] is True
    np.testing.assert_array_equal(np.asarray(SessionStore.open(rs.path).image()), rgb)
    assert zarr.open_group(rs.path, mode="r")["s0"].shape == (3, 64, 64)  # NGFF order on disk


def test_resume_continues_log_objects_and_model(tmp_path, engine, nuclei):
    image, _, centres = nuclei
    s = engine.session(image)
    store = SessionStore.create(tmp_path / "r.oaims.zarr", image, engine=engine, session=s)
    s.click(centres[0])
    s.accept()
    adapted = Engine.pretrained(device="cpu")  # stands in for weights learnt online
    with adapted.lock:
        next(adapted.model.parameters()).data.add_(1e-3)
    adapted.weights_changed()
    store.save_model(adapted)
    n = len(s.events)
    s_diameter = s.accepted_diameters[1]
    assert s.events[-1]["extra"]["diameter"] == s_diameter > 0
    del store, s  # no close(): as if the process had died
    state = SessionStore.open(tmp_path / "r.oaims.zarr").resume(device="cpu")
    assert state.engine.weights_hash == adapted.weights_hash == state.weights
    assert not state.weights_match and state.lost_updates == 0  # saved outside the log, not lost by a crash
    assert state.logged_weights == engine.weights_hash and "replaced outside the log" in state.weights_note
    assert state.engine.base_hash == engine.base_hash
    r = state.session
    assert [e["seq"] for e in r.events] == list(range(n + 1)) and r.events[-1]["kind"] == "session"
    assert r.events[-1]["extra"]["resumed"] is True
    # the accepted object's size is back for first_window="auto", as logged at accept
    assert r.accepted_diameters == {1: s_diameter}
    assert r.events[-1]["extra"]["accepted_diameters"] == {"1": s_diameter}  # a replay starts from them too
    r.click(centres[1])
    r.accept()
    assert r.events[-1]["object"] == 2
    again = SessionStore.open(tmp_path / "r.oaims.zarr")
    assert again.events() == [normalise_event(e) for e in r.events]
    assert [o["id"] for o in again.objects()] == [1, 2]
    assert again.model_path(adapted.weights_hash) is not None  # the snapshot replay restarts from


def test_accepted_diameters_of_a_resumed_session():
    """Logged diameters win; objects without one (older logs, labels written directly) use their
    mean area per plane; objects no longer in the labels do not count."""
    events = [
        {"kind": "accept", "object": 1, "extra": {"diameter": 20.0}},
        {"kind": "accept", "object": 2, "extra": {}},
        {"kind": "accept", "object": 4, "extra": {"diameter": 9.0}},
        {"kind": "accept", "object": 3, "extra": {"diameter": "NaN?"}},
    ]  # damaged: the area decides
    objects = [
        {"id": 1, "area": 300, "planes": [[]]},
        {"id": 2, "area": 2 * 314, "planes": [[0], [1]]},
        {"id": 3, "area": 1257, "planes": [[]]},
        {"id": 4, "area": 0, "planes": [[]]},
    ]
    d = accepted_diameters(events, objects)
    assert set(d) == {1, 2, 3} and d[1] == 20.0
    assert abs(d[2] - 20.0) < 0.1 and abs(d[3] - 40.0) < 0.1


@pytest.mark.slow
def test_kill9_keeps_every_acknowledged_event(tmp_path):
    result = kill_run(tmp_path / "k.oaims.zarr", "annotate", delay_s=0.2, min_acks=4)
    assert result["opened"] and result["acked"] >= 4
    assert result["lost"] == 0 and result["extra"] <= 1, result
    store = SessionStore.open(tmp_path / "k.oaims.zarr")  # writable open repairs a torn journal tail
    seqs = [e["seq"] for e in store.events()]
    assert seqs == list(range(len(seqs)))


def test_torn_journal_line_is_the_event_in_flight(tmp_path, nuclei):
    image, _, _ = nuclei
    store = SessionStore.create(tmp_path / "t.oaims.zarr", image)
    ev = {
        "seq": 0,
        "time": 1.5,
        "kind": "click",
        "object": 1,
        "plane": [],
        "coords": [3, 4],
        "label": 1,
        "latency_ms": None,
        "weights": "abc",
        "extra": {},
    }
    store.append_event(ev)
    store.close()
    journal = tmp_path / "t.oaims.zarr" / "log" / "journal.jsonl"
    store = SessionStore.open(tmp_path / "t.oaims.zarr")
    store.append_event({**ev, "seq": 1})
    with journal.open("ab") as f:
        f.write(b'{"seq": 2, "time": 1')  # killed mid-write
    assert [e["seq"] for e in SessionStore.open(tmp_path / "t.oaims.zarr", read_only=True).events()] == [0, 1]
    again = SessionStore.open(tmp_path / "t.oaims.zarr")
    again.append_event({**ev, "seq": 2})
    assert [e["seq"] for e in SessionStore.open(tmp_path / "t.oaims.zarr").events()] == [0, 1, 2]


def test_autosave_failure_warns_and_the_session_goes_on(tmp_path, engine, nuclei):
    image, _, centres = nuclei
    s = engine.session(image)
    store = SessionStore.create(tmp_path / "f.oaims.zarr", image, engine=engine, session=s)
    journal = tmp_path / "f.oaims.zarr" / "log" / "journal.jsonl"
    before = journal.read_bytes()
    journal.chmod(0o444)
    with as_unprivileged_user(), pytest.warns(RuntimeWarning, match="autosave to .*f.oaims.zarr failed"):
        mask = s.click(centres[0]).mask
    assert mask.any() and isinstance(store.error, PermissionError)
    assert journal.read_bytes() == before
    journal.chmod(0o644)
    s.click(centres[0], positive=False)  # saving works again: the missed events are written first
    assert store.error is None
    assert SessionStore.open(store.path).events() == [normalise_event(e) for e in s.events]


# -- bad input -------------------------------------------------------------------------------------
def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no session at .*nope.oaims.zarr"):
        SessionStore.open(tmp_path / "nope.oaims.zarr")


def test_foreign_folders_are_refused_and_left_alone(tmp_path, nuclei):
    image, _, _ = nuclei
    foreign = tmp_path / "theirs.zarr"
    zarr.open_group(foreign, mode="w").create_array("data", data=np.arange(10))
    plain = tmp_path / "plain.oaims.zarr"
    plain.mkdir()
    (plain / "notes.txt").write_text("mine")
    before = tree_digest(tmp_path)
    with pytest.raises(ValueError, match="theirs.zarr is a Zarr folder but not a napari-oaims session"):
        SessionStore.open(foreign)
    with pytest.raises(ValueError, match="plain.oaims.zarr is not a Zarr folder"):
        SessionStore.open(plain)
    with pytest.raises(ValueError, match="refusing to overwrite .*theirs.zarr"):
        SessionStore.create(foreign, image, overwrite=True)
    with pytest.raises(FileExistsError, match="plain.oaims.zarr already exists"):
        SessionStore.create(plain, image)
    assert tree_digest(tmp_path) == before


def test_existing_session_needs_overwrite(tmp_path, nuclei):
    image, _, _ = nuclei
    path = tmp_path / "s.oaims.zarr"
    first = SessionStore.create(path, image)
    first.commit_object(1, image > np.percentile(image, 99))
    first.close()
    before = tree_digest(path)
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        SessionStore.create(path, image)
    assert tree_digest(path) == before
    SessionStore.create(path, image, overwrite=True)
    assert SessionStore.open(path).objects() == []
    assert not [p for p in tmp_path.iterdir() if p.name != "s.oaims.zarr"]  # no temporary folders left


@pytest.mark.parametrize(
    "damage, part",
    [
        ("delete array", "log/kind"),
        ("garble array metadata", "seq"),
        ("garble root metadata", "zarr.json"),
        ("garble chunk", "log/time"),
        ("truncate chunk", "log/seq"),
        ("garble journal", "journal.jsonl line 1"),
        ("drop table length", "objects"),
        ("garble weights metadata", "current.json"),
    ],
)
def test_damaged_session(tmp_path, nuclei, damage, part):
    image, _, _ = nuclei
    path = tmp_path / "d.oaims.zarr"
    store = SessionStore.create(path, image)
    for i in range(3):
        store.append_event(
            {
                "seq": i,
                "time": float(i),
                "kind": "click",
                "object": 1,
                "plane": [],
                "coords": [1, 2],
                "label": 1,
                "latency_ms": None,
                "weights": "w",
                "extra": {},
            }
        )
    if damage != "garble journal":
        store.close()
    if damage == "delete array":
        shutil.rmtree(path / "log" / "kind")
    elif damage == "garble array metadata":
        (path / "log" / "seq" / "zarr.json").write_text("{not json")
    elif damage == "garble root metadata":
        (path / "zarr.json").write_bytes(b"\x00\xff garbage")
    elif damage == "garble chunk":
        (path / "log" / "time" / "c" / "0").write_bytes(b"garbage")
    elif damage == "truncate chunk":
        chunk = path / "log" / "seq" / "c" / "0"
        chunk.write_bytes(chunk.read_bytes()[:10])
    elif damage == "garble weights metadata":
        (path / "model").mkdir(exist_ok=True)
        (path / "model" / "current.json").write_text('{"weights_hash": "abc", ')
    elif damage == "garble journal":
        with (path / "log" / "journal.jsonl").open("r+b") as f:
            f.write(b"#garbled#")
    else:
        meta = json.loads((path / "objects" / "zarr.json").read_text())
        del meta["attributes"]["length"]
        (path / "objects" / "zarr.json").write_text(json.dumps(meta))
    before = tree_digest(path)
    for read_only in (False, True):
        with pytest.raises(ValueError, match=re.escape(f"session {path} is damaged") + ".*" + re.escape(part)):
            SessionStore.open(path, read_only=read_only)
    assert tree_digest(path) == before  # opening a damaged session changes nothing


def test_saving_under_a_file(tmp_path, nuclei):
    image, _, _ = nuclei
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="afile is a file, not a folder"):
        SessionStore.create(tmp_path / "afile" / "s.oaims.zarr", image)
    with pytest.raises(ValueError, match="a file with that name exists"):
        SessionStore.create(tmp_path / "afile", image)
    assert (tmp_path / "afile").read_text() == "x"


def test_read_only_folder(nuclei):
    """A real read-only folder: its mode is r-x and the code runs as a user that does not own it
    (as root, the block switches the effective user to 'nobody')."""
    image, _, _ = nuclei
    folder = Path(tempfile.mkdtemp(prefix="oaims-ro-"))
    try:
        existing = SessionStore.create(folder / "old.oaims.zarr", image)
        existing.append_event(
            {
                "seq": 0,
                "time": 1.0,
                "kind": "session",
                "object": 1,
                "plane": [],
                "coords": None,
                "label": None,
                "latency_ms": None,
                "weights": "w",
                "extra": {},
            }
        )
        existing.close()
        for p in [folder, *folder.rglob("*")]:
            p.chmod(0o555 if p.is_dir() else 0o444)
        before = tree_digest(folder)
        with as_unprivileged_user():
            with pytest.raises(PermissionError, match=re.escape(f"cannot save the session to {folder}/new.oaims.zarr")):
                SessionStore.create(folder / "new.oaims.zarr", image)
            with pytest.raises(PermissionError, match="old.oaims.zarr is read-only; open it with read_only=True"):
                SessionStore.open(folder / "old.oaims.zarr")
            viewer = SessionStore.open(folder / "old.oaims.zarr", read_only=True)
            assert [e["kind"] for e in viewer.events()] == ["session"]
            with pytest.raises(PermissionError, match="open read-only"):
                viewer.append_event({"seq": 1})
        assert tree_digest(folder) == before
    finally:
        for p in [folder, *folder.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        shutil.rmtree(folder)


def test_referenced_image_moved(tmp_path, engine, nuclei):
    image, _, centres = nuclei
    src = tmp_path / "data" / "img.tif"
    src.parent.mkdir()
    tifffile.imwrite(src, image)
    s = engine.session(tifffile.memmap(src))
    path = tmp_path / "ref.oaims.zarr"
    SessionStore.create(path, engine=engine, session=s, image_path=src, reference=True)
    s.click(centres[0])
    s.accept()
    assert not (path / "s0").exists()  # not embedded
    moved = tmp_path / "elsewhere" / "img.tif"
    moved.parent.mkdir()
    src.rename(moved)
    with pytest.raises(FileNotFoundError, match=re.escape(f"references the image file {src}, which is missing")):
        SessionStore.open(path)
    other = tmp_path / "other.tif"
    tifffile.imwrite(other, image[::-1].copy())
    with pytest.raises(ValueError, match="other.tif is not the image of session"):
        SessionStore.open(path, image_path=other)
    with pytest.raises(FileNotFoundError, match="image file not found"):
        SessionStore.open(path, image_path=tmp_path / "nowhere.tif")
    relinked = SessionStore.open(path, image_path=moved)
    np.testing.assert_array_equal(np.asarray(relinked.image()), image)
    assert SessionStore.open(path).meta["image"]["path"] == str(moved)  # the new location is recorded
    assert [o["id"] for o in SessionStore.open(path).objects()] == [1]


def test_big_images_are_referenced_automatically(tmp_path, nuclei):
    image, _, _ = nuclei
    src = tmp_path / "img.npy"
    np.save(src, image)
    st = SessionStore.create(tmp_path / "big.oaims.zarr", src, reference_threshold=1000)
    assert st.meta["image"]["mode"] == "reference" and st.meta["image"]["hash_method"] == "sha256"
    np.testing.assert_array_equal(np.asarray(st.image()), image)


def test_sampled_digest_of_huge_files(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "FULL_HASH_MAX", 1024)
    monkeypatch.setattr(store_mod, "SAMPLE_BLOCK", 64)
    f = tmp_path / "huge.raw"
    data = bytearray(np.random.default_rng(0).integers(0, 255, 20000, dtype=np.uint8).tobytes())
    f.write_bytes(bytes(data))
    method, digest = file_digest(f)
    assert method == "sha256-sampled"
    data[0] ^= 1  # the first block is always sampled
    f.write_bytes(bytes(data))
    assert file_digest(f)[1] != digest


def test_interrupted_layer_swap_is_recovered(tmp_path, nuclei):
    image, _, _ = nuclei
    store = SessionStore.create(tmp_path / "w.oaims.zarr", image)
    store.write_prompts([[5, 5]], [True], [], [])
    root = tmp_path / "w.oaims.zarr"
    (root / "prompts").rename(root / ".prompts.old-0123abcd")  # crashed between the two renames
    (root / "tmp-prompts-0123abcd").mkdir()  # ... of a half-built replacement
    again = SessionStore.open(root)
    assert again.prompts().points.tolist() == [[5.0, 5.0]]
    assert sorted(p.name for p in root.iterdir() if "prompts" in p.name) == ["prompts"]


def test_accepted_class_goes_into_the_log_and_the_objects_table(tmp_path, engine, nuclei):
    image, _, centres = nuclei
    s = engine.session(image)
    store = SessionStore.create(tmp_path / "c.oaims.zarr", image, engine=engine, session=s)
    s.click(centres[0])
    with pytest.raises(ValueError, match="class"):
        s.accept(class_id=0)
    assert s.mask is not None and s.mask.any()  # a refused accept changes nothing
    s.accept(class_id=3, class_name="mitosis")
    s.click(centres[1])
    s.accept()
    assert {k: s.events[-1]["extra"][k] for k in ("class_id", "class_name")} == {"class_id": 1, "class_name": "object"}
    store.close()
    rows = SessionStore.open(tmp_path / "c.oaims.zarr", read_only=True).objects()
    assert [(o["id"], o["class_id"], o["class_name"]) for o in rows] == [(1, 3, "mitosis"), (2, 1, "object")]


def _mi_session(nuclei, tmp_path, name="mi.oaims.zarr"):
    image, labels, _ = nuclei
    engine = Engine.pretrained(device="cpu", adaptation="oaims")
    s = engine.session(image)
    store = SessionStore.create(tmp_path / name, image, engine=engine, session=s)
    return engine, s, store, labels


def _annotate_with_corrections(s, labels, lid, clicks=4):
    from napari_oaims.simulate.robot import Robot

    target = labels == lid
    robot = Robot(seed=0)
    robot.reset(lid)
    pred = np.zeros_like(target)
    for _ in range(clicks):
        c = robot.next_click(pred, target)
        if c is None:
            break
        pred = s.click((c.y, c.x), positive=c.positive).mask


def test_adapted_weights_are_written_at_accept_not_after_every_update(nuclei, tmp_path, monkeypatch):
    engine, s, store, labels = _mi_session(nuclei, tmp_path)
    saves = []
    real = SessionStore.save_model

    def counting(self, eng, name="current"):
        saves.append(eng.weights_hash)
        return real(self, eng, name)

    monkeypatch.setattr(SessionStore, "save_model", counting)
    store.model_save_interval_s = 1e9  # this test's timing must not decide what is written
    ids = [int(i) for i in np.unique(labels) if i][:3]
    for lid in ids:
        _annotate_with_corrections(s, labels, lid)
        s.accept()
    updates = sum(e["kind"] == "update" and not e["extra"].get("rolled_back") for e in s.events)
    assert updates > 2 * len(ids)  # MI steps on corrections plus two PI steps per object
    assert len(saves) <= 2 * len(ids) + 1  # at accept and after an object's PI updates, not after each update
    store.close()
    reopened = SessionStore.open(store.path)
    state = reopened.resume(device="cpu")
    assert state.weights == engine.weights_hash and state.lost_updates == 0 and state.weights_match
    assert "as the log left them" in state.weights_note
    state.store.close()


def test_while_updates_go_on_weights_are_written_at_most_every_interval(nuclei, tmp_path, monkeypatch):
    engine, s, store, labels = _mi_session(nuclei, tmp_path)
    store.model_save_interval_s = 0.0  # every update is "due": the file follows each one
    written = []
    real = SessionStore.save_model

    def recording(self, eng, name="current"):
        out = real(self, eng, name)
        written.append(json.loads((self.path / "model" / "current.json").read_text())["weights_hash"])
        return out

    monkeypatch.setattr(SessionStore, "save_model", recording)
    _annotate_with_corrections(s, labels, [int(i) for i in np.unique(labels) if i][0], clicks=3)
    mi = [e for e in s.events if e["kind"] == "update"]
    assert mi and {e["weights"] for e in mi} <= set(written)  # no accept yet: written by the interval rule
    store.model_save_interval_s = 1e9
    s.accept()  # written at accept; its Post-Interaction updates follow
    n = sum(e["kind"] == "update" for e in s.events)
    assert n > len(mi)
    written.clear()
    _annotate_with_corrections(s, labels, [int(i) for i in np.unique(labels) if i][1], clicks=3)
    assert sum(e["kind"] == "update" for e in s.events) > n  # Mid-Interaction updates of the next object
    assert len(written) == 1  # within the interval: only at that object's first event (for the PI updates)
    store.close()


def test_a_crash_loses_at_most_the_updates_since_the_last_write_and_resume_says_so(nuclei, tmp_path):
    engine, s, store, labels = _mi_session(nuclei, tmp_path)
    store.model_save_interval_s = 1e9  # this test's timing must not decide what is written
    lid = [int(i) for i in np.unique(labels) if i][0]
    _annotate_with_corrections(s, labels, lid, clicks=2)
    s.accept()  # PI updates: written at the next event or at close
    lid2 = [int(i) for i in np.unique(labels) if i][1]
    _annotate_with_corrections(s, labels, lid2, clicks=3)  # MI updates since the last write
    logged = s.events[-1]["weights"]
    # No close(): the process dies here. The journal holds every event; the weights file holds
    # the weights as of the first event after the PI run.
    state = SessionStore.open(store.path).resume(device="cpu")
    assert state.weights != logged and not state.weights_match and state.logged_weights == logged
    assert 0 < state.lost_updates <= 3
    assert f"the {state.lost_updates} update(s) logged after them were lost" in state.weights_note
    state.store.close()


@pytest.mark.slow
def test_kill9_while_learning_loses_at_most_the_updates_since_the_last_weights_write(tmp_path):
    """A real ``kill -9`` of a session that adapts online: every acknowledged event is there, the
    saved weights load and are weights the log names, and resume says what the crash lost."""
    result = kill_run(tmp_path / "ka.oaims.zarr", "adapt", delay_s=0.3, min_acks=12)
    assert result["ok"] and result["lost"] == 0, result
    saved = result["weights"]
    assert saved["updates"] > 0 and saved["known"], result  # PI updates ran, and the log names the saved weights
    state = SessionStore.open(tmp_path / "ka.oaims.zarr").resume(device="cpu")
    assert state.weights == saved["hash"] and state.lost_updates == saved["lost_updates"]
    assert state.weights_match == (state.lost_updates == 0)
    if state.lost_updates:
        assert f"the {state.lost_updates} update(s) logged after them were lost" in state.weights_note
    # what is lost are the updates of one object at most (the last one accepted): weights are
    # written at each accept and at the next object's first event
    events = state.events[:-1]
    last = max(i for i, e in enumerate(events) if e["weights"] == state.weights)
    assert len({e["object"] for e in events[last + 1 :] if e["kind"] == "update"}) <= 1
    state.store.close()


def test_damaged_weights_file_is_named_and_nothing_changes(tmp_path, nuclei):
    engine, s, store, labels = _mi_session(nuclei, tmp_path, "w.oaims.zarr")
    _annotate_with_corrections(s, labels, [int(i) for i in np.unique(labels) if i][0], clicks=2)
    s.accept()
    store.close()
    weights = store.path / "model" / "current.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    reopened = SessionStore.open(store.path)
    before = tree_digest(store.path)
    with pytest.raises(
        ValueError,
        match=re.escape(f"session {store.path} is damaged: its saved weights cannot be loaded")
        + ".*current.safetensors",
    ):
        reopened.resume(device="cpu")
    assert tree_digest(store.path) == before


def as_version_1(path: Path) -> None:
    """Make a folder what format version 1 wrote: version 1 in the attrs, and adapter settings (in
    the log and in the saved weights) that name the retired experiment settings at the values the
    shipped behaviour used."""
    from napari_oaims.adapt.settings import RETIRED

    root = zarr.open_group(path, mode="r+")
    meta = dict(root.attrs["napari_oaims"])
    meta["format_version"] = 1
    root.attrs["napari_oaims"] = meta
    n = root["log"].attrs["length"]
    rows = [json.loads(str(v)) for v in root["log/extra"][:n]]
    rows = [{**v, "adapter": {**v["adapter"], **RETIRED}} if "adapter" in v else v for v in rows]
    root["log/extra"][:n] = np.array([dumps(v) for v in rows], dtype=object)
    model = path / "model" / "current.json"
    if model.is_file():
        config = json.loads(model.read_text())
        config["adapted_from"]["adaptation"] = {**config["adapted_from"]["adaptation"], **RETIRED}
        model.write_text(json.dumps(config))


def test_format_version_1_folders_open_resume_and_are_migrated_on_read(nuclei, tmp_path):
    engine, s, store, labels = _mi_session(nuclei, tmp_path, "v1.oaims.zarr")
    _annotate_with_corrections(s, labels, [int(i) for i in np.unique(labels) if i][0], clicks=2)
    s.accept()
    store.close()
    today = SessionStore.open(store.path, read_only=True).events()
    assert any("adapter" in e["extra"] for e in today)
    as_version_1(store.path)
    meta_file = store.path / "zarr.json"
    before = tree_digest(store.path)
    ro = SessionStore.open(store.path, read_only=True)
    assert ro.meta["format_version"] == 1
    assert ro.events() == today  # migrated on read: no retired settings in the adapter settings
    ro.close()
    assert tree_digest(store.path) == before  # reading changes nothing on disk
    state = SessionStore.open(store.path).resume(device="cpu")
    assert state.weights_match and state.weights == engine.weights_hash
    assert state.engine.adapter.settings() == engine.adapter.settings()
    state.store.close()
    meta = json.loads(meta_file.read_text())["attributes"]["napari_oaims"]
    assert meta["format_version"] == FORMAT_VERSION and meta["upgraded_from"] == 1
    assert SessionStore.open(store.path, read_only=True).events()[: len(today)] == today  # old rows still migrated


def test_unknown_and_newer_format_versions_are_refused(nuclei, tmp_path):
    image, _, _ = nuclei
    store = SessionStore.create(tmp_path / "v.oaims.zarr", image)
    store.close()
    meta_file = store.path / "zarr.json"
    meta = json.loads(meta_file.read_text())
    for bad, match in (
        (99, "format version 99, newer than this napari-oaims reads.*update napari-oaims"),
        ("two", "damaged: unknown format version 'two'"),
        (True, "unknown format version True"),
        (None, "unknown format version None"),
    ):
        meta["attributes"]["napari_oaims"]["format_version"] = bad
        meta_file.write_text(json.dumps(meta))
        before = tree_digest(store.path)
        for read_only in (True, False):
            with pytest.raises(ValueError, match=match):
                SessionStore.open(store.path, read_only=read_only)
        assert tree_digest(store.path) == before


def test_resume_without_saved_weights_restores_the_logged_adapter(tmp_path):
    from napari_oaims.data import sample_nuclei

    image, _ = sample_nuclei()
    engine = Engine.pretrained(device="cpu", adaptation="pi")
    s = engine.session(image[:96, :96])
    store = SessionStore.create(tmp_path / "a.oaims.zarr", image[:96, :96], engine=engine, session=s)
    store.close()
    state = SessionStore.open(store.path).resume(device="cpu")
    assert state.engine.adaptation == "pi" and state.engine.adapter.settings() == engine.adapter.settings()
    state.store.close()
