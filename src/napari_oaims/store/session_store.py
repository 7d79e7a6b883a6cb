"""Annotation sessions on disk: one ``*.oaims.zarr`` folder (Zarr v3) per annotated image.

A session folder holds everything needed to reopen, resume or replay the work::

    NAME.oaims.zarr/
      zarr.json           root group. attrs "ome": the NGFF multiscales of the image (embedded mode);
                          attrs "napari_oaims": format, version, image info, session parameters,
                          base weights hash
      s0/                 the image (embedded mode): single-scale OME-Zarr, axes in NGFF order
                          (t, c, z, y, x); ``image_info["order"]`` maps them back to the caller's order
      labels/objects/     the accepted objects: NGFF labels "objects" (uint32, spatial axes only),
                          updated in place (region writes) as objects are accepted
      objects/            table of objects, one row each: id, class_id, class_name, area, planes (JSON)
      log/                the interaction log, one row per event (see "Event log" below)
      log/journal.jsonl   write-ahead journal: events not yet compacted into the log arrays
      priors/<seq>        prior masks given with ``Session.prior`` (bool plane arrays), by event seq
      prompts/            prompt layers written with :meth:`SessionStore.write_prompts`:
                          points/coords (N, ndim) f8, points/positive (N,) bool,
                          shapes/vertices (M, ndim) f8, shapes/offsets (S+1,) i8 (shape i is
                          vertices[offsets[i]:offsets[i+1]]), shapes/type (S,) str ("rectangle",
                          "path", or any napari shape type)
      model/current.*     the adapted weights (``Engine.save``: .safetensors + .json with metadata)
      model/<hash>.*      weights snapshots a session started from when they were not the base
                          weights (a resumed session, an engine adapted on earlier images): replay
                          restarts from them

Tables (``objects/``, ``log/``) are groups of 1-D or 2-D arrays sharing their first axis; the group
attr ``length`` is the number of committed rows (arrays may be longer: capacity grows in chunks).
Rows are written first and ``length`` last, and every file write of Zarr's LocalStore is atomic
(temporary file + rename), so a crash leaves the previous committed state readable.

Event log: columns ``time`` f8 (Unix s), ``seq`` i8, ``kind`` u1 (code table in the log group's
attr ``kinds``, see :data:`KIND_CODES`), ``object`` i4, ``plane`` (n, P) i4 padded with -1,
``coords`` str (JSON), ``label`` i1 (-1 none), ``latency_ms`` f8 (NaN none; f8 so that a log reads
back exactly as it was recorded), ``weights`` (n, 16) u1 (ASCII of the weights hash, zero padded),
``extra`` str (JSON). The schema of an event is documented in :mod:`napari_oaims.session`.

Autosave (:meth:`SessionStore.attach`): every event is first appended as one JSON line to
``log/journal.jsonl`` (one unbuffered ``write``: it survives ``kill -9``; ``fsync`` is not called,
so a power cut may lose what the OS had not flushed). An accepted object is painted into the labels
at once (a region write) and its objects-table row is journaled as ``{"object_row": {...}}``
(with the new absolute areas of objects it painted over, so applying a row twice is harmless).
Journal records are compacted into the arrays every :data:`COMPACT_EVERY` records and on
:meth:`SessionStore.close`; readers merge arrays and journal, and a torn last journal line (the
record in flight) is ignored. Writing one row to the ten log arrays costs 3 ms per array on the
development VM (a Zarr write is a thread hop, an encode and a file rename); a journal line costs
microseconds.

Images larger than ``reference_threshold`` (512 MiB) with a known file are stored as a reference:
path, size, shape, dtype and a digest. Files up to :data:`FULL_HASH_MAX` are hashed whole
(``sha256``); larger files with ``sha256-sampled``: sha256 of the file size (8 bytes, little
endian) followed by :data:`SAMPLE_BLOCKS` blocks of :data:`SAMPLE_BLOCK` bytes at evenly spaced
offsets from the start to the end of the file. Folders (e.g. ``.zarr``) get ``sha256-tree``: the
sorted relative paths and sizes of all files plus the content of their JSON metadata files.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import zarr
from zarr.storage import LocalStore

from napari_oaims.core.events import KIND_CODES, PROMPT_KINDS, dumps, normalise_event
from napari_oaims.core.labels import paint, paint_planes
from napari_oaims.core.results import Accepted

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.engine import Engine
    from napari_oaims.session import Session

SUFFIX = ".oaims.zarr"
FORMAT = "napari-oaims-session"
FORMAT_VERSION = 1
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


# -- small helpers ---------------------------------------------------------------------------------
_dumps = dumps


def full_coords(plane_axes, ndim: int, plane, yx) -> list[float]:
    """Full spatial coordinates of plane point ``yx`` on plane ``plane`` (see ``Session.full_coords``)."""
    pa = [a % ndim for a in plane_axes]
    it = iter(plane)
    return [float(yx[0]) if a == pa[0] else float(yx[1]) if a == pa[1] else float(next(it)) for a in range(ndim)]


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


def load_image_file(path: str | Path):
    """A lazily read image from a ``.tif``/``.tiff``, ``.npy`` or ``.zarr`` (array or OME-Zarr) path."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image file not found: {path}")
    name = path.name.lower()
    if name.endswith((".tif", ".tiff")):
        import tifffile

        try:
            return tifffile.memmap(path, mode="r")
        except ValueError:  # compressed or tiled: read it
            return tifffile.imread(path)
    if name.endswith(".npy"):
        return np.load(path, mmap_mode="r")
    if path.is_dir():
        try:
            node = zarr.open(LocalStore(path, read_only=True), mode="r")
        except Exception as err:  # noqa: BLE001 - any reading problem is a bad input
            raise ValueError(f"cannot read {path} as a Zarr array: {err}") from err
        if isinstance(node, zarr.Group):
            ms = (node.attrs.get("ome", node.attrs).get("multiscales") or [{}])[0]
            datasets = ms.get("datasets") or []
            if not datasets:
                raise ValueError(f"{path} is a Zarr group without an OME-Zarr multiscale image")
            node = node[datasets[0]["path"]]
        return node
    raise ValueError(f"unsupported image file {path}: use .tif/.tiff, .npy or a .zarr folder")


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


