"""A session folder never makes the tool write outside it: links that leave it are refused."""

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest


def _digest(path: Path) -> dict[str, str]:
    """sha256 of every file under ``path`` (or of the file itself)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def _session(tmp_path, engine, nuclei_crop) -> Path:
    from napari_oaims.store.session_store import SessionStore

    from conftest import largest_ids, object_centre

    image, labels = nuclei_crop
    s = engine.session(image)
    store = SessionStore.create(tmp_path / "s.oaims.zarr", engine=engine, session=s)
    s.click(object_centre(labels, largest_ids(labels, 1)[0]))
    s.accept()
    store.close()
    return tmp_path / "s.oaims.zarr"


def test_a_journal_linked_outside_is_refused_and_left_alone(tmp_path, engine, nuclei_crop):
    from napari_oaims.store.session_store import SessionStore

    folder = _session(tmp_path, engine, nuclei_crop)
    outside = tmp_path / "notes.txt"
    outside.write_bytes(b"someone's notes\nthe last line, no newline")
    journal = folder / "log" / "journal.jsonl"
    journal.unlink()
    journal.symlink_to(outside)
    before = _digest(outside)
    with pytest.raises(ValueError, match=r"log/journal.jsonl is a link to .*notes.txt, outside the folder"):
        SessionStore.open(folder)
    with pytest.raises(ValueError, match="outside the folder"):
        SessionStore.open(folder).resume(engine=engine)
    assert _digest(outside) == before


def test_a_chunk_folder_linked_outside_is_refused_and_left_alone(tmp_path, engine, nuclei_crop):
    from napari_oaims.store.session_store import SessionStore

    folder = _session(tmp_path, engine, nuclei_crop)
    chunks = next(p for p in (folder / "labels").rglob("c") if p.is_dir())
    outside = tmp_path / "elsewhere"
    shutil.move(chunks, outside)
    os.symlink(outside, chunks)
    before = _digest(outside)
    with pytest.raises(ValueError, match="outside the folder"):
        SessionStore.open(folder)
    assert _digest(outside) == before
    assert np.asarray(SessionStore.open(folder, read_only=True).labels()[...]).any()  # reading is allowed


def test_a_link_inside_the_folder_is_allowed(tmp_path, engine, nuclei_crop):
    from napari_oaims.store.session_store import SessionStore

    folder = _session(tmp_path, engine, nuclei_crop)
    (folder / "notes").symlink_to(folder / "model")
    SessionStore.open(folder).close()


def test_a_hard_linked_journal_is_refused(tmp_path, engine, nuclei_crop):
    from napari_oaims.store.session_store import SessionStore

    folder = _session(tmp_path, engine, nuclei_crop)
    outside = tmp_path / "ledger.jsonl"
    outside.write_bytes(b"someone else's records\n")
    journal = folder / "log" / "journal.jsonl"
    journal.unlink()
    os.link(outside, journal)
    before = _digest(outside)
    with pytest.raises(ValueError, match="journal.jsonl is a hard link"):
        SessionStore.open(folder)
    assert _digest(outside) == before
