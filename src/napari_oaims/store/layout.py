"""The ``*.oaims.zarr`` session folder: format, layout, image storage and file digests.

A session folder holds everything needed to reopen, resume or replay the work::

    NAME.oaims.zarr/
      zarr.json           root group. attrs "ome": the NGFF multiscales of the image (embedded mode);
                          attrs "napari_oaims": format, format_version (upgraded_from), image info,
                          session parameters, base weights hash
      s0/                 the image (embedded mode): single-scale OME-Zarr, axes in NGFF order
                          (t, c, z, y, x); ``image_info["order"]`` maps them back to the caller's order
      labels/objects/     the accepted objects: NGFF labels "objects" (uint32, spatial axes only),
                          updated in place (region writes) as objects are accepted
      objects/            table of objects, one row each: id, class_id, class_name, area, planes (JSON)
      log/                the interaction log, one row per event (see "Event log" below)
      log/journal.jsonl   write-ahead journal: events not yet compacted into the log arrays
      priors/<seq>        prior masks given with ``Session.prior`` (bool plane arrays), by event seq
      barriers/<seq>      the voxels a propagation's barrier kept out (bool, the image's spatial
                          shape, only touched chunks stored), by the seq of its ``propagate`` event
      prompts/            prompt layers written with :meth:`SessionStore.write_prompts`:
                          points/coords (N, ndim) f8, points/positive (N,) bool,
                          shapes/vertices (M, ndim) f8, shapes/offsets (S+1,) i8 (shape i is
                          vertices[offsets[i]:offsets[i+1]]), shapes/type (S,) str ("rectangle",
                          "path", or any napari shape type)
      model/current.*     the adapted weights (``Engine.save``: .safetensors + .json with metadata)
      model/<hash>.*      weights snapshots a session started from when they were not the base
                          weights (a resumed session, an engine adapted on earlier images): replay
                          restarts from them
      writer.lock         the process writing the folder (pid, host, time; JSON), locked while it
                          writes: another process is refused (see :mod:`napari_oaims.store.folder`)

A folder is opened for writing only if no symbolic link in it leads outside it.

Tables (``objects/``, ``log/``) are groups of 1-D or 2-D arrays sharing their first axis; the group
attr ``length`` is the number of committed rows (arrays may be longer: capacity grows in chunks).
Rows are written first and ``length`` last, and every file write of Zarr's LocalStore is atomic
(temporary file + rename), so a crash leaves the previous committed state readable.

Event log: columns ``time`` f8 (Unix s), ``seq`` i8, ``kind`` u1 (code table in the log group's
attr ``kinds``, see :data:`napari_oaims.core.events.KIND_CODES`), ``object`` i4, ``plane``
(n, P) i4 padded with -1, ``coords`` str (JSON), ``label`` i1 (-1 none), ``latency_ms`` f8 (NaN
none; f8 so that a log reads back exactly as it was recorded), ``weights`` (n, 16) u1 (ASCII of
the weights hash, zero padded), ``extra`` str (JSON). The schema of an event is documented in
:mod:`napari_oaims.core.events`.

Autosave (:meth:`SessionStore.attach`): every event is first appended as one JSON line to
``log/journal.jsonl`` (one unbuffered ``write``: it survives ``kill -9``; ``fsync`` is not called,
so a power cut may lose what the OS had not flushed). An accepted object is painted into the labels
at once (a region write) and its objects-table row is journaled as ``{"object_row": {...}}``
(with the new absolute areas of objects it painted over, so applying a row twice is harmless).
A write the disk takes only in part is taken back (so a later record never continues a torn
one) and retried at the next event; objects accepted meanwhile are painted into the labels then.
Journal records are compacted into the arrays every :data:`COMPACT_EVERY` records and on
:meth:`SessionStore.close`; readers merge arrays and journal, and torn records (the record in
flight at a crash) are dropped with a warning, keeping every whole record. A row written to the
ten log arrays costs milliseconds per array (a Zarr write is a thread hop, an encode and a file
rename); a journal line costs microseconds.
Adapted weights (``model/current.*``) are written when an object is accepted and at most every
few seconds while updates go on (see :mod:`napari_oaims.store.autosave`).

Images larger than ``reference_threshold`` (512 MiB) with a known file are stored as a reference:
path, size, shape, dtype and a digest. Files up to :data:`FULL_HASH_MAX` are hashed whole
(``sha256``); larger files with ``sha256-sampled``: sha256 of the file size (8 bytes, little
endian) followed by :data:`SAMPLE_BLOCKS` blocks of :data:`SAMPLE_BLOCK` bytes at evenly spaced
offsets from the start to the end of the file. Folders (e.g. ``.zarr``) get ``sha256-tree``: the
sorted relative paths and sizes of all files plus the content of their JSON metadata files.

Format versions (attr ``napari_oaims.format_version``; :data:`VERSIONS` says what each changed):

1. Adapted weights were written after every weights update; adapter settings in the log
   (``extra["adapter"]``) name experiment settings that were retired later
   (:data:`napari_oaims.adapt.settings.RETIRED`).
2. Adapted weights are written at accept (and at most every few seconds while updates go on), so
   a crash may lose the updates since the last write (``ResumeState`` says so); adapter settings in
   the log carry no retired settings.
3. The log may hold ``propagate`` events (``extra["call"]`` redoes them) and exact priors
   (``prior`` events with ``extra["exact"]``, from ``Session.set_mask``). Learning follows the
   answer-checking guard: ``update`` events say ``rolled_back`` and why, a preview accepted
   without a correction is not learnt from, and MI skips a pseudo-label that answers a positive
   click as background. A log of an older version replays under these rules, so where it learnt,
   its later objects may differ from what was recorded; the replay report says so.
4. ``accept`` events record ``extra["overwrite"]``: an accepted object keeps the pixels of objects
   accepted before it unless it was accepted with ``overwrite=True`` (older logs, without the
   flag, replay with the new object winning, as they were painted). ``propagate`` calls may carry
   ``barrier`` and the stop settings of this version. A writable store holds ``writer.lock``.
5. A ``propagate`` event whose barrier kept voxels out (accepted objects, the other objects of a
   ``Session.propagate_objects`` call) has them in ``barriers/<seq>``: its replay is kept out of
   the same voxels and makes the same masks (older logs replay without them).
6. The ``session`` event records ``extra["edges"]``, whether answers may follow the image's edges
   (``Engine.edges``: ``"auto"``, ``"always"``, ``"never"``), and ``accept`` events the object's
   ``extra["edge_gain"]`` (:mod:`napari_oaims.core.edges`); a resumed session's start records the
   ``edge_gains`` it starts from; a prompt event after the mode changed records the new one
   (``extra["edges"]``), and a predict event whose answer followed edges ``extra["followed_edges"]``.
   The session event also records ``extra["correct_near"]``: a correction click changes the mask
   near itself only (``Session.correct_near``). Older logs replay with ``"never"`` and without
   that rule, as they were answered.
7. The session event records ``extra["edge_candidates"]``, the candidate answers the evidence
   judges (``"edges"``, ``"snap"``), accept events the snap's gain ``extra["snap_gain"]``, a
   resumed start the ``snap_gains``, and a predict event that snapped
   ``extra["followed_edges"] == "snap"``; a log that names no candidates replays with ``"edges"``
   alone, as it was answered. The mode may be ``"snap"`` (first answers always snap). A
   ``propagate`` call's settings name ``cross_from_larger`` (between two anchors the model's
   methods carry the slices from the anchor with the larger mask; calls that do not name it
   replay with both chains). The adapter settings in the log (``extra["adapter"]``) name
   ``mi_check``: at accept, an object's Mid-Interaction steps are kept only if the recently
   accepted objects are answered at least as well with them, else undone (an ``mi_rewind``
   update); logs without it replay without it.
8. The ``session`` event names every answer rule of ``napari_oaims.answer.RULES`` with its value:
   besides ``correct_near``, ``larger_windows`` (a first answer whose outline follows no edge of
   the image is looked for on a larger window), ``remove_again`` (on a plane the model's
   propagation carried, a second negative click in a component takes it all) and ``first_peak``
   (a session's first window is sized from the smallest strong blob under the click). A log that
   does not name a rule replays without it, as it was answered. A ``propagate`` call's settings
   name ``barrier_steers`` (whether the barrier also cuts the mask a chain carries; calls that do
   not name it replay with the chain cut).
9. The adapter settings in the log name ``mi_check_first`` (the session's first object, which no
   accepted object can check, does not keep its Mid-Interaction steps: an ``mi_rewind`` update at
   its accept) and ``mi_check_se`` (an object's MI steps are kept only when the recently accepted
   objects' mean Dice gain is that many standard errors above zero); None, their default, means
   on and 2 for MI alone, off and 0 with PI. Logs without them replay with the first object's
   steps kept and the check of format 7 (a mean gain of at least zero).
10. A ``propagate`` call's settings name ``through``: the model's slices leave out a structure
    beside the object that runs through the whole extent within the anchor's intensity band where
    the chain's anchor left it out, and an outward chain left with nothing else stops
    (``"through"``); calls that do not name it replay without the rule.

An older folder opens and resumes: it is migrated on read, in memory (retired settings at the value
the shipped behaviour used are dropped from the log's adapter settings; other values are kept, and
replaying them is refused with a message). Nothing on disk changes on a read-only open; once a
writable store autosaves into it, the folder is marked with the current version and ``upgraded_from`` records the
version it was written with. A folder of a newer version is refused with a message.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from napari_oaims.core.files import open_image

SUFFIX = ".oaims.zarr"
FORMAT = "napari-oaims-session"
FORMAT_VERSION = 10
#: What each format version changed (details in the module docstring).
VERSIONS = {
    1: "adapted weights written after every update; adapter settings may name retired settings",
    2: "adapted weights written at accept; adapter settings without retired settings",
    3: "propagate events and exact priors in the log; guarded learning (update events say rolled_back and why)",
    4: "accept events record overwrite (accepted objects keep other objects' pixels by default); writer lock",
    5: "the voxels a propagate event's barrier kept out, beside the log (barriers/<seq>): exact replay",
    6: "answers that follow image edges: the session event records edges, accept events edge_gain",
    7: "edge candidates (snap), propagation's cross_from_larger, adapter's mi_check: all named in the log",
    8: "the session event names every answer rule (correct_near, larger_windows, remove_again, first_peak)",
    9: "adapter's mi_check_first and mi_check_se named in the log: MI steps kept only when surely better",
    10: "propagation's through named in the log: a structure that runs through the stack is kept out",
}
#: The first format version whose logs were recorded under today's learning rules (the answer-
#: checking guard, no PI from uncorrected accepts, MI skipping pseudo-labels that contradict a click).
LEARNING_RULES_SINCE = 3
#: Format versions this package reads (older ones are migrated on read; nothing on disk changes).
READABLE_VERSIONS = tuple(VERSIONS)
ATTRS_KEY = "napari_oaims"
LABELS_NAME = "objects"
REFERENCE_THRESHOLD = 512 * 2**20
FULL_HASH_MAX = 256 * 2**20
SAMPLE_BLOCKS = 64
SAMPLE_BLOCK = 2**20
COMPACT_EVERY = 64
HASH_WIDTH = 16
ROWS_PER_CHUNK = 256
_NGFF_AXES = {2: "yx", 3: "zyx", 4: "tzyx"}
_TMP_PREFIX = "tmp-"


def file_digest(path: str | Path) -> tuple[str, str]:
    """``(method, hexdigest)`` of an image file or folder (methods in the module docstring)."""
    path = Path(path)
    h = hashlib.sha256()
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = f.relative_to(path).as_posix()
            h.update(f"{rel}\0{f.stat().st_size}\0".encode())
            if f.name in ("zarr.json", ".zarray", ".zattrs", ".zgroup"):
                h.update(f.read_bytes())
        return "sha256-tree", h.hexdigest()
    size = path.stat().st_size
    with path.open("rb") as fh:
        if size <= FULL_HASH_MAX:
            for block in iter(lambda: fh.read(2**22), b""):
                h.update(block)
            return "sha256", h.hexdigest()
        h.update(size.to_bytes(8, "little"))
        for i in range(SAMPLE_BLOCKS):
            fh.seek(i * (size - SAMPLE_BLOCK) // (SAMPLE_BLOCKS - 1))
            h.update(fh.read(SAMPLE_BLOCK))
    return "sha256-sampled", h.hexdigest()


def _can_write(path: Path) -> bool:
    """Whether this process (its effective user) may write into folder ``path``."""
    if os.access in os.supports_effective_ids:
        return os.access(path, os.W_OK | os.X_OK, effective_ids=True)
    return os.access(path, os.W_OK | os.X_OK)


def _check_writable_target(path: Path) -> None:
    """Raise a clear error if ``path`` cannot be created (a file in the way, or no write access)."""
    anc = path.parent
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise ValueError(f"cannot save the session to {path}: {anc} is a file, not a folder")
    if not _can_write(anc):
        raise PermissionError(f"cannot save the session to {path}: the folder {anc} is not writable")


def _ngff_layout(shape: tuple[int, ...], channel_axis: int | None) -> tuple[list[int], str, tuple[int, ...]]:
    """Stored axis order (permutation of the image axes), NGFF axis names and chunks."""
    spatial = [a for a in range(len(shape)) if a != channel_axis]
    names = _NGFF_AXES.get(len(spatial))
    if names is None:
        raise ValueError(f"OME-Zarr stores 2 to 4 spatial axes; this image has {len(spatial)} (shape {shape})")
    order, axes = list(spatial), list(names)
    if channel_axis is not None:
        pos = 1 if len(spatial) == 4 else 0
        order.insert(pos, channel_axis)
        axes.insert(pos, "c")
    chunk = {"t": 1, "c": 1, "z": 16, "y": 256, "x": 256}
    chunks = tuple(min(shape[a], chunk[n]) for a, n in zip(order, axes))
    return order, "".join(axes), chunks


def _replace_dir(tmp: Path, target: Path) -> None:
    """Move folder ``tmp`` to ``target``, replacing it; the old folder is removed only afterwards."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        target.rename(old)
    tmp.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def rebuild_group(root, folder: Path, name: str, build: Callable[[Any], Any]):
    """Build group ``name`` of the session folder afresh beside the old one (``build`` fills the
    new, empty Zarr group), then swap the folders; returns the new group."""
    tmp_name = f"{_TMP_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
    build(root.create_group(tmp_name))
    _replace_dir(folder / tmp_name, folder / name)
    return root[name]