def _is_session(path: Path) -> bool:
    try:
        meta = json.loads((path / "zarr.json").read_text())
        return meta.get("attributes", {}).get(ATTRS_KEY, {}).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


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


# -- tables ----------------------------------------------------------------------------------------
class _Table:
    """Arrays in one group sharing their first axis; the group attr ``length`` counts committed rows."""

    def __init__(self, group: zarr.Group, columns: dict[str, tuple[str, int]]):
        self.group = group
        self.columns = columns
        self.arrays = {}
        for name in columns:
            try:
                self.arrays[name] = group[name]
            except KeyError:
                raise KeyError(f"{group.path}/{name}") from None
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
            arr[n:n + k] = rows[name]
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


_LOG_COLUMNS = {"time": ("f8", 0), "seq": ("i8", 0), "kind": ("u1", 0), "object": ("i4", 0), "plane": ("i4", -1),
                "coords": ("str", 0), "label": ("i1", 0), "latency_ms": ("f8", 0), "weights": ("u1", HASH_WIDTH),
                "extra": ("str", 0)}
_OBJECT_COLUMNS = {"id": ("i4", 0), "class_id": ("i4", 0), "class_name": ("str", 0), "area": ("i8", 0),
                   "planes": ("str", 0)}


def _log_columns(plane_width: int) -> dict[str, tuple[str, int]]:
    return {k: (d, plane_width if w == -1 else w) for k, (d, w) in _LOG_COLUMNS.items()}


# -- results ---------------------------------------------------------------------------------------
@dataclass
class Prompts:
    """Prompt layers: points (N, ndim) with a positive flag each, shapes (vertices per shape) with types."""

    points: np.ndarray
    positive: np.ndarray
    shapes: list[np.ndarray]
    shape_types: list[str]


@dataclass
class ResumeState:
    """What :meth:`SessionStore.resume` restores."""

    store: "SessionStore"
    engine: "Engine"
    session: "Session"
    image: Any
    labels: Any
    prompts: Prompts
    objects: list[dict[str, Any]]
    events: list[dict[str, Any]] = field(repr=False)


