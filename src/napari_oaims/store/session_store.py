"""Annotation sessions on disk: one ``*.oaims.zarr`` folder (Zarr v3) per annotated image.

The folder layout is documented in :mod:`napari_oaims.store.layout`, the tables and journal in
:mod:`napari_oaims.store.journal`, autosave in :mod:`napari_oaims.store.autosave` and resuming in
:mod:`napari_oaims.store.resume`. :class:`SessionStore` makes and opens a folder and holds the
parts that read and write it.
"""

from __future__ import annotations

import math
import shutil
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from zarr.storage import LocalStore

from napari_oaims.core.events import KIND_CODES
from napari_oaims.core.files import open_image
from napari_oaims.store.autosave import Autosave, ModelFiles, Priors
from napari_oaims.store.folder import acquire_writer, check_links, release_writer
from napari_oaims.store.image import StoredImage, dataset_path
from napari_oaims.store.journal import _OBJECT_COLUMNS, Journal, _log_columns, _Table, node
from napari_oaims.store.labels import LabelImage
from napari_oaims.store.layout import (
    ATTRS_KEY,
    FORMAT,
    FORMAT_VERSION,
    LABELS_NAME,
    REFERENCE_THRESHOLD,
    SUFFIX,
    FolderAttrs,
    _can_write,
    _check_writable_target,
    _recover_swaps,
    _replace_dir,
    file_digest,
    is_session,
    read_format,
    reference_info,
    write_image,
    write_labels_image,
    written_with,
)
from napari_oaims.store.prompts import PromptLayers, Prompts, prompts_from_events
from napari_oaims.store.resume import ResumeState, accepted_diameters, resume

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


