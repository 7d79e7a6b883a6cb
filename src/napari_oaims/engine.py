"""The engine: a click model on a device plus an adapter, shared by the sessions that learn together."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from napari_oaims.adapt import Adapter, adapter_from_settings, make_adapter
from napari_oaims.core import guidance
from napari_oaims.core.edges import check_mode as check_edges_mode
from napari_oaims.model import ClickUNet, load_weights, predict_logits, read_config, resolve_device, weights_hash
from napari_oaims.model.device import ONE_THREAD_PIXELS, intra_op_threads, torch_threads
from napari_oaims.session import Session

SHIPPED_WEIGHTS = "oaims_base"


def shipped_weights_path() -> Path:
    """Path of the weights shipped inside the package (``.safetensors``; ``.json`` beside it)."""
    return Path(str(resources.files("napari_oaims") / "weights" / f"{SHIPPED_WEIGHTS}.safetensors"))


def bundled_weights_path(base_hash: str) -> Path | None:
    """The packaged weights file whose JSON names ``base_hash``: the shipped weights or an earlier
    release's (kept so that sessions made with them resume and replay). None if there is none."""
    folder = shipped_weights_path().parent
    for meta in sorted(folder.glob("*.json")):
        try:
            found = read_config(meta.with_suffix(".safetensors")).get("weights_hash") == base_hash
        except (FileNotFoundError, ValueError):  # not a weights config: skip it
            continue
        if found:
            return meta.with_suffix(".safetensors")
    return None


def _config_first_window(config: dict[str, Any]) -> int | str:
    """Window side for an object's first prompt, from the weights' ``window`` settings.

    Weights whose JSON has no ``window.first_size`` keep ``min_size`` (64 px).
    """
    window = config.get("window") or {}
    return _check_first_window(window.get("first_size", window.get("min_size", guidance.MIN_WINDOW)))


def _check_first_window(size: Any) -> int | str:
    if size == "auto":
        return "auto"
    if isinstance(size, bool) or not isinstance(size, (int, float)) or not 8 <= size <= 4096 or size != int(size):
        raise ValueError(
            "first_window (the weights' window.first_size) must be 'auto' or a whole number of pixels in "
            f"[8, 4096], got {size!r}"
        )
    return int(size)