# -- the store -------------------------------------------------------------------------------------
class SessionStore:
    """One ``*.oaims.zarr`` session folder (layout in the module docstring).

    Make one with :meth:`create`, reopen one with :meth:`open`. :meth:`attach` autosaves a live
    :class:`~napari_oaims.session.Session`; :meth:`resume` continues a saved one.
    """

    def __init__(self, path: Path, root: zarr.Group, read_only: bool):
        self.path = path
        self.root = root
        self.read_only = read_only
        self.error: BaseException | None = None  #: the last autosave failure (None when all is saved)
        #: called with the error when autosave starts failing, and with None when it works again
        self.on_error: Callable[[BaseException | None], None] | None = None
        self._lock = threading.RLock()
        self._session: "Session | None" = None
        self._pending_events: list[dict] = []  # journal records not yet in the arrays (they are on disk)
        self._pending_objects: list[dict] = []
        self._areas: dict[int, int] = {}  # current area of every object (as on disk)
        self._next_seq = 0
        self._saved_priors: set[int] = set()
        self._model_hash: str | None = None
        try:
            meta = root.attrs[ATTRS_KEY]
            self.meta: dict[str, Any] = dict(meta)
            self.plane_width = int(meta["plane_width"])
            self._labels = root[f"labels/{LABELS_NAME}/{self._dataset_path(f'labels/{LABELS_NAME}')}"]
            self._log = _Table(root["log"], _log_columns(self.plane_width))
            self._objects = _Table(root["objects"], _OBJECT_COLUMNS)
            self._kinds: dict[str, int] = dict(self._log.group.attrs["kinds"])
            if self.meta["image"]["mode"] == "embedded":
                self._image_array = root[self._dataset_path("")]
            self._journal = path / "log" / "journal.jsonl"
            self._rows = self._read_rows()
            self._pending_events, self._pending_objects = self._read_journal(repair=not read_only)
            self._areas = self._current_areas()
        except Exception as err:  # noqa: BLE001 - whatever Zarr raises for a broken node: a damaged session
            if isinstance(err, ValueError) and str(path) in str(err):
                raise
            raise ValueError(f"session {path} is damaged: {type(err).__name__}: {err}") from err
        seqs = [e["seq"] for e in self._rows + self._pending_events]
        self._next_seq = max(seqs) + 1 if seqs else 0
        self._saved_priors = {int(k) for k in root["priors"].array_keys()} if "priors" in root else set()
        model_json = path / "model" / "current.json"
        if model_json.is_file():
            try:
                self._model_hash = json.loads(model_json.read_text()).get("weights_hash")
            except ValueError as err:
                raise ValueError(f"session {path} is damaged: {model_json} is not valid JSON") from err

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, image: Any = None, *, engine: "Engine | None" = None,
               session: "Session | None" = None, image_path: str | Path | None = None,
               reference: bool | None = None, overwrite: bool = False, plane_axes=(-2, -1),
               channel_axis: int | None = None, rgb: bool | None = None, channel: int | None = None,
               reference_threshold: int = REFERENCE_THRESHOLD) -> "SessionStore":
        """Write a new session folder at ``path`` and return it open for writing.

        ``image`` is an array (NumPy, Zarr, Dask) or an image file path; with ``session`` it
        defaults to the session's image and the session is attached (autosaved) at once. The image
        is embedded as OME-Zarr unless ``reference=True`` or (``reference=None``) it is larger than
        ``reference_threshold`` bytes and ``image_path`` names its file. ``engine`` (default: the
        session's) records the base weights and the current weights. An existing session is
        replaced only with ``overwrite=True``; other folders are never replaced. Objects the session
        accepted before it was attached are not in the labels (add them with :meth:`commit_object`).
        """
        from napari_oaims.core.source import ImageSource

        path = Path(path).absolute()
        if path.exists():
            if not path.is_dir():
                raise ValueError(f"cannot save the session to {path}: a file with that name exists")
            if not overwrite:
                raise FileExistsError(f"{path} already exists; pass overwrite=True to replace that session")
            if not _is_session(path):
                raise ValueError(f"refusing to overwrite {path}: it is not a napari-oaims session")
        _check_writable_target(path)
        if isinstance(image, (str, Path)):
            image_path = image if image_path is None else image_path
            image = load_image_file(image)
        if session is not None:
            image = session.source.array if image is None else image
            engine = session.engine if engine is None else engine
            src = session.source
        else:
            if image is None:
                raise ValueError("SessionStore.create needs an image (or a session)")
            src = ImageSource(image, plane_axes=plane_axes, channel_axis=channel_axis, rgb=rgb, channel=channel)
        shape = tuple(int(s) for s in image.shape)
        dtype = np.dtype(image.dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if reference is None:
            reference = image_path is not None and nbytes > reference_threshold
        if reference and image_path is None:
            raise ValueError("a referenced image needs image_path (the file the image was read from)")
        if not reference and nbytes > reference_threshold:
            warnings.warn(f"embedding a {nbytes / 2**30:.1f} GiB image in {path}; pass image_path to store a "
                          "reference to its file instead", stacklevel=2)
        params = {"plane_axes": list(src.plane_axes), "channel_axis": src.channel_axis, "rgb": src.rgb,
                  "channel": src.channel}
        tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            root = zarr.open_group(LocalStore(tmp), mode="w-", zarr_format=3)
            if reference:
                info = cls._reference_info(Path(image_path), shape, dtype)
            else:
                info = cls._write_image(root, image, src.channel_axis)
            cls._write_skeleton(root, src, info, params, engine)
            _replace_dir(tmp, path)
        except PermissionError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise PermissionError(f"cannot save the session to {path}: {err}") from err
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        store = cls.open(path)
        if engine is not None:
            store.save_model(engine)
        if session is not None:
            store.attach(session)
        return store

    @staticmethod
    def _reference_info(image_path: Path, shape, dtype) -> dict[str, Any]:
        image_path = image_path.absolute()
        on_disk = load_image_file(image_path)
        if tuple(on_disk.shape) != tuple(shape) or np.dtype(on_disk.dtype) != dtype:
            raise ValueError(f"image_path {image_path} holds a {on_disk.dtype} image of shape {tuple(on_disk.shape)}, "
                             f"not the {dtype} image of shape {tuple(shape)} being saved")
        method, digest = file_digest(image_path)
        size = sum(f.stat().st_size for f in image_path.rglob("*") if f.is_file()) if image_path.is_dir() \
            else image_path.stat().st_size
        return {"mode": "reference", "path": str(image_path), "hash_method": method, "hash": digest,
                "size_bytes": size, "shape": list(shape), "dtype": str(dtype)}

    @staticmethod
    def _write_image(root: zarr.Group, image, channel_axis: int | None) -> dict[str, Any]:
        import dask.array as da
        from ome_zarr.writer import write_image

        shape = tuple(int(s) for s in image.shape)
        order, axes, chunks = _ngff_layout(shape, channel_axis)
        data = image if isinstance(image, da.Array) else da.from_array(image, chunks=tuple(
            chunks[order.index(a)] for a in range(len(shape))))
        data = data.transpose(order).rechunk(chunks)
        write_image(data, root, scale_factors=[], axes=axes, storage_options={"chunks": chunks}, name="image")
        return {"mode": "embedded", "shape": list(shape), "dtype": str(np.dtype(image.dtype)), "axes": axes,
                "order": order}

    @staticmethod
    def _write_skeleton(root: zarr.Group, src, info, params, engine) -> None:
        import dask.array as da
        from ome_zarr.writer import write_labels

        spatial = src.spatial_shape
        _, axes, chunks = _ngff_layout(spatial, None)
        write_labels(da.zeros(spatial, dtype=np.uint32, chunks=chunks), root, name=LABELS_NAME, scaler=None,
                     scale_factors=[], axes=axes, storage_options={"chunks": chunks})
        plane_width = max(1, len(spatial) - 2)
        _Table.create(root.create_group("log"), _log_columns(plane_width), kinds=KIND_CODES)
        _Table.create(root.create_group("objects"), _OBJECT_COLUMNS)
        root.create_group("priors")
        root.attrs[ATTRS_KEY] = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "session_id": uuid.uuid4().hex,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "image": info, "session": params,
            "spatial_shape": list(spatial), "plane_width": plane_width,
            "base_hash": engine.base_hash if engine is not None else None,
        }

    @classmethod
    def open(cls, path: str | Path, image_path: str | Path | None = None, read_only: bool = False) -> "SessionStore":
        """Open a session folder. A referenced image is checked (existence and digest); when it moved,
        pass its new location as ``image_path`` (the digest must match; the new path is recorded
        unless ``read_only``)."""
        path = Path(path).absolute()
        if not path.exists():
            raise FileNotFoundError(f"no session at {path}")
        if not path.is_dir():
            raise ValueError(f"{path} is a file, not a napari-oaims session folder")
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
        if int(ours.get("format_version", 0)) > FORMAT_VERSION:
            raise ValueError(f"session {path} has format version {ours.get('format_version')}; this napari-oaims "
                             f"reads up to {FORMAT_VERSION}: update napari-oaims")
        if not read_only and not _can_write(path):
            raise PermissionError(f"session folder {path} is read-only; open it with read_only=True or copy it")
        try:
            root = zarr.open_group(LocalStore(path, read_only=read_only), mode="r" if read_only else "r+")
        except Exception as err:  # noqa: BLE001 - any Zarr error here means a damaged folder
            raise ValueError(f"session {path} is damaged: {err}") from err
        if not read_only:
            _recover_swaps(path)
        store = cls(path, root, read_only)
        store._check_reference(image_path)
        return store

    # -- image -----------------------------------------------------------------------------------
    def _dataset_path(self, group: str) -> str:
        node = self.root[group] if group else self.root
        return node.attrs["ome"]["multiscales"][0]["datasets"][0]["path"]

    def _check_reference(self, image_path: str | Path | None) -> None:
        info = self.meta["image"]
        if info["mode"] != "reference":
            if image_path is not None:
                raise ValueError(f"session {self.path} embeds its image; image_path is only for referenced images")
            return
        recorded = Path(info["path"])
        candidate = Path(image_path).absolute() if image_path is not None else recorded
        if not candidate.exists():
            if image_path is None:
                raise FileNotFoundError(
                    f"session {self.path} references the image file {recorded}, which is missing (moved or "
                    f"deleted); open it with SessionStore.open({str(self.path)!r}, image_path=NEW_LOCATION)")
            raise FileNotFoundError(f"image file not found: {candidate}")
        method, digest = file_digest(candidate)
        if method != info["hash_method"] or digest != info["hash"]:
            raise ValueError(f"image file {candidate} is not the image of session {self.path}: its {method} digest "
                             f"differs from the recorded one ({info['hash'][:12]}...)")
        if candidate != recorded and not self.read_only:
            info = {**info, "path": str(candidate)}
            self.meta["image"] = info
            self.root.attrs[ATTRS_KEY] = self.meta
        self._image_array = load_image_file(candidate)

    def image(self):
        """The image, lazily read, in the axis order it was given to :meth:`create`."""
        info = self.meta["image"]
        if info["mode"] == "reference":
            return self._image_array
        order = info["order"]
        if order == sorted(order):
            return self._image_array
        import dask.array as da

        return da.from_array(self._image_array, chunks=self._image_array.chunks).transpose(np.argsort(order).tolist())

    def session_params(self) -> dict[str, Any]:
        """Keyword arguments of ``Engine.session`` that reproduce the saved session's image handling."""
        p = dict(self.meta["session"])
        p["plane_axes"] = tuple(p["plane_axes"])
        return p

    # -- labels and objects ----------------------------------------------------------------------
    def labels(self):
        """The accepted-objects label image (a Zarr array; spatial axes of the image)."""
        return self._labels

    def objects(self) -> list[dict[str, Any]]:
        """One dict per object: id, class_id, class_name, area, planes."""
        rows = self._committed_objects() + [{k: r[k] for k in _OBJECT_COLUMNS} for r in self._pending_objects]
        for r in rows:
            r["area"] = self._areas.get(r["id"], r["area"])
        return rows

    def _committed_objects(self) -> list[dict[str, Any]]:
        cols = self._objects.read()
        return [{"id": int(i), "class_id": int(c), "class_name": str(n), "area": int(a), "planes": json.loads(p)}
                for i, c, n, a, p in zip(cols["id"], cols["class_id"], cols["class_name"], cols["area"],
                                         cols["planes"])]

    def _current_areas(self) -> dict[int, int]:
        areas = {o["id"]: o["area"] for o in self._committed_objects()}
        for r in self._pending_objects:
            areas.update({int(i): int(a) for i, a in r["areas"]})
            areas[r["id"]] = r["area"]
        return areas

    def _record_object(self, object_id: int, area: int, planes, overwritten: dict, class_id: int,
                       class_name: str) -> None:
        """Journal a new objects-table row; ``areas`` holds the new (absolute, so replaying the journal
        twice is harmless) areas of the objects it painted over."""
        updates = [[int(i), self._areas[i] - int(n)] for i, n in sorted(overwritten.items()) if i in self._areas]
        row = {"id": int(object_id), "class_id": int(class_id), "class_name": str(class_name), "area": int(area),
               "planes": planes, "areas": updates}
        self._journal_write({"object_row": row})
        self._pending_objects.append(row)
        self._areas.update(dict(updates))
        self._areas[row["id"]] = row["area"]
        self._compact_if_due()

    def commit_object(self, object_id: int, mask: np.ndarray, class_id: int = 1, class_name: str = "object") -> None:
        """Write an accepted object's mask (image spatial shape) into the labels (its region only;
        it wins over earlier objects there) and add it to the objects table."""
        self._writable()
        mask = np.asarray(mask, bool)
        if mask.shape != self._labels.shape:
            raise ValueError(f"object mask has shape {mask.shape}; the labels have shape {self._labels.shape}")
        nz = [np.flatnonzero(mask.any(axis=tuple(b for b in range(mask.ndim) if b != a))) for a in range(mask.ndim)]
        if any(len(v) == 0 for v in nz):
            raise ValueError(f"object {object_id} has an empty mask")
        index = tuple(slice(int(v[0]), int(v[-1]) + 1) for v in nz)
        pa = [a % mask.ndim for a in self.meta["session"]["plane_axes"]]
        other = [a for a in range(mask.ndim) if a not in pa]
        sub = mask[index]
        planes = sorted({tuple(int(index[a].start + c) for a, c in zip(other, coords))
                         for coords in zip(*np.nonzero(sub.any(axis=tuple(pa))))}) if other else [()]
        with self._lock:
            area, overwritten, _ = paint(self._labels, index, sub, object_id)
            self._record_object(object_id, area, [list(p) for p in planes], overwritten, class_id, class_name)

    def write_labels(self, labels: np.ndarray, class_name: str = "object") -> None:
        """Replace the whole label image (e.g. edited in napari) and rebuild the objects table
        (class ids and names of ids already in the table are kept)."""
        self._writable()
        labels = np.asarray(labels)
        if labels.shape != self._labels.shape:
            raise ValueError(f"labels of shape {labels.shape} do not fit the session image (labels shape "
                             f"{self._labels.shape})")
        if labels.dtype.kind not in "biu" or (labels.size and labels.min() < 0):
            raise ValueError(f"labels must hold non-negative integers, got dtype {labels.dtype}")
        known = {o["id"]: o for o in self.objects()}
        ids, areas = np.unique(labels, return_counts=True)
        keep = ids != 0
        ids, areas = ids[keep], areas[keep]
        pa = [a % labels.ndim for a in self.meta["session"]["plane_axes"]]
        planes: dict[int, list] = {int(i): [] for i in ids}
        if labels.ndim > 2:
            moved = np.moveaxis(labels, pa, [-2, -1])
            for key in np.ndindex(moved.shape[:-2]):
                for i in np.unique(moved[key]):
                    if i:
                        planes[int(i)].append(list(key))
        else:
            planes = {i: [[]] for i in planes}
        rows = {"id": ids.astype(np.int32), "class_id": np.array([known.get(int(i), {}).get("class_id", 1) for i in ids],
                                                                 np.int32),
                "class_name": np.array([known.get(int(i), {}).get("class_name", class_name) for i in ids], dtype=object),
                "area": areas.astype(np.int64), "planes": np.array([_dumps(planes[int(i)]) for i in ids], dtype=object)}
        with self._lock:
            self.compact()
            self._labels[...] = labels.astype(np.uint32)
            group = self._rebuild_group("objects", lambda g: _Table.create(g, _OBJECT_COLUMNS).append(rows))
            self._objects = _Table(group, _OBJECT_COLUMNS)
            self._areas = self._current_areas()

    def _rebuild_group(self, name: str, build) -> zarr.Group:
        """Build group ``name`` afresh beside the old one, then swap the folders."""
        tmp_name = f"{_TMP_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
        build(self.root.create_group(tmp_name))
        _replace_dir(self.path / tmp_name, self.path / name)
        return self.root[name]

    # -- prompt layers ---------------------------------------------------------------------------
    def write_prompts(self, points, point_positive, shapes, shape_types) -> None:
        """Store the prompt layers: ``points`` (N, ndim) with ``point_positive`` (N,), ``shapes`` a list
        of (K_i, ndim) vertex arrays with ``shape_types`` ("rectangle", "path", ...). Replaces the
        previous prompt layers atomically."""
        self._writable()
        ndim = len(self.meta["spatial_shape"])
        pts = np.asarray(points, np.float64).reshape(-1, ndim) if len(points) else np.zeros((0, ndim))
        pos = np.asarray(point_positive, bool).reshape(-1)
        if len(pos) != len(pts):
            raise ValueError(f"{len(pts)} points but {len(pos)} positive flags")
        verts = [np.asarray(s, np.float64).reshape(-1, ndim) for s in shapes]
        types = [str(shape_types)] * len(verts) if isinstance(shape_types, str) else [str(t) for t in shape_types]
        if len(types) != len(verts):
            raise ValueError(f"{len(verts)} shapes but {len(types)} shape types")
        offsets = np.concatenate([[0], np.cumsum([len(v) for v in verts])]).astype(np.int64)

        def build(g: zarr.Group) -> None:
            p, s = g.create_group("points"), g.create_group("shapes")
            p.create_array("coords", data=pts, chunks=(max(1, len(pts)), ndim))
            p.create_array("positive", data=pos, chunks=(max(1, len(pos)),))
            allv = np.concatenate(verts) if verts else np.zeros((0, ndim))
            s.create_array("vertices", data=allv, chunks=(max(1, len(allv)), ndim))
            s.create_array("offsets", data=offsets, chunks=(len(offsets),))
            t = s.create_array("type", shape=(len(types),), dtype=str, chunks=(max(1, len(types)),))
            if types:
                t[:] = np.array(types, dtype=object)

        with self._lock:
            self._rebuild_group("prompts", build)

    def prompts(self) -> Prompts:
        """The stored prompt layers, or, if none were written, the prompts of the log (accepted and
        current objects, undo/redo applied): clicks as points, boxes as rectangles, scribbles as paths."""
        ndim = len(self.meta["spatial_shape"])
        if (self.path / "prompts" / "zarr.json").is_file():
            try:
                g = zarr.open_group(LocalStore(self.path / "prompts", read_only=True), mode="r")
                offs = g["shapes/offsets"][:]
                verts = g["shapes/vertices"][:]
                return Prompts(g["points/coords"][:].reshape(-1, ndim), g["points/positive"][:].astype(bool),
                               [verts[a:b] for a, b in zip(offs[:-1], offs[1:])], [str(t) for t in g["shapes/type"][:]])
            except Exception as err:  # noqa: BLE001
                raise ValueError(f"session {self.path} is damaged: prompt layers unreadable ({err})") from err
        return prompts_from_events(self.events(), self.meta["session"]["plane_axes"], ndim)

    # -- event log -------------------------------------------------------------------------------
    def _writable(self) -> None:
        if self.read_only:
            raise PermissionError(f"session {self.path} is open read-only")

    def _read_rows(self) -> list[dict[str, Any]]:
        cols = self._log.read()
        names = {c: k for k, c in self._kinds.items()}
        out = []
        try:
            for i in range(self._log.length):
                plane = cols["plane"][i]
                out.append({
                    "seq": int(cols["seq"][i]), "time": float(cols["time"][i]), "kind": names[int(cols["kind"][i])],
                    "object": int(cols["object"][i]), "plane": [int(v) for v in plane if v >= 0],
                    "coords": json.loads(cols["coords"][i]),
                    "label": None if cols["label"][i] < 0 else int(cols["label"][i]),
                    "latency_ms": None if np.isnan(cols["latency_ms"][i]) else float(cols["latency_ms"][i]),
                    "weights": bytes(cols["weights"][i]).rstrip(b"\0").decode("ascii"),
                    "extra": json.loads(cols["extra"][i]),
                })
        except (KeyError, ValueError, UnicodeDecodeError) as err:
            raise ValueError(f"session {self.path} is damaged: log row {len(out)} unreadable ({err})") from err
        return out

    def _read_journal(self, repair: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Journal records not yet in the arrays: (events, objects-table rows)."""
        if not self._journal.is_file():
            return [], []
        data = self._journal.read_bytes()
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" after a complete last line; else the torn event in flight
        if tail and repair:
            os.truncate(self._journal, len(data) - len(tail))
        done = {e["seq"] for e in self._rows}
        done_ids = set(self._objects.read()["id"].tolist())
        events, objects = [], []
        for n, line in enumerate(lines):
            try:
                record = json.loads(line)
                if "object_row" in record:
                    if record["object_row"]["id"] not in done_ids:
                        objects.append(record["object_row"])
                elif record["seq"] not in done:
                    events.append(record)
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(f"session {self.path} is damaged: {self._journal} line {n + 1} is garbled") from err
        return events, objects

    def events(self) -> list[dict[str, Any]]:
        """The whole interaction log, ordered by ``seq``."""
        with self._lock:
            return sorted(self._rows + self._pending_events, key=lambda e: e["seq"])

    def append_event(self, event: dict[str, Any]) -> None:
        """Append one event to the log (journal write now, compaction into the arrays when due)."""
        self._writable()
        ev = normalise_event(event)
        with self._lock:
            self._journal_write(ev)
            self._pending_events.append(ev)
            self._next_seq = max(self._next_seq, ev["seq"] + 1)
            self._compact_if_due()

    def _journal_write(self, record: dict[str, Any]) -> None:
        line = (_dumps(record) + "\n").encode()
        try:
            with open(self._journal, "ab", buffering=0) as fh:  # one write(2): all or nothing on kill -9
                fh.write(line)
        except PermissionError as err:
            raise PermissionError(f"cannot write the session log {self._journal}: {err}") from err

    def _compact_if_due(self) -> None:
        if len(self._pending_events) + len(self._pending_objects) >= COMPACT_EVERY:
            self.compact()

    def compact(self) -> None:
        """Move the journal's records into the log and objects arrays, then empty the journal."""
        with self._lock:
            if self.read_only or not (self._pending_events or self._pending_objects):
                return
            if self._pending_objects:
                self._compact_objects()
            if self._pending_events:
                self._compact_events()
            if self._journal.exists():
                os.truncate(self._journal, 0)

    def _compact_objects(self) -> None:
        n = self._objects.length
        if n and any(r["areas"] for r in self._pending_objects):
            ids = self._objects.arrays["id"][:n]
            old = self._objects.arrays["area"][:n]
            self._objects.arrays["area"][:n] = np.array([self._areas.get(int(i), a) for i, a in zip(ids, old)], np.int64)
        rows = self._pending_objects
        self._objects.append({
            "id": np.array([r["id"] for r in rows], np.int32), "class_id": np.array([r["class_id"] for r in rows], np.int32),
            "class_name": np.array([r["class_name"] for r in rows], dtype=object),
            "area": np.array([self._areas[r["id"]] for r in rows], np.int64),
            "planes": np.array([_dumps(r["planes"]) for r in rows], dtype=object)})
        self._pending_objects = []

    def _compact_events(self) -> None:
        events = self._pending_events
        new = sorted({e["kind"] for e in events} - set(self._kinds))
        if new:
            self._kinds.update({k: max(self._kinds.values()) + 1 + i for i, k in enumerate(new)})
            self._log.group.attrs["kinds"] = self._kinds
        w = self.plane_width
        planes = np.full((len(events), w), -1, np.int32)
        for i, e in enumerate(events):
            if len(e["plane"]) > w:
                raise ValueError(f"event {e['seq']} has a plane of {len(e['plane'])} coordinates; this session "
                                 f"stores {w}")
            planes[i, : len(e["plane"])] = e["plane"]
        weights = np.zeros((len(events), HASH_WIDTH), np.uint8)
        for i, e in enumerate(events):
            b = str(e["weights"]).encode("ascii")[:HASH_WIDTH]
            weights[i, : len(b)] = np.frombuffer(b, np.uint8)
        self._log.append({
            "time": np.array([e["time"] for e in events], np.float64),
            "seq": np.array([e["seq"] for e in events], np.int64),
            "kind": np.array([self._kinds[e["kind"]] for e in events], np.uint8),
            "object": np.array([e["object"] for e in events], np.int32), "plane": planes,
            "coords": np.array([_dumps(e["coords"]) for e in events], dtype=object),
            "label": np.array([-1 if e["label"] is None else e["label"] for e in events], np.int8),
            "latency_ms": np.array([np.nan if e["latency_ms"] is None else e["latency_ms"] for e in events]),
            "weights": weights, "extra": np.array([_dumps(e["extra"]) for e in events], dtype=object),
        })
        self._rows.extend(events)
        self._pending_events = []

    def prior_mask(self, seq: int) -> np.ndarray | None:
        """The prior mask given with the ``prior`` event ``seq`` (None if it was not saved)."""
        if seq not in self._saved_priors:
            return None
        return np.asarray(self.root[f"priors/{seq}"][...], bool)

    def _save_priors(self, session: "Session") -> None:
        for seq, mask in list(session.prior_masks.items()):
            if seq not in self._saved_priors:
                m = np.asarray(mask, bool)
                self.root["priors"].create_array(str(seq), data=m, chunks=tuple(min(s, 512) for s in m.shape),
                                                 overwrite=True)
                self._saved_priors.add(seq)

    # -- model -----------------------------------------------------------------------------------
    def save_model(self, engine: "Engine", name: str = "current") -> Path:
        """Save the engine's (adapted) weights with their metadata in ``model/NAME``."""
        self._writable()
        with self._lock:
            if self.meta.get("base_hash") is None:
                self.meta["base_hash"] = engine.base_hash
                self.root.attrs[ATTRS_KEY] = self.meta
            target = self.path / "model" / name
            exists = target.with_suffix(".json").is_file()
            if name == "current" and (self._model_hash == engine.weights_hash if exists
                                      else engine.weights_hash == engine.base_hash):
                return target.with_suffix(".safetensors")  # nothing new to save
            out = engine.save(target)
            if name == "current":
                self._model_hash = engine.weights_hash
            return out

    def model_path(self, weights: str | None = None) -> Path | None:
        """The saved current weights (or the snapshot of weights hash ``weights``), None if absent."""
        p = self.path / "model" / f"{weights or 'current'}.safetensors"
        return p if p.is_file() and p.with_suffix(".json").is_file() else None

    def load_engine(self, device="auto") -> "Engine":
        """An engine with the saved adapted weights (the shipped weights if none were saved)."""
        from napari_oaims.engine import Engine

        p = self.model_path()
        if p is not None:
            return Engine.load(p, device=device)
        engine = Engine.pretrained(device=device)
        base = self.meta.get("base_hash")
        if base is not None and engine.base_hash != base:
            raise ValueError(f"session {self.path} was made with base weights {base}, but this napari-oaims ships "
                             f"{engine.base_hash} (and the session saved no adapted weights)")
        return engine

    # -- autosave and resume ---------------------------------------------------------------------
    def attach(self, session: "Session") -> None:
        """Autosave ``session``: every event it records from now on (and those not yet saved) is
        written as it happens, accepted objects go into the labels, weights updates into ``model/``."""
        self._writable()
        with self._lock:
            if self._next_seq > 0:
                known = [e for e in session.events if e["seq"] == self._next_seq - 1]
                last = self.events()[-1]
                if not known or normalise_event(known[0])["time"] != last["time"] or known[0]["kind"] != last["kind"]:
                    raise ValueError(f"this session's log does not continue the log stored in {self.path}; use "
                                     "SessionStore.open(path).resume() to continue a saved session")
            base = self.meta.get("base_hash")
            if base is not None and session.engine.base_hash != base:
                raise ValueError(f"session {self.path} was recorded with base weights {base}; this engine's base "
                                 f"weights are {session.engine.base_hash}")
            start = next((e for e in session.events if e["seq"] >= self._next_seq and e["kind"] == "session"), None)
            if start is not None and start["weights"] != session.engine.base_hash:
                if self.model_path(start["weights"]) is None and start["weights"] == session.engine.weights_hash:
                    self.save_model(session.engine, name=start["weights"])
            self._session = session
            session.subscribe(self._listener(session))
            self._catch_up(session)

    def _listener(self, session: "Session"):
        def listener(event: dict, result=None) -> None:
            if self._session is session:
                self.autosave(session, event, result)

        return listener

    def autosave(self, session: "Session", event: dict, result=None) -> None:
        """What :meth:`attach` does for each event. Errors are not raised (the session must go on):
        they are kept in :attr:`error` and reported once (to :attr:`on_error` if set, else as a
        RuntimeWarning), and saving is retried at the next event; ``on_error(None)`` is called
        when saving works again."""
        with self._lock:
            try:
                self._catch_up(session, event, result)
                if self.error is not None and self.on_error is not None:
                    self.on_error(None)
                self.error = None
            except (OSError, ValueError) as err:
                if self.error is None:
                    if self.on_error is not None:
                        self.on_error(err)
                    else:
                        warnings.warn(f"autosave to {self.path} failed ({err}); the session goes on in memory and "
                                      "saving is retried at the next event", RuntimeWarning, stacklevel=3)
                self.error = err

    def _catch_up(self, session: "Session", event: dict | None = None, result=None) -> None:
        self._save_priors(session)  # a prior's mask is in the session from the event after its own
        for ev in session.events[self._next_seq:]:
            if ev["seq"] < self._next_seq:
                continue
            if ev["kind"] == "accept" and ev is event and isinstance(result, Accepted):
                self._commit_accepted(result, ev)
            self.append_event(ev)
            if ev["kind"] == "update":
                self.save_model(session.engine)

    def _commit_accepted(self, accepted: Accepted, event: dict) -> None:
        """Paint an accepted object into the labels and journal its objects-table row."""
        area, overwritten, _ = paint_planes(self._labels, accepted.plane_axes, accepted.planes, accepted.object_id)
        extra = event.get("extra") or {}
        self._record_object(accepted.object_id, area, [list(k) for k in accepted.planes], overwritten,
                            int(extra.get("class_id", 1)), str(extra.get("class_name", "object")))

    def resume(self, engine: "Engine | None" = None, device="auto") -> ResumeState:
        """Continue the saved session: restores the adapted weights (into ``engine`` if given, which
        must have the same base weights), and returns a new autosaved Session whose log continues
        the stored one (``seq`` and object ids go on), with the image, labels and prompt layers."""
        self._writable()
        from napari_oaims.model import load_weights

        events = self.events()
        if [e["seq"] for e in events] != list(range(len(events))):
            raise ValueError(f"session {self.path} is damaged: its log has gaps in seq")
        if engine is None:
            engine = self.load_engine(device)
        elif self.model_path() is not None:
            base = self.meta.get("base_hash")
            if base is not None and engine.base_hash != base:
                raise ValueError(f"session {self.path} was adapted from base weights {base}; the given engine's base "
                                 f"weights are {engine.base_hash}")
            model, config = load_weights(self.model_path())
            with engine.lock:
                engine.model.load_state_dict(model.state_dict())
                engine.weights_changed()
                engine.updates = int(config.get("adapted_from", {}).get("updates", 0))
        image = self.image()
        session = engine.session(image, **self.session_params())
        objects = self.objects()
        accepted = [e["object"] for e in events if e["kind"] == "accept"] + [o["id"] for o in objects]
        session.object_id = max(accepted, default=0) + 1
        session.accepted_diameters = accepted_diameters(events, objects)
        start = session.events[-1]
        start.update(seq=len(events), object=session.object_id)
        start["extra"]["resumed"] = True
        # What object size "auto" starts from here, so that a replay starts from it too.
        start["extra"]["accepted_diameters"] = {str(k): v for k, v in session.accepted_diameters.items()}
        session.events = list(events) + [start]
        self.attach(session)
        return ResumeState(self, engine, session, image, self.labels(), self.prompts(), objects, session.events)

    def close(self) -> None:
        """Stop autosaving and compact the journal into the log arrays."""
        with self._lock:
            self._session = None
            if not self.read_only:
                self.compact()

    def __enter__(self) -> "SessionStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SessionStore({str(self.path)!r}, events={self._next_seq}, objects={len(self._areas)})"


def accepted_diameters(events: list[dict[str, Any]], objects: list[dict[str, Any]]) -> dict[int, float]:
    """Diameters of the objects still in the labels, for ``first_window="auto"`` in a resumed
    session: the one logged at accept, or, for objects without one (older logs, labels written
    directly), the equivalent diameter of their mean area per plane."""
    logged = {}
    for e in events:
        if e["kind"] == "accept":
            value = (e.get("extra") or {}).get("diameter")
            if isinstance(value, (int, float)) and np.isfinite(value) and value > 0:  # a damaged value: use the area
                logged[int(e["object"])] = float(value)
    out = {}
    for o in objects:
        if o["area"] > 0:
            area = o["area"] / max(len(o["planes"]), 1)
            out[int(o["id"])] = logged.get(int(o["id"]), round(float(2.0 * np.sqrt(area / np.pi)), 2))
    return out


def prompts_from_events(events: list[dict[str, Any]], plane_axes, ndim: int) -> Prompts:
    """Prompt layers implied by a log: the prompts in force at each accept (undo/redo/clear applied)
    plus those of the object in progress. Priors are masks, not drawn shapes, and are left out."""
    kept: list[dict] = []
    cur: list[dict] = []
    undo: list[tuple[list, list]] = []
    redo: list[tuple[list, list]] = []
    touched = False
    for e in events:
        k = e["kind"]
        if k in ("click", "box", "scribble", "prior"):
            undo.append((cur, cur + [e]))
            redo.clear()
            cur, touched = cur + [e], True
        elif k == "undo" and undo:
            before, after = undo.pop()
            redo.append((before, after))
            cur = before
        elif k == "redo" and redo:
            before, after = redo.pop()
            undo.append((before, after))
            cur = after
        elif k == "clear":
            if touched:
                undo.append((cur, []))
                redo.clear()
            cur = []
        elif k in ("accept", "session"):
            if k == "accept":
                kept.extend(cur)
            cur, undo, redo, touched = [], [], [], False
    kept.extend(cur)
    pts, pos, shapes, types = [], [], [], []
    for e in kept:
        plane, c = e["plane"], e["coords"]
        if e["kind"] == "click":
            pts.append(full_coords(plane_axes, ndim, plane, c))
            pos.append(bool(e["label"]))
        elif e["kind"] == "box":
            y0, x0, y1, x1 = c
            shapes.append(np.array([full_coords(plane_axes, ndim, plane, yx)
                                    for yx in ((y0, x0), (y0, x1), (y1, x1), (y1, x0))]))
            types.append("rectangle")
        elif e["kind"] == "scribble":
            shapes.append(np.array([full_coords(plane_axes, ndim, plane, yx) for yx in c]))
            types.append("path")
    return Prompts(np.array(pts, np.float64).reshape(-1, ndim), np.array(pos, bool), shapes, types)
