"""One writer per session folder: a real second process is refused, a dead writer's lock is taken over."""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

_WRITER = """
import sys
from napari_oaims.store.session_store import SessionStore
store = SessionStore.open(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
store.close()
"""


def _session(tmp_path) -> Path:
    from napari_oaims.store.session_store import SessionStore

    image = np.random.default_rng(0).integers(0, 255, (64, 64)).astype(np.uint8)
    SessionStore.create(tmp_path / "s.oaims.zarr", image).close()
    return tmp_path / "s.oaims.zarr"


def _writer(folder: Path) -> subprocess.Popen:
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    line = proc.stdout.readline()
    if line.strip() != b"ready":
        proc.kill()
        raise AssertionError(f"the writer did not start: {line!r} {proc.stderr.read().decode()[-2000:]}")
    return proc


def test_a_second_process_is_refused_while_the_first_writes(tmp_path):
    from napari_oaims.store.folder import SessionInUseError
    from napari_oaims.store.session_store import SessionStore

    folder = _session(tmp_path)
    proc = _writer(folder)
    try:
        with pytest.raises(SessionInUseError, match=rf"process {proc.pid} on host {socket.gethostname()}"):
            SessionStore.open(folder)
        with pytest.raises(ValueError, match="read_only=True"):
            SessionStore.open(folder)
        with pytest.raises(SessionInUseError):
            SessionStore.create(folder, np.ones((8, 8)) * np.arange(8), overwrite=True)
        readonly = SessionStore.open(folder, read_only=True)  # readers are never locked out
        assert readonly.events() == []
        readonly.close()
    finally:
        proc.stdin.write(b"\n")
        proc.stdin.flush()
        assert proc.wait(timeout=60) == 0
    again = SessionStore.open(folder)  # the writer closed: the folder is free
    again.close()


def test_the_lock_of_a_killed_writer_is_taken_over(tmp_path):
    from napari_oaims.store.session_store import SessionStore

    folder = _session(tmp_path)
    proc = _writer(folder)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    owner = json.loads((folder / "writer.lock").read_text())
    assert owner["pid"] == proc.pid  # the dead writer's record is still there
    store = SessionStore.open(folder)
    assert json.loads((folder / "writer.lock").read_text())["pid"] == os.getpid()
    store.close()


def test_stores_of_one_process_share_the_lock(tmp_path):
    from napari_oaims.store.session_store import SessionStore

    folder = _session(tmp_path)
    first = SessionStore.open(folder)
    second = SessionStore.open(folder)  # e.g. reopened while the first is still attached
    second.close()
    first.close()


def _sleep(started, seconds: float) -> None:
    import time

    started.set()
    time.sleep(seconds)


def test_a_forked_child_does_not_keep_the_lock(tmp_path):
    """A child forked while the folder is open (multiprocessing's fork) must not hold the lock
    once the parent closes the store."""
    import multiprocessing

    from napari_oaims.store.session_store import SessionStore

    folder = _session(tmp_path)
    store = SessionStore.open(folder)
    fork = multiprocessing.get_context("fork")
    started = fork.Event()
    child = fork.Process(target=_sleep, args=(started, 30))
    child.start()
    try:
        assert started.wait(timeout=30)
        store.close()
        again = SessionStore.open(folder)  # a new lock: the child's copy of the old one is gone
        again.close()
    finally:
        child.kill()
        child.join()


def test_a_store_dropped_unclosed_frees_the_folder_at_once(tmp_path, nuclei_crop):
    """A store's parts hold no reference back to the store, so the last reference to an unclosed
    store gives back the writer lock at once (not at a later garbage collection)."""
    import gc

    from napari_oaims.store.session_store import SessionStore

    folder = tmp_path / "d.oaims.zarr"
    store = SessionStore.create(folder, nuclei_crop[0])
    store.commit_object(1, nuclei_crop[1] == np.unique(nuclei_crop[1])[1])  # every part in use
    store.write_prompts([[1.0, 2.0]], [True], [], [])
    assert store.objects() and store.prompts().points.shape == (1, 2)
    gc.collect()
    gc.disable()  # only reference counting may free the store here
    try:
        del store
        proc = _writer(folder)  # another process can write the folder now
    finally:
        gc.enable()
    proc.stdin.write(b"\n")
    proc.stdin.flush()
    assert proc.wait(timeout=60) == 0