class Engine:
    """A click model (on ``device``) and an online adapter.

    Sessions made by one engine share its weights: what the adapter learns on one object is used
    for the next. Model calls are serialised by a lock, so a GUI may run updates in a worker
    thread while it keeps the engine.
    """

    def __init__(
        self,
        model: ClickUNet,
        config: dict[str, Any] | None = None,
        device="auto",
        adaptation: str | Adapter = "none",
        base_state: dict | None = None,
    ):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.config = dict(config or {})
        self.lock = threading.RLock()
        state = base_state if base_state is not None else model.state_dict()
        self._base_state = {k: v.detach().cpu().clone() for k, v in state.items()}
        self.base_hash = self.config.get("weights_hash") or weights_hash(model)
        self.updates = 0
        #: Updates the guard rolled back or refused, and why the last one was (see :meth:`rolled_back`).
        self.rollbacks = 0
        self.last_rollback: str | None = None
        self._hash: str | None = None
        self.adapter = make_adapter(adaptation)
        self._first_window = _config_first_window(self.config)
        self._edges = "auto"

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def pretrained(
        cls, device="auto", adaptation: str | Adapter = "none", weights: str | Path | None = None
    ) -> "Engine":
        """An engine with the shipped weights, offline.

        Parameters
        ----------
        device : str
            ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"`` or ``"mps"``.
        adaptation : str or Adapter
            ``"none"``, ``"mi"``, ``"pi"``, ``"oaims"``, ``"ia_sa"``, ``"tsca"``, ``"ce"``,
            ``"entropy"``, or an adapter made with :func:`napari_oaims.adapt.make_adapter`.
        weights : path, optional
            Other weights: a ``.safetensors`` file with its ``.json`` beside it.

        Returns
        -------
        Engine

        Examples
        --------
        >>> engine = Engine.pretrained(device="cpu", adaptation="oaims")  # doctest: +SKIP
        """
        path = Path(weights) if weights is not None else shipped_weights_path()
        model, config = load_weights(path)
        return cls(model, config, device=device, adaptation=adaptation)

    @classmethod
    def for_base(cls, base_hash: str | None, device="auto", adaptation: str | Adapter = "none") -> "Engine":
        """An engine with the packaged weights whose hash is ``base_hash`` (the shipped weights when
        it is None or names them). ValueError if no packaged weights have that hash."""
        path = shipped_weights_path() if base_hash is None else bundled_weights_path(base_hash)
        if path is None:
            raise ValueError(
                f"no weights packaged with this napari-oaims have the hash {base_hash}; pass the "
                "weights file they came from"
            )
        return cls.pretrained(device=device, adaptation=adaptation, weights=path)

    @classmethod
    def load(cls, path: str | Path, device="auto", adaptation: str | Adapter | None = None) -> "Engine":
        """Adapted weights written by :meth:`save`. ``reset()`` then returns to the packaged base
        weights when the saved base hash names one of them (:func:`bundled_weights_path`), else to
        the loaded weights."""
        model, config = load_weights(path)
        base = config.get("adapted_from")
        base_state = None
        if base is not None:
            found = bundled_weights_path(str(base.get("weights_hash")))
            try:
                packaged = load_weights(found)[0] if found is not None else None
            except (FileNotFoundError, ValueError):
                packaged = None
            if packaged is not None and weights_hash(packaged) == base.get("weights_hash"):
                base_state = packaged.state_dict()
        mode = adaptation
        if mode is None:  # the saved adapter, with its settings (older files: by name)
            saved = (base or {}).get("adaptation", {})
            mode = adapter_from_settings(saved) if "name" in saved else "none"
        engine = cls(model, config, device=device, adaptation=mode, base_state=base_state)
        engine.updates = int((base or {}).get("updates", 0))
        if base_state is not None:
            engine.base_hash = base["weights_hash"]
        return engine

    def save(self, path: str | Path) -> Path:
        """Write the current (adapted) weights: ``path.safetensors`` + ``path.json`` with the base
        weights' hash, the number of updates and the adaptation settings."""
        from napari_oaims.model import save_weights

        keep = {
            k: v for k, v in self.config.items() if k in ("version", "normalisation", "guidance", "window", "training")
        }
        keep["window"] = {**keep.get("window", {}), "first_size": self.first_window}  # with any override
        extra = {
            **keep,
            "adapted_from": {
                "weights_hash": self.base_hash,
                "updates": self.updates,
                "adaptation": self.adapter.settings(),
            },
        }
        with self.lock:
            return save_weights(self.model, path, extra)

    def session(
        self,
        image,
        plane_axes=(-2, -1),
        channel_axis: int | None = None,
        rgb: bool | None = None,
        channel: int | None = None,
    ) -> Session:
        """A new annotation session on ``image``.

        Parameters
        ----------
        image : array
            NumPy, Dask or Zarr; 2D, RGB, multichannel or nD (a prompt segments the 2D plane it
            lies in). NaN and inf pixels are allowed.
        plane_axes : tuple of int
            The two axes of a plane (default the last two).
        channel_axis : int or "none", optional
            The channel axis (channels are normalised and averaged). None: a last axis of 2-8
            entries far shorter than the others is taken as channels; ``"none"``: no channels.
        rgb : bool, optional
            Luminance of an RGB(A) image (default: a uint8 image whose last axis is 3 or 4).
        channel : int, optional
            Use this one channel only.

        Returns
        -------
        Session
            See :mod:`napari_oaims.core.source` for how the image is read.
        """
        session = Session(self, image, plane_axes=plane_axes, channel_axis=channel_axis, rgb=rgb, channel=channel)
        source = session.source
        if channel_axis is None and rgb is None and source.channel_axis is not None and not source.rgb:  # a guess
            shape = tuple(np.shape(image))
            warnings.warn(
                f"the image {shape} ({np.dtype(source.array.dtype).name}) is read as {shape[-1]} channels "
                "(its last axis, each normalised, then averaged); pass rgb=True to read it as RGB(A) or "
                "channel_axis='none' to read that axis as space",
                stacklevel=2,
            )
        return session

    def to(self, device="auto") -> "Engine":
        """Move the model, and what the adapter keeps, to another device (in place; returns self).

        Weights learnt so far, the update count and the base weights for :meth:`reset` are kept.
        Raises ValueError for a device that is not available (see ``resolve_device``)."""
        dev = resolve_device(device)
        with self.lock:
            if dev != self.device:
                self.model.to(dev)
                self.adapter.to(dev)
                self.device = dev
        return self

    # -- adaptation control ----------------------------------------------------------------------
    @property
    def first_window(self) -> int | str:
        """Window side (image pixels) for an object's first click or scribble, before it has a mask.

        Comes from the weights (``window.first_size``). Override it per engine with about four
        object diameters for objects much bigger or smaller than a nucleus, or with ``"auto"``:
        four diameters of the blob under each first click, measured from the image. ``None``
        goes back to the weights' value.
        """
        return self._first_window

    @first_window.setter
    def first_window(self, size: int | str | None) -> None:
        self._first_window = _config_first_window(self.config) if size is None else _check_first_window(size)

    @property
    def edges(self) -> str:
        """Whether answers follow the image's edges where the model is unsure
        (:mod:`napari_oaims.core.edges`): ``"auto"`` (the default) once the objects accepted in a
        session show that one of the candidates (growing, snapping) brings first answers closer to
        what the user accepted, ``"always"`` (growing), ``"snap"`` (first answers snap to the
        edges, for faint objects in similar tissue) or ``"never"``. A session logs the mode it
        started with."""
        return self._edges

    @edges.setter
    def edges(self, mode: str) -> None:
        self._edges = check_edges_mode(mode)

    @property
    def adaptation(self) -> str:
        return self.adapter.name

    @adaptation.setter
    def adaptation(self, name: str | Adapter) -> None:
        """Switch the adapter at run time (weights learnt so far are kept)."""
        with self.lock:
            self.adapter = make_adapter(name)

    @property
    def weights_hash(self) -> str:
        """Short hash of the current weights (cached until the weights change)."""
        if self._hash is None:
            with self.lock:
                self._hash = weights_hash(self.model)
        return self._hash

    def weights_changed(self) -> None:
        """Adapters call this after changing the weights."""
        self._hash = None

    def rolled_back(self, method: str, reason: str) -> None:
        """Adapters' guard calls this when it rolls back or refuses an update (shown to the user)."""
        self.rollbacks += 1
        self.last_rollback = f"{method}: {reason}"

    def base_state(self) -> dict[str, torch.Tensor]:
        """The pretrained weights that :meth:`reset` returns to (CPU tensors; do not modify)."""
        return self._base_state

    def reset(self) -> None:
        """Back to the pretrained weights (drops everything learnt online)."""
        with self.lock:
            self.model.load_state_dict(self._base_state)
            self.adapter.reset()
            self.updates = 0
            self.rollbacks = 0
            self.last_rollback = None
            self._hash = None

    def __repr__(self) -> str:
        return (
            f"Engine(device={self.device.type!r}, adaptation={self.adaptation!r}, "
            f"weights={self.weights_hash!r}, base={self.base_hash!r}, updates={self.updates})"
        )

    # -- inference -----------------------------------------------------------------------------
    @contextmanager
    def compute(self, pixels: int = ONE_THREAD_PIXELS) -> Iterator[None]:
        """The engine's lock, with torch's intra-op threads chosen for a pass over ``pixels`` input
        pixels (:func:`intra_op_threads`; default: an online update's few windows) on the CPU.
        The thread count is restored afterwards, so other torch users in the process keep theirs."""
        threads = intra_op_threads(pixels) if self.device.type == "cpu" else torch.get_num_threads()
        with self.lock, torch_threads(threads):
            yield

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Logits (B, S, S) for network inputs ``x`` (B, 4, S, S), without gradient
        (:func:`~napari_oaims.model.predict_logits`), on the torch threads that suit its size."""
        pixels = int(np.prod(np.shape(x))) // max(1, np.shape(x)[1])
        with self.compute(pixels):
            return predict_logits(self.model.eval(), x, self.device)
