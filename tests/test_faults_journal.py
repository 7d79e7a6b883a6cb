"""A journal torn by a crash or a full disk opens: the torn records go (with a warning), whole ones stay."""

import json

import numpy as np
import pytest


def _event(seq: int) -> dict:
    return {
        "seq": seq,
        "time": 1.5 + seq,
        "kind": "click",
        "object": 1,
        "plane": [],
        "coords": [3, 4 + seq],
        "label": 1,
        "latency_ms": None,
        "weights": "abc",
        "extra": {"note": {"nested": seq}},
    }


def _line(record: dict) -> bytes:
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


@pytest.fixture
def folder(tmp_path):
    from napari_oaims.store.session_store import SessionStore

    image = np.random.default_rng(0).integers(0, 255, (64, 64)).astype(np.uint8)
    SessionStore.create(tmp_path / "t.oaims.zarr", image).close()
    return tmp_path / "t.oaims.zarr"


def test_a_record_glued_after_a_torn_one_is_kept(folder):
    """What a short write followed by a retry leaves: the start of record 2, then record 2 whole."""
    from napari_oaims.store.salvage import salvage
    from napari_oaims.store.session_store import SessionStore

    journal = folder / "log" / "journal.jsonl"
    torn = _line(_event(2))[:37]
    journal.write_bytes(_line(_event(0)) + _line(_event(1)) + torn + _line(_event(2)) + _line(_event(3)))
    with pytest.warns(RuntimeWarning, match="torn record before the whole record on line 3"):
        readonly = SessionStore.open(folder, read_only=True)
    assert [e["seq"] for e in readonly.events()] == [0, 1, 2, 3]
    assert readonly.events()[2]["extra"] == {"note": {"nested": 2}}
    with pytest.warns(RuntimeWarning, match="torn"):
        found = salvage(folder)
    assert found.damaged == {} and found.intact == ["image", "labels", "prompts"]
    with pytest.warns(RuntimeWarning, match="torn"):
        store = SessionStore.open(folder)  # writable: the journal is rewritten without the torn record
    assert journal.read_bytes() == b"".join(_line(_event(i)) for i in range(4))
    store.append_event(_event(4))
    store.close()
    assert [e["seq"] for e in SessionStore.open(folder, read_only=True).events()] == [0, 1, 2, 3, 4]


def test_a_torn_last_line_is_dropped_with_a_warning(folder):
    from napari_oaims.store.session_store import SessionStore

    journal = folder / "log" / "journal.jsonl"
    journal.write_bytes(_line(_event(0)) + _line(_event(1))[:-20] + b"\n")  # torn, then a newline
    with pytest.warns(RuntimeWarning, match="torn record on line 2"):
        store = SessionStore.open(folder)
    assert [e["seq"] for e in store.events()] == [0]
    store.close()


def test_garbage_in_the_middle_is_still_damage(folder):
    from napari_oaims.store.session_store import SessionStore

    journal = folder / "log" / "journal.jsonl"
    journal.write_bytes(_line(_event(0)) + b"not a record\n" + _line(_event(1)))
    with pytest.raises(ValueError, match="line 2 is garbled"):
        SessionStore.open(folder, read_only=True)


def test_objects_accepted_while_the_folder_is_not_writable_reach_the_labels(tmp_path, engine, nuclei_crop):
    from napari_oaims.store.session_store import SessionStore
    from test_store import as_unprivileged_user

    from conftest import largest_ids, object_centre

    image, labels = nuclei_crop
    s = engine.session(image)
    store = SessionStore.create(tmp_path / "r.oaims.zarr", engine=engine, session=s)
    ids = largest_ids(labels, 3)
    s.click(object_centre(labels, ids[0]))
    s.accept()  # saved
    with as_unprivileged_user(), pytest.warns(RuntimeWarning, match="autosave .* failed"):
        for lid in ids[1:]:  # the folder cannot be written meanwhile
            s.click(object_centre(labels, lid))
            s.accept()
    s.click(object_centre(labels, largest_ids(labels, 4)[3]))  # writable again: the next event saves the rest
    assert store.error is None
    accepted = [e["object"] for e in s.events if e["kind"] == "accept"]
    assert sorted(int(v) for v in np.unique(store.labels()[...]) if v) == accepted == [1, 2, 3]
    assert sorted(o["id"] for o in store.objects()) == accepted
    store.close()