class FolderAttrs:
    """The session's attributes (root group attr ``napari_oaims``): :attr:`meta` to read them,
    :meth:`update` to change them on disk.

    Parameters
    ----------
    root : zarr.Group
        The session folder's root group; only its ``napari_oaims`` attribute is read or written.
    """

    def __init__(self, root):
        self._root = root
        self.meta: dict[str, Any] = dict(root.attrs[ATTRS_KEY])

    def update(self, **changes: Any) -> None:
        """Set ``changes`` in :attr:`meta` and write all the attributes."""
        self.meta.update(changes)
        self._root.attrs[ATTRS_KEY] = self.meta


def _recover_swaps(folder: Path) -> None:
    """Finish folder swaps (:func:`_replace_dir`) interrupted by a crash inside ``folder``: an old
    copy whose replacement never arrived is put back, other leftovers are removed."""
    for p in folder.iterdir():
        if p.is_dir() and p.name.startswith(".") and ".old-" in p.name:
            target = folder / p.name[1:].rsplit(".old-", 1)[0]
            if target.exists():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.rename(target)
        elif p.is_dir() and p.name.startswith(_TMP_PREFIX):
            shutil.rmtree(p, ignore_errors=True)


def is_session(path: Path) -> bool:
    """Whether folder ``path`` is a napari-oaims session (any format version)."""
    try:
        meta = json.loads((Path(path) / "zarr.json").read_text())
        return meta.get("attributes", {}).get(ATTRS_KEY, {}).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


