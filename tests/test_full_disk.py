"""Autosave on a really full disk: a 256 KiB tmpfs (needs root; skipped where mounting is refused)."""

import os
import warnings

import numpy as np
import pytest

from conftest import fill_disk, largest_ids, object_centre


def test_full_disk_keeps_working_and_loses_nothing(engine, nuclei_crop, tiny_disk):
    from napari_oaims.store.session_store import SessionStore

    image, labels = nuclei_crop
    s = engine.session(image[:128, :128])
    store = SessionStore.create(tiny_disk / "a.oaims.zarr", engine=engine, session=s)
    fill_disk(tiny_disk / "filler")
    lid = largest_ids(labels[:128, :128], 1)[0]
    y, x = object_centre(labels[:128, :128], lid)
    with pytest.warns(RuntimeWarning, match="No space left"):
        for _ in range(40):  # enough events to overflow what still fits
            s.click((y, x))
            s.undo()
    assert store.error is not None and s.mask is not None  # the session went on in memory
    os.remove(tiny_disk / "filler")
    s.click((y, x))  # space is back: the next event retries the autosave
    reopened = SessionStore.open(tiny_disk / "a.oaims.zarr")
    assert [e["seq"] for e in reopened.events()] == [e["seq"] for e in s.events]
    assert np.array_equal(reopened.events()[-1]["coords"], s.events[-1]["coords"])
    reopened.close()
    store.close()


def _annotate_on_full_disk(engine, nuclei_crop, folder, n_objects):
    """Fill the disk, then click and accept ``n_objects`` objects (autosave fails on the way)."""
    from napari_oaims.store.session_store import SessionStore

    image, labels = nuclei_crop
    s = engine.session(image)
    store = SessionStore.create(folder, engine=engine, session=s)
    fill_disk(folder.parent / "filler")
    ids = largest_ids(labels, n_objects)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for lid in ids:
            s.click(object_centre(labels, lid))
            s.accept()
    assert store.error is not None and any("No space left" in str(w.message) for w in caught)
    return s, store


def test_full_disk_never_tears_the_journal(engine, nuclei_crop, tiny_disk):
    """A short write is taken back: once the space is back, the journal holds whole records only,
    and the session reopens (as after a crash, before any compaction) with every event."""
    from napari_oaims.store.journal import parse_journal
    from napari_oaims.store.session_store import SessionStore

    image, labels = nuclei_crop
    folder = tiny_disk / "j.oaims.zarr"
    s = engine.session(image)
    store = SessionStore.create(folder, engine=engine, session=s)
    fill_disk(tiny_disk / "filler")
    point = object_centre(labels, largest_ids(labels, 1)[0])
    with pytest.warns(RuntimeWarning, match="No space left"):
        while store.error is None:  # until a journal line no longer fits
            s.click(point)
    os.remove(tiny_disk / "filler")
    s.click(point)  # saving works again
    assert store.error is None and len(s.events) < 64  # nothing compacted yet: the journal holds them
    records, dropped, garbled = parse_journal((folder / "log" / "journal.jsonl").read_bytes())
    assert dropped == [] and garbled is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing torn to drop
        crashed = SessionStore.open(folder, read_only=True)  # the writer was never closed: as after kill -9
    assert [e["seq"] for e in crashed.events()] == [e["seq"] for e in s.events]
    store.close()


def test_objects_accepted_while_the_disk_is_full_reach_the_labels(engine, nuclei_crop, tiny_disk):
    from napari_oaims.store.session_store import SessionStore

    folder = tiny_disk / "o.oaims.zarr"
    s, store = _annotate_on_full_disk(engine, nuclei_crop, folder, 3)
    accepted = sorted(e["object"] for e in s.events if e["kind"] == "accept")
    os.remove(tiny_disk / "filler")
    store.close()  # saves what failed before: every accepted object is painted
    again = SessionStore.open(folder, read_only=True)
    assert sorted(e["object"] for e in again.events() if e["kind"] == "accept") == accepted
    assert sorted(int(v) for v in np.unique(again.labels()[...]) if v) == accepted
    assert sorted(o["id"] for o in again.objects()) == accepted
    assert all(o["area"] > 0 for o in again.objects())
