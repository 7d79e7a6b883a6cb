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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from zarr.storage import LocalStore

from napari_oaims.core.events import KIND_CODES
from napari_oaims.core.events import dumps as _dumps
from napari_oaims.core.files import open_image
from napari_oaims.core.geometry import bbox_nd
from napari_oaims.core.labels import object_planes, paint, planes_of_labels
from napari_oaims.store.autosave import AutosaveMixin
from napari_oaims.store.journal import _OBJECT_COLUMNS, JournalMixin, _log_columns, _Table, node
from napari_oaims.store.layout import (
    _TMP_PREFIX,
    ATTRS_KEY,
    FORMAT,
    FORMAT_VERSION,
    LABELS_NAME,
    REFERENCE_THRESHOLD,
    SUFFIX,
    _can_write,
    _check_writable_target,
    _recover_swaps,
    _replace_dir,
    check_reference,
    file_digest,
    is_session,
    migrate_events,
    read_format,
    reference_info,
    write_image,
    write_labels_image,
    written_with,
)
from napari_oaims.store.prompts import PromptLayersMixin, Prompts, prompts_from_events
from napari_oaims.store.resume import ResumeMixin, ResumeState, accepted_diameters

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.engine import Engine
    from napari_oaims.session import Session

__all__ = [
    "ATTRS_KEY",
    "SUFFIX",
    "Prompts",
    "ResumeState",
    "SessionStore",
    "accepted_diameters",
    "file_digest",
    "prompts_from_events",
]


SALVAGE_HINT = "napari_oaims.store.salvage(path) reads its intact parts"


