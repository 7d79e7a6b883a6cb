"""Guards of a session folder open for writing: one writer at a time, and no write outside it.

**Writer lock.** A writable :class:`~napari_oaims.store.SessionStore` holds an exclusive lock on
``NAME.oaims.zarr/writer.lock`` (``flock`` on POSIX, ``msvcrt.locking`` on Windows), and the file
names its owner: pid, host and time, as JSON. Another process that opens the folder for writing is
refused with :class:`SessionInUseError` naming that owner. The operating system drops the lock
when its process ends, even by ``kill -9``, so a lock left by a process that is gone is taken
over at once; a pid alone could be reused by another process. Where the file system has no locks
the owner record decides: a live process on this host, or another host, keeps the folder.
Read-only opens take no lock. Stores of one process share its lock (a folder reopened in the
process that writes it; they must not write at the same time).

**Links.** Before anything is written, :func:`check_links` refuses a folder holding a symbolic
link that leads outside it (a journal, chunk or model file or folder elsewhere), or a hard-linked
journal or lock file: written through, it would change files that are not the session's.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

#: The lock file in a session folder open for writing.
LOCK_NAME = "writer.lock"


class SessionInUseError(PermissionError, ValueError):
    """The session folder is open for writing in another process."""


@dataclass
class _Held:
    fd: int
    users: int


class _Locks:
    """The writer locks this process holds, by folder (an OS lock belongs to the process, so
    its stores share it)."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.held: dict[tuple[str, int], _Held] = {}  # (folder, lock file inode)


_LOCKS = _Locks()


def _forget_in_child() -> None:
    """A forked child closes its copies of the lock files: the parent keeps its locks, and they
    do not outlive the parent in a child that writes nothing."""
    for held in _LOCKS.held.values():
        os.close(held.fd)
    _LOCKS.held.clear()
    _LOCKS.guard = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def _try_lock(fd: int) -> None:
    """Take the OS lock on ``fd`` without waiting: ``BlockingIOError`` if another process has it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as err:
            raise BlockingIOError(str(err)) from err
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _owner(fd: int) -> dict:
    """The owner record in the lock file (empty when it cannot be read)."""
    try:
        data = os.pread(fd, 4096, 0) if hasattr(os, "pread") else b""
        owner = json.loads(data.decode("utf-8"))
        return owner if isinstance(owner, dict) else {}
    except (OSError, ValueError):
        return {}


def _alive(owner: dict) -> bool:
    """Whether the lock file's owner may still be writing (no OS lock to ask)."""
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if owner.get("host") != socket.gethostname():
        return True  # another machine: its processes cannot be seen from here
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _busy(folder: Path, owner: dict) -> SessionInUseError:
    who = (
        f"process {owner.get('pid')} on host {owner.get('host')} (since {owner.get('since')})"
        if owner
        else "another process"
    )
    return SessionInUseError(
        f"session {folder} is open for writing by {who}; close it there first, or open it with "
        "read_only=True (a copy of the folder can be written)"
    )


def acquire_writer(folder: Path) -> tuple[str, int]:
    """Take the writer lock of session ``folder`` for this process (shared with this process's
    other stores of the folder); returns the key for :func:`release_writer`.

    Raises
    ------
    SessionInUseError
        Another process writes the folder; the message names it.
    """
    real = os.path.realpath(folder)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    with _LOCKS.guard:
        try:
            fd = os.open(os.path.join(real, LOCK_NAME), flags, 0o644)
        except OSError as err:
            raise PermissionError(f"cannot lock session {folder} for writing ({LOCK_NAME}: {err})") from err
        key = (real, os.fstat(fd).st_ino)
        held = _LOCKS.held.get(key)
        if held is not None:  # this process holds it: another file description leaves that lock alone
            os.close(fd)
            held.users += 1
            return key
        try:
            try:
                _try_lock(fd)
            except BlockingIOError:
                raise _busy(Path(folder), _owner(fd)) from None
            except OSError:  # no locks on this file system: the owner record decides
                owner = _owner(fd)
                if _alive(owner):
                    raise _busy(Path(folder), owner) from None
            record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(record).encode())
        except BaseException:
            os.close(fd)
            raise
        _LOCKS.held[key] = _Held(fd, 1)
        return key


def release_writer(key: tuple[str, int]) -> None:
    """Give back one use of the writer lock taken by :func:`acquire_writer` (the OS lock goes
    with the last one; the lock file stays, holding the last owner)."""
    with _LOCKS.guard:
        held = _LOCKS.held.get(key)
        if held is None:
            return
        held.users -= 1
        if held.users <= 0:
            del _LOCKS.held[key]
            os.close(held.fd)  # closing the file drops its lock


#: Files a writable store changes in place (appends, truncation) rather than by replacing them.
IN_PLACE = ("log/journal.jsonl", LOCK_NAME)


def check_links(folder: Path) -> None:
    """Refuse (``ValueError``) a session folder that holds a symbolic link leading outside it, or
    a file changed in place (:data:`IN_PLACE`) that is a hard link (it may be a file elsewhere).

    A symbolic link that stays inside the folder is allowed. Nothing is changed.
    """
    root = os.path.realpath(folder)
    hint = (
        "open it with read_only=True, or replace the link with a copy of what it points to (e.g. copy "
        "the folder with cp -rL)"
    )
    for here, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            entry = os.path.join(here, name)
            if not os.path.islink(entry):
                continue
            target = os.path.realpath(entry)
            if os.path.commonpath([root, target]) != root:
                rel = os.path.relpath(entry, root)
                raise ValueError(
                    f"session {folder} is not safe to write: {rel} is a link to {target}, outside the "
                    f"folder, so saving would change that file; {hint}"
                )
    for rel in IN_PLACE:
        entry = os.path.join(root, rel)
        if os.path.isfile(entry) and not os.path.islink(entry) and os.stat(entry).st_nlink > 1:
            raise ValueError(
                f"session {folder} is not safe to write: {rel} is a hard link (it has "
                f"{os.stat(entry).st_nlink} names), so saving would change a file outside the folder too; {hint}"
            )
