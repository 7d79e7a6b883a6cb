"""The session's tables and its write-ahead journal.

Tables (``objects/``, ``log/``) are groups of 1-D or 2-D arrays sharing their first axis; the group
attr ``length`` is the number of committed rows (arrays may be longer: capacity grows in chunks).
Rows are written first and ``length`` last, and every file write of Zarr's LocalStore is atomic
(temporary file + rename), so a crash leaves the previous committed state readable.

Every event is first appended as one JSON line to ``log/journal.jsonl`` (one unbuffered
``write``: it survives ``kill -9``; ``fsync`` is not called, so a power cut may lose what the OS
had not flushed). A write that puts only part of its line on disk (a full disk) is taken back
(the file is truncated to its last whole record) and raises ``OSError``, so a later record never
continues a torn one. Journal records are compacted into the arrays every :data:`COMPACT_EVERY`
records and on close; readers merge arrays and journal. A torn last line (the record in flight at
a crash) is dropped with a warning, and so is a torn record with a whole record written after it
on the same line: every whole record is kept.
"""

from __future__ import annotations

import errno
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from napari_oaims.core.events import dumps as _dumps
from napari_oaims.core.events import normalise_event
from napari_oaims.store.layout import COMPACT_EVERY, HASH_WIDTH, ROWS_PER_CHUNK, migrate_events, rebuild_group

#: ``os.open`` flag that refuses to follow a symbolic link (0 where the platform has none).
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_RECORD_START = re.compile(rb'\{"')