_is_session = is_session


def read_format(path: Path) -> dict[str, Any]:
    """The ``napari_oaims`` attrs of the session folder ``path``, after checking that it is one
    and that this package reads its format version (a clear ``ValueError`` otherwise)."""
    meta_file = path / "zarr.json"
    if not meta_file.is_file():
        v2 = any((path / n).exists() for n in (".zgroup", ".zarray"))
        kind = "a Zarr v2 folder" if v2 else "not a Zarr folder (no zarr.json)"
        raise ValueError(f"{path} is {kind}, not a napari-oaims session")
    try:
        meta = json.loads(meta_file.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"session {path} is damaged: {meta_file} is not valid JSON ({err})") from err
    attrs = meta.get("attributes", {}) if isinstance(meta, dict) else {}
    ours = attrs.get(ATTRS_KEY) if isinstance(attrs, dict) else None
    if not isinstance(ours, dict) or ours.get("format") != FORMAT:
        raise ValueError(f"{path} is a Zarr folder but not a napari-oaims session (no '{ATTRS_KEY}' metadata)")
    version = ours.get("format_version")
    readable = ", ".join(map(str, READABLE_VERSIONS))
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise ValueError(
            f"session {path} has format version {version}, newer than this napari-oaims reads "
            f"(versions {readable}): update napari-oaims"
        )
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise ValueError(
            f"session {path} is damaged: unknown format version {version!r} (this napari-oaims reads "
            f"versions {readable})"
        )
    return ours


