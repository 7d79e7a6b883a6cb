"""Settings of a batch propagation (the keyword arguments of :func:`~napari_oaims.batch.propagate_many`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class BatchSettings:
    """How every job of a batch runs.

    Attributes
    ----------
    method
        Propagation method of :meth:`napari_oaims.Session.propagate`: ``"frozen"`` (default),
        ``"ema"``, ``"registration"`` or ``"copy"``.
    axis
        The axis (0, 1 or 2 of the 3D volume) objects are carried along; the two others are the
        plane axes of the sessions.
    weights
        A ``.safetensors`` file (with its ``.json``); None: the shipped weights.
    overwrite
        Redo jobs whose output is already complete (default: skip them).
    device
        Torch device of the workers (``"auto"``, ``"cpu"``, ``"cuda"``, ...).
    threads
        Torch threads per worker process.
    adaptation
        The engine's adapter while a job runs (``"none"``: every object is propagated with the
        same weights, whatever the order). Any other adapter learns from each object of a job in
        turn; the engine is reset to the loaded weights at the start of every job.
    copy_image
        Copy the image into the output (an OME-Zarr image group with its labels, as napari opens
        it). False: only ``labels/propagated`` is written (a valid NGFF image on its own).
    propagate
        Settings of :class:`napari_oaims.propagate.PropagateSettings` to override (a dict).
    progress
        Whether progress bars (jobs, slices) and failures are shown on the terminal (stderr).
    """

    method: str = "frozen"
    axis: int = 0
    weights: str | None = None
    overwrite: bool = False
    device: str = "auto"
    threads: int = 1
    adaptation: str = "none"
    copy_image: bool = True
    propagate: dict[str, Any] = field(default_factory=dict)
    progress: bool = True

    def __post_init__(self) -> None:
        from napari_oaims.propagate.settings import METHODS, PropagateSettings

        if self.method not in METHODS:
            raise ValueError(f"unknown propagation method {self.method!r}; use one of {', '.join(METHODS)}")
        if isinstance(self.axis, bool) or not isinstance(self.axis, int) or not 0 <= self.axis <= 2:
            raise ValueError(f"axis must be 0, 1 or 2 (an axis of the 3D volume), got {self.axis!r}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"threads must be a whole number >= 1, got {self.threads!r}")
        PropagateSettings.from_dict(self.propagate)  # unknown or invalid settings fail here

    @classmethod
    def of(cls, settings: dict[str, Any]) -> "BatchSettings":
        """Settings from keyword arguments; an unknown name is a TypeError naming the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise TypeError(f"propagate_many() got unknown settings {unknown}; known: {sorted(known)}")
        s = dict(settings)
        if s.get("weights") is not None:
            s["weights"] = str(s["weights"])
        s["propagate"] = dict(s.get("propagate") or {})
        return cls(**s)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