def truncate(path: Path, size: int) -> None:
    """Cut file ``path`` to ``size`` bytes without following a symbolic link."""
    fd = os.open(path, os.O_WRONLY | NOFOLLOW)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def _record(line: bytes) -> dict[str, Any] | None:
    """The journal record on ``line``, or None if it is not one whole record."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    if isinstance(record.get("object_row"), dict) and isinstance(record["object_row"].get("id"), int):
        return record
    return record if isinstance(record.get("seq"), int) else None


def parse_journal(data: bytes) -> tuple[list[dict[str, Any]], list[str], int | None]:
    """The whole records of a journal's bytes, what was dropped (one note each), and the line
    number of a garbled line that is not a torn write (None if there is none).

    A torn record is what a crash or a full disk leaves of a write: the last line without its
    newline, or (a write was retried after a short one) the start of a line followed by the whole
    record, written again."""
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" after a complete last line; else the torn record in flight
    records: list[dict[str, Any]] = []
    dropped = [f"a torn last record ({len(tail)} bytes)"] if tail else []
    for n, line in enumerate(lines):
        record = _record(line)
        if record is None:
            starts = [m.start() for m in _RECORD_START.finditer(line) if m.start() > 0]
            record = next((r for r in (_record(line[i:]) for i in starts) if r is not None), None)
            if record is None:
                if n == len(lines) - 1 and not tail:  # the last line: a torn record
                    dropped.append(f"a torn record on line {n + 1} ({len(line)} bytes)")
                    continue
                return records, dropped, n + 1
            dropped.append(f"a torn record before the whole record on line {n + 1}")
        records.append(record)
    return records, dropped, None


def node(group: zarr.Group, key: str):
    """``group[key]``, or a ``ValueError`` naming the node when it is missing or unreadable."""
    where = f"{group.path}/{key}".lstrip("/")
    try:
        return group[key]
    except KeyError:
        raise ValueError(f"{where} is missing") from None
    except Exception as err:  # noqa: BLE001 - whatever Zarr raises for damaged metadata
        raise ValueError(f"{where} is unreadable ({type(err).__name__}: {err})") from None


class _Table:
    """Arrays in one group sharing their first axis; the group attr ``length`` counts committed rows."""

    def __init__(self, group: zarr.Group, columns: dict[str, tuple[str, int]]):
        self.group = group
        self.columns = columns
        self.arrays = {name: node(group, name) for name in columns}
        length = group.attrs.get("length")
        if not isinstance(length, int) or length < 0:
            raise ValueError(f"table {group.path} has no valid 'length' attribute")
        self.length = length
        short = [n for n, a in self.arrays.items() if a.shape[0] < length]
        if short:
            raise ValueError(f"table {group.path}: arrays {short} are shorter than its length {length}")

    @classmethod
    def create(cls, group: zarr.Group, columns: dict[str, tuple[str, int]], **attrs) -> "_Table":
        for name, (dtype, width) in columns.items():
            shape, chunks = ((0,), (ROWS_PER_CHUNK,)) if width == 0 else ((0, width), (ROWS_PER_CHUNK, width))
            fill = -1 if dtype in ("i1", "i4", "i8") else (np.nan if dtype == "f8" else None)
            kw = {} if fill is None else {"fill_value": fill}
            group.create_array(name, shape=shape, chunks=chunks, dtype=str if dtype == "str" else dtype, **kw)
        group.attrs.update({"length": 0, **attrs})
        return cls(group, columns)

    def append(self, rows: dict[str, np.ndarray]) -> None:
        k = len(next(iter(rows.values())))
        if k == 0:
            return
        n = self.length
        for name, arr in self.arrays.items():
            if arr.shape[0] < n + k:
                cap = max(n + k, 2 * arr.shape[0], ROWS_PER_CHUNK)
                cap = -(-cap // ROWS_PER_CHUNK) * ROWS_PER_CHUNK
                arr.resize((cap, *arr.shape[1:]))
            arr[n : n + k] = rows[name]
        self.group.attrs["length"] = n + k
        self.length = n + k

    def read(self) -> dict[str, np.ndarray]:
        out = {}
        for name, arr in self.arrays.items():
            try:
                out[name] = arr[: self.length]
            except Exception as err:  # noqa: BLE001 - a damaged chunk: name the array
                raise ValueError(f"array {self.group.path}/{name} is damaged: {err}") from err
        return out


_LOG_COLUMNS = {
    "time": ("f8", 0),
    "seq": ("i8", 0),
    "kind": ("u1", 0),
    "object": ("i4", 0),
    "plane": ("i4", -1),
    "coords": ("str", 0),
    "label": ("i1", 0),
    "latency_ms": ("f8", 0),
    "weights": ("u1", HASH_WIDTH),
    "extra": ("str", 0),
}
_OBJECT_COLUMNS = {
    "id": ("i4", 0),
    "class_id": ("i4", 0),
    "class_name": ("str", 0),
    "area": ("i8", 0),
    "planes": ("str", 0),
}


def _log_columns(plane_width: int) -> dict[str, tuple[str, int]]:
    return {k: (d, plane_width if w == -1 else w) for k, (d, w) in _LOG_COLUMNS.items()}


class Journal:
    """The event log and objects table of a session folder: arrays plus journal, appending through
    the journal, compaction.

    An objects-table row is journaled as ``{"object_row": {...}}`` with the new absolute areas of
    the objects it painted over (``areas``), so that applying a row twice is harmless.

    Parameters
    ----------
    root : zarr.Group
        The session folder's root group: the journal reads and writes its ``log`` and ``objects``
        groups only.
    folder : Path
        The session folder: the journal file is ``log/journal.jsonl`` in it, and error messages
        name it.
    plane_width : int
        Coordinates per plane index in the log (the number of non-plane spatial axes, at least 1).
    version : int
        The format version the folder was written with: older records are migrated on read.
    lock : threading.RLock
        The store's lock, held while the journal changes.
    read_only : bool
        Open without writing: a torn journal is read but not repaired, and nothing is compacted.
    """

    def __init__(self, root: zarr.Group, folder: Path, plane_width: int, version: int, lock, read_only: bool):
        self._root = root
        self._folder = folder
        self._lock = lock
        self._read_only = read_only
        self._plane_width = plane_width
        self._log = _Table(node(root, "log"), _log_columns(plane_width))
        self._objects = _Table(node(root, "objects"), _OBJECT_COLUMNS)
        self._kinds: dict[str, int] = dict(self._log.group.attrs["kinds"])
        self._file = folder / "log" / "journal.jsonl"
        self._end: int | None = None  # where the journal's last whole record ends after a failed cut
        self._rows = self._read_rows()
        self._pending_events, self._pending_objects = self._read_journal(repair=not read_only)
        self._areas = self._current_areas()  # current area of every object (as on disk)
        migrate_events(self._rows, version)  # an older folder, as today's (in memory)
        migrate_events(self._pending_events, version)
        seqs = [e["seq"] for e in self._rows + self._pending_events]
        self._next_seq = max(seqs) + 1 if seqs else 0

    @property
    def next_seq(self) -> int:
        """The ``seq`` the next event gets (one more than the log's last)."""
        return self._next_seq

    @property
    def n_objects(self) -> int:
        """Objects in the table (arrays and journal)."""
        return len(self._areas)

    def _read_rows(self) -> list[dict[str, Any]]:
        cols = self._log.read()
        names = {c: k for k, c in self._kinds.items()}
        out = []
        try:
            for i in range(self._log.length):
                plane = cols["plane"][i]
                out.append(
                    {
                        "seq": int(cols["seq"][i]),
                        "time": float(cols["time"][i]),
                        "kind": names[int(cols["kind"][i])],
                        "object": int(cols["object"][i]),
                        "plane": [int(v) for v in plane if v >= 0],
                        "coords": json.loads(cols["coords"][i]),
                        "label": None if cols["label"][i] < 0 else int(cols["label"][i]),
                        "latency_ms": None if np.isnan(cols["latency_ms"][i]) else float(cols["latency_ms"][i]),
                        "weights": bytes(cols["weights"][i]).rstrip(b"\0").decode("ascii"),
                        "extra": json.loads(cols["extra"][i]),
                    }
                )
        except (KeyError, ValueError, UnicodeDecodeError) as err:
            raise ValueError(f"session {self._folder} is damaged: log row {len(out)} unreadable ({err})") from err
        return out

    def _read_journal(self, repair: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Journal records not yet in the arrays: (events, objects-table rows). Torn records are
        dropped with a warning (and, with ``repair``, removed from the file)."""
        if not self._file.is_file():
            return [], []
        data = self._file.read_bytes()
        records, dropped, garbled = parse_journal(data)
        if garbled is not None:
            raise ValueError(f"session {self._folder} is damaged: {self._file} line {garbled} is garbled")
        if dropped:
            warnings.warn(
                f"session {self._folder}: {self._file.name} held {', '.join(dropped)}, left by a crash or a "
                f"full disk; dropped, every whole record is kept ({len(records)})",
                RuntimeWarning,
                stacklevel=5,
            )
            if repair:
                clean = b"".join((_dumps(r) + "\n").encode() for r in records)
                tmp = self._file.with_name(f".{self._file.name}.repair")
                tmp.write_bytes(clean)
                os.replace(tmp, self._file)
        done = {e["seq"] for e in self._rows}
        done_ids = set(self._objects.read()["id"].tolist())
        events, objects = [], []
        for record in records:
            if "object_row" in record:
                if record["object_row"]["id"] not in done_ids:
                    objects.append(record["object_row"])
            elif record["seq"] not in done:
                events.append(record)
        return events, objects

    # -- objects table (arrays + journaled rows) --------------------------------------------------
    def objects(self) -> list[dict[str, Any]]:
        """One dict per object: id, class_id, class_name, area, planes."""
        rows = self._committed_objects() + [{k: r[k] for k in _OBJECT_COLUMNS} for r in self._pending_objects]
        for r in rows:
            r["area"] = self._areas.get(r["id"], r["area"])
        return rows

    def _committed_objects(self) -> list[dict[str, Any]]:
        cols = self._objects.read()
        return [
            {"id": int(i), "class_id": int(c), "class_name": str(n), "area": int(a), "planes": json.loads(p)}
            for i, c, n, a, p in zip(cols["id"], cols["class_id"], cols["class_name"], cols["area"], cols["planes"])
        ]

    def _current_areas(self) -> dict[int, int]:
        areas = {o["id"]: o["area"] for o in self._committed_objects()}
        for r in self._pending_objects:
            areas.update({int(i): int(a) for i, a in r["areas"]})
            areas[r["id"]] = r["area"]
        return areas

    def record_object(
        self,
        object_id: int,
        area: int,
        planes,
        overwritten: dict,
        class_id: int,
        class_name: str,
        compact: bool = True,
    ) -> None:
        """Journal a new objects-table row; ``areas`` holds the new (absolute, so replaying the journal
        twice is harmless) areas of the objects it painted over."""
        updates = [[int(i), self._areas[i] - int(n)] for i, n in sorted(overwritten.items()) if i in self._areas]
        row = {
            "id": int(object_id),
            "class_id": int(class_id),
            "class_name": str(class_name),
            "area": int(area),
            "planes": planes,
            "areas": updates,
        }
        self._write({"object_row": row})
        self._pending_objects.append(row)
        self._areas.update(dict(updates))
        self._areas[row["id"]] = row["area"]
        if compact:
            self.compact_if_due()

    # -- event log -------------------------------------------------------------------------------
    def events(self) -> list[dict[str, Any]]:
        """The whole interaction log, ordered by ``seq``."""
        with self._lock:
            return sorted(self._rows + self._pending_events, key=lambda e: e["seq"])

    def append(self, event: dict[str, Any]) -> None:
        """Append one event to the log (journal write now, compaction into the arrays when due)."""
        ev = normalise_event(event)
        with self._lock:
            self._write(ev)
            self._pending_events.append(ev)
            self._next_seq = max(self._next_seq, ev["seq"] + 1)
            self.compact_if_due()

    def _write(self, record: dict[str, Any]) -> None:
        """Append one record as one ``write(2)`` (all or nothing on ``kill -9``). A short write (a
        full disk) is taken back and raises ``OSError``: a torn record is never followed."""
        line = (_dumps(record) + "\n").encode()
        try:
            fd = os.open(self._file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | NOFOLLOW, 0o644)
        except PermissionError as err:
            raise PermissionError(f"cannot write the session log {self._file}: {err}") from err
        try:
            start = os.fstat(fd).st_size
            if self._end is not None and start > self._end:
                os.ftruncate(fd, self._end)  # a torn record left by a failed write
                start = self._end
            self._end = None
            written, failure = 0, None
            while written < len(line) and failure is None:  # a short write: the next one says why
                try:
                    n = os.write(fd, line[written:])
                except OSError as err:
                    failure = err
                else:
                    written += n
                    if n == 0:
                        failure = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            if failure is not None:
                self._end = start
                os.ftruncate(fd, start)  # may fail too: then the next write cuts the torn record
                self._end = None
                raise OSError(
                    failure.errno,
                    f"the session log {self._file} took {written} of {len(line)} bytes "
                    f"({failure.strerror or failure}); the record was taken back and is written again "
                    "at the next event",
                ) from failure
        finally:
            os.close(fd)

    def compact_if_due(self) -> None:
        """Compact when :data:`~napari_oaims.store.layout.COMPACT_EVERY` records wait in the journal."""
        if len(self._pending_events) + len(self._pending_objects) >= COMPACT_EVERY:
            self.compact()

    def compact(self) -> None:
        """Move the journal's records into the log and objects arrays, then empty the journal."""
        with self._lock:
            if self._read_only or not (self._pending_events or self._pending_objects):
                return
            if self._pending_objects:
                self._compact_objects()
            if self._pending_events:
                self._compact_events()
            if self._file.exists():
                truncate(self._file, 0)

    def _compact_objects(self) -> None:
        n = self._objects.length
        if n and any(r["areas"] for r in self._pending_objects):
            ids = self._objects.arrays["id"][:n]
            old = self._objects.arrays["area"][:n]
            new = [self._areas.get(int(i), a) for i, a in zip(ids, old)]
            self._objects.arrays["area"][:n] = np.array(new, np.int64)
        rows = self._pending_objects
        self._objects.append(
            {
                "id": np.array([r["id"] for r in rows], np.int32),
                "class_id": np.array([r["class_id"] for r in rows], np.int32),
                "class_name": np.array([r["class_name"] for r in rows], dtype=object),
                "area": np.array([self._areas[r["id"]] for r in rows], np.int64),
                "planes": np.array([_dumps(r["planes"]) for r in rows], dtype=object),
            }
        )
        self._pending_objects = []

    def _compact_events(self) -> None:
        events = self._pending_events
        new = sorted({e["kind"] for e in events} - set(self._kinds))
        if new:
            self._kinds.update({k: max(self._kinds.values()) + 1 + i for i, k in enumerate(new)})
            self._log.group.attrs["kinds"] = self._kinds
        w = self._plane_width
        planes = np.full((len(events), w), -1, np.int32)
        for i, e in enumerate(events):
            if len(e["plane"]) > w:
                raise ValueError(
                    f"event {e['seq']} has a plane of {len(e['plane'])} coordinates; this session stores {w}"
                )
            planes[i, : len(e["plane"])] = e["plane"]
        weights = np.zeros((len(events), HASH_WIDTH), np.uint8)
        for i, e in enumerate(events):
            b = str(e["weights"]).encode("ascii")[:HASH_WIDTH]
            weights[i, : len(b)] = np.frombuffer(b, np.uint8)
        self._log.append(
            {
                "time": np.array([e["time"] for e in events], np.float64),
                "seq": np.array([e["seq"] for e in events], np.int64),
                "kind": np.array([self._kinds[e["kind"]] for e in events], np.uint8),
                "object": np.array([e["object"] for e in events], np.int32),
                "plane": planes,
                "coords": np.array([_dumps(e["coords"]) for e in events], dtype=object),
                "label": np.array([-1 if e["label"] is None else e["label"] for e in events], np.int8),
                "latency_ms": np.array([np.nan if e["latency_ms"] is None else e["latency_ms"] for e in events]),
                "weights": weights,
                "extra": np.array([_dumps(e["extra"]) for e in events], dtype=object),
            }
        )
        self._rows.extend(events)
        self._pending_events = []

    def replace_objects(self, rows: dict[str, np.ndarray]) -> None:
        """Compact, then replace the objects table by ``rows`` (one array per column), built beside
        the old table and swapped in."""
        with self._lock:
            self.compact()
            group = rebuild_group(
                self._root, self._folder, "objects", lambda g: _Table.create(g, _OBJECT_COLUMNS).append(rows)
            )
            self._objects = _Table(group, _OBJECT_COLUMNS)
            self._areas = self._current_areas()