def written_with(meta: dict[str, Any]) -> int:
    """The oldest format version whose rules wrote part of this folder."""
    return int(meta.get("upgraded_from", meta["format_version"]))


def migrate_events(events: list[dict[str, Any]], version: int) -> list[dict[str, Any]]:
    """Events of a folder written with format ``version``, as version :data:`FORMAT_VERSION`
    writes them (in place, in memory): retired adapter settings at their shipped value are dropped;
    other values of them are kept, so that using them is refused with a message."""
    if version >= 2:
        return events
    logged = [
        e["extra"]["adapter"]
        for e in events
        if isinstance(e.get("extra"), dict) and isinstance(e["extra"].get("adapter"), dict)
    ]
    if logged:
        from napari_oaims.adapt.settings import RETIRED

        for settings in logged:
            for key in [k for k in settings if k in RETIRED and settings[k] == RETIRED[k]]:
                del settings[key]
    return events


def reference_info(image_path: Path, shape, dtype) -> dict[str, Any]:
    """The image record of a referenced image: path, digest, size, shape, dtype (checked against
    the file)."""
    image_path = Path(image_path).absolute()
    on_disk = open_image(image_path)
    if tuple(on_disk.shape) != tuple(shape) or np.dtype(on_disk.dtype) != dtype:
        raise ValueError(
            f"image_path {image_path} holds a {on_disk.dtype} image of shape {tuple(on_disk.shape)}, "
            f"not the {dtype} image of shape {tuple(shape)} being saved"
        )
    method, digest = file_digest(image_path)
    size = (
        sum(f.stat().st_size for f in image_path.rglob("*") if f.is_file())
        if image_path.is_dir()
        else image_path.stat().st_size
    )
    return {
        "mode": "reference",
        "path": str(image_path),
        "hash_method": method,
        "hash": digest,
        "size_bytes": size,
        "shape": list(shape),
        "dtype": str(dtype),
    }