class SessionStore(JournalMixin, AutosaveMixin, ResumeMixin, PromptLayersMixin):
    """One ``*.oaims.zarr`` session folder (layout in :mod:`napari_oaims.store.layout`).

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
        self._model_pending: set[int] = set()  # objects whose weights updates are not in model/current yet
        self._model_saved_at = 0.0
        try:
            meta = root.attrs[ATTRS_KEY]
            self.meta: dict[str, Any] = dict(meta)
            self.plane_width = int(meta["plane_width"])
            self._labels = node(root, f"labels/{LABELS_NAME}/{self._dataset_path(f'labels/{LABELS_NAME}')}")
            self._log = _Table(node(root, "log"), _log_columns(self.plane_width))
            self._objects = _Table(node(root, "objects"), _OBJECT_COLUMNS)
            self._kinds: dict[str, int] = dict(self._log.group.attrs["kinds"])
            if self.meta["image"]["mode"] == "embedded":
                self._image_array = node(root, self._dataset_path(""))
            self._journal = path / "log" / "journal.jsonl"
            self._rows = self._read_rows()
            self._pending_events, self._pending_objects = self._read_journal(repair=not read_only)
            self._areas = self._current_areas()
            migrate_events(self._rows, written_with(self.meta))  # an older folder, as today's (in memory)
            migrate_events(self._pending_events, written_with(self.meta))
        except Exception as err:  # noqa: BLE001 - whatever Zarr raises for a broken node: a damaged session
            if isinstance(err, ValueError) and str(path) in str(err):
                raise
            what = str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}"
            raise ValueError(f"session {path} is damaged: {what} ({SALVAGE_HINT})") from err
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
    def create(
        cls,
        path: str | Path,
        image: Any = None,
        *,
        engine: "Engine | None" = None,
        session: "Session | None" = None,
        image_path: str | Path | None = None,
        reference: bool | None = None,
        overwrite: bool = False,
        plane_axes=(-2, -1),
        channel_axis: int | None = None,
        rgb: bool | None = None,
        channel: int | None = None,
        reference_threshold: int = REFERENCE_THRESHOLD,
    ) -> "SessionStore":
        """Write a new session folder at ``path`` and return it open for writing.

        Parameters
        ----------
        path : str or Path
            The folder to write, by convention ``NAME.oaims.zarr``. An existing session is replaced
            only with ``overwrite=True``; other folders are never replaced.
        image : array or path, optional
            NumPy, Zarr or Dask array, or an image file. With ``session`` it defaults to the
            session's image.
        engine : Engine, optional
            Records the base weights and the current weights (default: the session's engine).
        session : Session, optional
            Attached at once: every later event is autosaved. Objects it accepted before are not
            in the labels (add them with :meth:`commit_object`).
        image_path : str or Path, optional
            The image's file, so that a large image can be stored as a reference.
        reference : bool, optional
            Store a reference (path and digest) instead of embedding the image as OME-Zarr.
            ``None``: only when the image is larger than ``reference_threshold`` bytes and
            ``image_path`` names its file.
        overwrite : bool
            Replace an existing session folder.
        plane_axes, channel_axis, rgb, channel
            How the image is read, as in :meth:`Engine.session <napari_oaims.Engine.session>`.
        reference_threshold : int
            Bytes above which a file-backed image is referenced (512 MiB).

        Returns
        -------
        SessionStore
            Open for writing; :meth:`close` it when done.

        Examples
        --------
        >>> s = engine.session(image)  # doctest: +SKIP
        >>> store = SessionStore.create("cells.oaims.zarr", session=s)  # doctest: +SKIP
        """
        from napari_oaims.core.source import ImageSource

        path = Path(path).absolute()
        if path.exists():
            if not path.is_dir():
                raise ValueError(f"cannot save the session to {path}: a file with that name exists")
            if not overwrite:
                raise FileExistsError(f"{path} already exists; pass overwrite=True to replace that session")
            if not is_session(path):
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
            warnings.warn(
                f"embedding a {nbytes / 2**30:.1f} GiB image in {path}; pass image_path to store a "
                "reference to its file instead",
                stacklevel=2,
            )
        params = {
            "plane_axes": list(src.plane_axes),
            "channel_axis": src.channel_axis,
            "rgb": src.rgb,
            "channel": src.channel,
        }
        tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            root = zarr.open_group(LocalStore(tmp), mode="w-", zarr_format=3)
            if reference:
                info = reference_info(Path(image_path), shape, dtype)
            else:
                info = write_image(root, image, src.channel_axis)
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
    def _write_skeleton(root: zarr.Group, src, info, params, engine) -> None:
        spatial = src.spatial_shape
        write_labels_image(root, spatial)
        plane_width = max(1, len(spatial) - 2)
        _Table.create(root.create_group("log"), _log_columns(plane_width), kinds=KIND_CODES)
        _Table.create(root.create_group("objects"), _OBJECT_COLUMNS)
        root.create_group("priors")
        root.attrs[ATTRS_KEY] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "session_id": uuid.uuid4().hex,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "image": info,
            "session": params,
            "spatial_shape": list(spatial),
            "plane_width": plane_width,
            "base_hash": engine.base_hash if engine is not None else None,
        }

    @classmethod
    def open(cls, path: str | Path, image_path: str | Path | None = None, read_only: bool = False) -> "SessionStore":
        """Open a session folder.

        Parameters
        ----------
        path : str or Path
            A ``*.oaims.zarr`` folder.
        image_path : str or Path, optional
            The new location of a referenced image that moved (its digest must match; the new
            path is recorded unless ``read_only``).
        read_only : bool
            Open without writing anything (nothing on disk changes).

        Returns
        -------
        SessionStore

        Raises
        ------
        FileNotFoundError
            No folder at ``path``, or its referenced image is missing.
        ValueError
            Not a session, a newer format, or damaged: the message names the damaged part, and
            :func:`napari_oaims.store.salvage` reads the parts that are intact.
        """
        path = Path(path).absolute()
        if not path.exists():
            raise FileNotFoundError(f"no session at {path}")
        if not path.is_dir():
            raise ValueError(f"{path} is a file, not a napari-oaims session folder")
        read_format(path)
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
        g = node(self.root, group) if group else self.root
        try:
            return g.attrs["ome"]["multiscales"][0]["datasets"][0]["path"]
        except (KeyError, IndexError, TypeError) as err:
            where = group or "the root group"
            raise ValueError(f"{where} has no valid OME-Zarr multiscales metadata ({err})") from None

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
                    f"deleted); open it with SessionStore.open({str(self.path)!r}, image_path=NEW_LOCATION)"
                )
            raise FileNotFoundError(f"image file not found: {candidate}")
        check_reference(info, candidate, self.path)
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

    def commit_object(self, object_id: int, mask: np.ndarray, class_id: int = 1, class_name: str = "object") -> None:
        """Write an accepted object's mask (image spatial shape) into the labels (its region only;
        it wins over earlier objects there: the mask is what a viewer's labels hold) and add it to
        the objects table."""
        self._writable()
        mask = np.asarray(mask, bool)
        if mask.shape != self._labels.shape:
            raise ValueError(f"object mask has shape {mask.shape}; the labels have shape {self._labels.shape}")
        index = bbox_nd(mask)
        if index is None:
            raise ValueError(f"object {object_id} has an empty mask")
        planes = object_planes(mask, self.meta["session"]["plane_axes"])
        with self._lock:
            area, overwritten, _ = paint(self._labels, index, mask[index], object_id, overwrite=True)
            self._record_object(object_id, area, [list(p) for p in planes], overwritten, class_id, class_name)

    def write_labels(self, labels: np.ndarray, class_name: str = "object") -> None:
        """Replace the whole label image (e.g. edited in napari) and rebuild the objects table
        (class ids and names of ids already in the table are kept)."""
        self._writable()
        labels = np.asarray(labels)
        if labels.shape != self._labels.shape:
            raise ValueError(
                f"labels of shape {labels.shape} do not fit the session image (labels shape {self._labels.shape})"
            )
        if labels.dtype.kind not in "biu" or (labels.size and labels.min() < 0):
            raise ValueError(f"labels must hold non-negative integers, got dtype {labels.dtype}")
        known = {o["id"]: o for o in self.objects()}
        ids, areas = np.unique(labels, return_counts=True)
        keep = ids != 0
        ids, areas = ids[keep], areas[keep]
        planes = planes_of_labels(labels, self.meta["session"]["plane_axes"])
        old = [known.get(int(i), {}) for i in ids]
        rows = {
            "id": ids.astype(np.int32),
            "class_id": np.array([o.get("class_id", 1) for o in old], np.int32),
            "class_name": np.array([o.get("class_name", class_name) for o in old], dtype=object),
            "area": areas.astype(np.int64),
            "planes": np.array([_dumps(planes[int(i)]) for i in ids], dtype=object),
        }
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

    # -- event log -------------------------------------------------------------------------------
    def _writable(self) -> None:
        if self.read_only:
            raise PermissionError(f"session {self.path} is open read-only")

    def close(self) -> None:
        """Stop autosaving and compact the journal into the log arrays."""
        with self._lock:
            session, self._session = self._session, None
            if not self.read_only:
                if session is not None and self._model_pending:
                    self.save_model(session.engine)
                    self._model_pending.clear()
                self.compact()

    def __enter__(self) -> "SessionStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SessionStore({str(self.path)!r}, events={self._next_seq}, objects={len(self._areas)})"
