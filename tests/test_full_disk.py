"""Autosave on a really full disk: a 256 KiB tmpfs (needs root; skipped where mounting is refused)."""

import os

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