def check_reference(info: dict[str, Any], candidate: Path, session: Path) -> None:
    """Raise a clear error unless ``candidate`` is the referenced image ``info`` of ``session``."""
    method, digest = file_digest(candidate)
    if method != info["hash_method"] or digest != info["hash"]:
        raise ValueError(
            f"image file {candidate} is not the image of session {session}: its {method} digest "
            f"differs from the recorded one ({info['hash'][:12]}...)"
        )


def write_image(root, image, channel_axis: int | None) -> dict[str, Any]:
    """Embed ``image`` in group ``root`` as single-scale OME-Zarr; returns its image record."""
    import dask.array as da
    from ome_zarr.writer import write_image as ngff_write

    shape = tuple(int(s) for s in image.shape)
    order, axes, chunks = _ngff_layout(shape, channel_axis)
    data = (
        image
        if isinstance(image, da.Array)
        else da.from_array(image, chunks=tuple(chunks[order.index(a)] for a in range(len(shape))))
    )
    data = data.transpose(order).rechunk(chunks)
    ngff_write(data, root, scale_factors=[], axes=axes, storage_options={"chunks": chunks}, name="image")
    return {"mode": "embedded", "shape": list(shape), "dtype": str(np.dtype(image.dtype)), "axes": axes, "order": order}


def write_labels_image(root, spatial: tuple[int, ...]) -> None:
    """An empty NGFF label image :data:`LABELS_NAME` (uint32) of the spatial shape."""
    import dask.array as da
    from ome_zarr.writer import write_labels

    _, axes, chunks = _ngff_layout(spatial, None)
    write_labels(
        da.zeros(spatial, dtype=np.uint32, chunks=chunks),
        root,
        name=LABELS_NAME,
        scaler=None,
        scale_factors=[],
        axes=axes,
        storage_options={"chunks": chunks},
    )