class SessionStore:
    """One ``*.oaims.zarr`` session folder (layout in :mod:`napari_oaims.store.layout`).

    Make one with :meth:`create`, reopen one with :meth:`open`. :meth:`attach` autosaves a live
    :class:`~napari_oaims.session.Session`; :meth:`resume` continues a saved one.

    The store holds its parts, each given only what it touches: the folder's attributes
    (:class:`~napari_oaims.store.layout.FolderAttrs`), the image
    (:class:`~napari_oaims.store.image.StoredImage`), the log and objects table
    (:class:`~napari_oaims.store.journal.Journal`), the label image
    (:class:`~napari_oaims.store.labels.LabelImage`), prior masks and saved weights
    (:class:`~napari_oaims.store.autosave.Priors`, :class:`~napari_oaims.store.autosave.ModelFiles`),
    the prompt layers (:class:`~napari_oaims.store.prompts.PromptLayers`) and the following of a
    live session (:class:`~napari_oaims.store.autosave.Autosave`). One lock serialises them.
    """

    def __init__(self, path: Path, root: zarr.Group, read_only: bool):
        self.path = path
        self.root = root
        self.read_only = read_only
        self._lock = threading.RLock()
        self._unlock: weakref.finalize | None = None  # gives back the writer lock (writable stores)
        try:
            self._attrs = FolderAttrs(root)
            meta = self._attrs.meta
            self.plane_width = int(meta["plane_width"])
            labels = node(root, f"labels/{LABELS_NAME}/{dataset_path(root, f'labels/{LABELS_NAME}')}")
            self._image = StoredImage(root, path, self._attrs, read_only)
            self._journal = Journal(root, path, self.plane_width, written_with(meta), self._lock, read_only)
            plane_axes = meta["session"]["plane_axes"]
            self._labels = LabelImage(labels, plane_axes, self._journal, self._lock)
            ndim = len(meta["spatial_shape"])
            self._prompts = PromptLayers(root, path, ndim, plane_axes, self._journal.events, self._lock)
        except Exception as err:  # noqa: BLE001 - whatever Zarr raises for a broken node: a damaged session
            if isinstance(err, ValueError) and str(path) in str(err):
                raise
            what = str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}"
            raise ValueError(f"session {path} is damaged: {what} ({SALVAGE_HINT})") from err
        self._priors = Priors(root)
        self._models = ModelFiles(path, self._attrs, self._lock)
        me = weakref.proxy(self)  # autosave writes through the public calls, without keeping the store alive
        self._autosave = Autosave(
            path,
            self._journal,
            self._labels,
            self._priors,
            self._attrs,
            self._lock,
            model_path=self._models.path,
            append_event=lambda event: me.append_event(event),
            save_model=lambda engine, name="current": me.save_model(engine, name),
        )

    @property
    def meta(self) -> dict[str, Any]:
        """The session's attributes (format, image, session parameters, base weights); read only."""
        return self._attrs.meta

    @property
    def error(self) -> BaseException | None:
        """The last autosave failure (None when all is saved)."""
        return self._autosave.error

    @property
    def on_error(self) -> Callable[[BaseException | None], None] | None:
        """Called with the error when autosave starts failing, and with None when it works again."""
        return self._autosave.on_error

    @on_error.setter
    def on_error(self, callback: Callable[[BaseException | None], None] | None) -> None:
        self._autosave.on_error = callback

    @property
    def model_save_interval_s(self) -> float:
        """While updates go on, adapted weights are written at most this often (seconds)."""
        return self._autosave.interval_s

    @model_save_interval_s.setter
    def model_save_interval_s(self, seconds: float) -> None:
        self._autosave.interval_s = float(seconds)

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
        old_lock = acquire_writer(path) if path.is_dir() else None  # refused while another process writes it
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
        finally:
            if old_lock is not None:
                release_writer(old_lock)
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
            :func:`napari_oaims.store.salvage` reads the parts that are intact. For writing, also
            a folder holding a link that leads outside it (:func:`~napari_oaims.store.folder.check_links`).
        SessionInUseError
            For writing: another process writes the folder (:mod:`napari_oaims.store.folder`).
        """
        path = Path(path).absolute()
        if not path.exists():
            raise FileNotFoundError(f"no session at {path}")
        if not path.is_dir():
            raise ValueError(f"{path} is a file, not a napari-oaims session folder")
        read_format(path)
        if not read_only and not _can_write(path):
            raise PermissionError(f"session folder {path} is read-only; open it with read_only=True or copy it")
        if read_only:
            lock = None
        else:
            check_links(path)  # before anything is written
            lock = acquire_writer(path)
        try:
            try:
                root = zarr.open_group(LocalStore(path, read_only=read_only), mode="r" if read_only else "r+")
            except Exception as err:  # noqa: BLE001 - any Zarr error here means a damaged folder
                raise ValueError(f"session {path} is damaged: {err}") from err
            if not read_only:
                _recover_swaps(path)
            store = cls(path, root, read_only)
            store._image.locate(image_path)
        except BaseException:
            if lock is not None:
                release_writer(lock)
            raise
        # The lock goes at close(), or when the store is dropped unclosed.
        store._unlock = weakref.finalize(store, release_writer, lock) if lock is not None else None
        return store

    # -- image -----------------------------------------------------------------------------------
    def image(self):
        """The image, lazily read, in the axis order it was given to :meth:`create`."""
        return self._image.array()

    def session_params(self) -> dict[str, Any]:
        """Keyword arguments of ``Engine.session`` that reproduce the saved session's image handling."""
        p = dict(self.meta["session"])
        p["plane_axes"] = tuple(p["plane_axes"])
        return p

    # -- labels and objects ----------------------------------------------------------------------
    def labels(self):
        """The accepted-objects label image (a Zarr array; spatial axes of the image)."""
        return self._labels.array

    def commit_object(self, object_id: int, mask: np.ndarray, class_id: int = 1, class_name: str = "object") -> None:
        """Write an accepted object's mask (image spatial shape) into the labels (its region only;
        it wins over earlier objects there: the mask is what a viewer's labels hold) and add it to
        the objects table."""
        self._writable()
        self._labels.commit(object_id, mask, class_id, class_name)

    def write_labels(self, labels: np.ndarray, class_name: str = "object") -> None:
        """Replace the whole label image (e.g. edited in napari) and rebuild the objects table
        (class ids and names of ids already in the table are kept)."""
        self._writable()
        self._labels.replace(labels, class_name)

    def objects(self) -> list[dict[str, Any]]:
        """One dict per object: id, class_id, class_name, area, planes."""
        return self._journal.objects()

    # -- event log -------------------------------------------------------------------------------
    def events(self) -> list[dict[str, Any]]:
        """The whole interaction log, ordered by ``seq``."""
        return self._journal.events()

    def append_event(self, event: dict[str, Any]) -> None:
        """Append one event to the log (journal write now, compaction into the arrays when due)."""
        self._writable()
        self._journal.append(event)

    def compact(self) -> None:
        """Move the journal's records into the log and objects arrays, then empty the journal."""
        self._journal.compact()

    def prior_mask(self, seq: int) -> np.ndarray | None:
        """The prior mask given with the ``prior`` event ``seq`` (None if it was not saved)."""
        return self._priors.mask(seq)

    def barrier_mask(self, seq: int):
        """The voxels the barrier of the ``propagate`` event ``seq`` kept out (a bool array of the
        image's spatial shape, read lazily), or None if the event had none (or its folder's format
        version is older than 5)."""
        return self._priors.barrier(seq)

    # -- prompt layers ---------------------------------------------------------------------------
    def write_prompts(self, points, point_positive, shapes, shape_types) -> None:
        """Store the prompt layers: ``points`` (N, ndim) with ``point_positive`` (N,), ``shapes`` a list
        of (K_i, ndim) vertex arrays with ``shape_types`` ("rectangle", "path", ...). Replaces the
        previous prompt layers atomically."""
        self._writable()
        self._prompts.write(points, point_positive, shapes, shape_types)

    def prompts(self) -> Prompts:
        """The stored prompt layers, or, if none were written, the prompts of the log (accepted and
        current objects, undo/redo applied): clicks as points, boxes as rectangles, scribbles as paths."""
        return self._prompts.read()

    # -- model -----------------------------------------------------------------------------------
    def save_model(self, engine: "Engine", name: str = "current") -> Path:
        """Save the engine's (adapted) weights with their metadata in ``model/NAME``."""
        self._writable()
        return self._models.save(engine, name)

    def model_path(self, weights: str | None = None) -> Path | None:
        """The saved current weights (or the snapshot of weights hash ``weights``), None if absent."""
        return self._models.path(weights)

    def load_engine(self, device="auto") -> "Engine":
        """An engine with the saved adapted weights (the shipped weights if none were saved)."""
        return self._models.load_engine(device)

    # -- autosave and resume ---------------------------------------------------------------------
    def attach(self, session: "Session") -> None:
        """Autosave ``session``: every event it records from now on (and those not yet saved) is
        written as it happens, accepted objects go into the labels, weights updates into ``model/``."""
        self._writable()
        with self._lock:
            self._autosave.attach(session)
            session.subscribe(self._listener(session))
            self._autosave.catch_up(session)

    def _listener(self, session: "Session"):
        def listener(event: dict, result=None) -> None:
            if self._autosave.session is session:
                self.autosave(session, event, result)

        return listener

    def autosave(self, session: "Session", event: dict, result=None) -> None:
        """What :meth:`attach` does for each event. Errors are not raised (the session must go on):
        they are kept in :attr:`error` and reported once (to :attr:`on_error` if set, else as a
        RuntimeWarning), and saving is retried at the next event; ``on_error(None)`` is called
        when saving works again."""
        self._autosave.autosave(session, event, result)

    def resume(self, engine: "Engine | None" = None, device="auto") -> ResumeState:
        """Continue the saved session: restores the adapted weights (into ``engine`` if given, which
        must have the same base weights), and returns a new autosaved Session whose log continues
        the stored one (``seq`` and object ids go on), with the image, labels and prompt layers."""
        self._writable()
        return resume(self, engine, device)

    def _writable(self) -> None:
        if self.read_only:
            raise PermissionError(f"session {self.path} is open read-only")

    def close(self) -> None:
        """Save what autosave could not save yet, stop autosaving, compact the journal into the
        log arrays and give back the writer lock."""
        with self._lock:
            try:
                if not self.read_only:
                    self._autosave.detach()
                    self._journal.compact()
            finally:
                if self._unlock is not None:
                    self._unlock()

    def __enter__(self) -> "SessionStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SessionStore({str(self.path)!r}, events={self._journal.next_seq}, objects={self._journal.n_objects})"
