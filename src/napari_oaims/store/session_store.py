"""Annotation sessions on disk: one ``*.oaims.zarr`` folder (Zarr v3) per annotated image.

The folder layout is documented in :mod:`napari_oaims.store.layout`, the tables and journal in
:mod:`napari_oaims.store.journal`, autosave in :mod:`napari_oaims.store.autosave` and resuming in
:mod:`napari_oaims.store.resume`.
"""

from __future__ import annotations

import json
import math
import shutil
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import zarr
from zarr.storage import LocalStore

from napari_oaims.core.events import KIND_CODES
from napari_oaims.core.files import open_image
from napari_oaims.core.events import dumps as _dumps
from napari_oaims.core.labels import paint, planes_of_labels
from napari_oaims.store.autosave import AutosaveMixin
from napari_oaims.store.journal import _OBJECT_COLUMNS, JournalMixin, _log_columns, _Table
from napari_oaims.store.layout import (
    _TMP_PREFIX,
    ATTRS_KEY,
    FORMAT,
    FORMAT_VERSION,
    LABELS_NAME,
    READABLE_VERSIONS,
    REFERENCE_THRESHOLD,
    SUFFIX,
    _can_write,
    _check_writable_target,
    _is_session,
    _ngff_layout,
    _recover_swaps,
    _replace_dir,
    file_digest,
)
from napari_oaims.store.resume import Prompts, ResumeMixin, ResumeState, accepted_diameters, prompts_from_events

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.engine import Engine
    from napari_oaims.session import Session

__all__ = ["SUFFIX", "Prompts", "ResumeState", "SessionStore", "accepted_diameters", "file_digest",
           "prompts_from_events"]


class SessionStore(JournalMixin, AutosaveMixin, ResumeMixin):
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
            image = open_image(image)
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
        on_disk = open_image(image_path)
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
        version = ours.get("format_version")
        if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
            raise ValueError(f"session {path} has format version {version}; this napari-oaims reads versions "
                             f"{', '.join(map(str, READABLE_VERSIONS))}: update napari-oaims")
        if version not in READABLE_VERSIONS:
            raise ValueError(f"session {path} is damaged: unknown format version {version!r} (this napari-oaims reads "
                             f"{', '.join(map(str, READABLE_VERSIONS))})")
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
        self._image_array = open_image(candidate)

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
        planes = planes_of_labels(labels, self.meta["session"]["plane_axes"])
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

    def close(self) -> None:
        """Stop autosaving and compact the journal into the log arrays."""
        with self._lock:
            session, self._session = self._session, None
            if not self.read_only:
                if session is not None and self._model_dirty:
                    self.save_model(session.engine)
                    self._model_pending.clear()
                self.compact()

    def __enter__(self) -> "SessionStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SessionStore({str(self.path)!r}, events={self._next_seq}, objects={len(self._areas)})"
