"""Device choice: ``auto`` = CUDA, then MPS, then CPU; ``OAIMS_DEVICE`` overrides ``auto``."""

from __future__ import annotations

import os

import torch

DEVICE_ENV = "OAIMS_DEVICE"


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"``/``None``/a name into a usable :class:`torch.device`.

    ``auto`` honours the ``OAIMS_DEVICE`` environment variable first. Asking for a device that
    is not available raises ``ValueError`` instead of failing later inside torch.
    """
    if device is None or str(device) == "auto":
        device = os.environ.get(DEVICE_ENV, "auto") or "auto"
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'mps'") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but CUDA is not available on this machine")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was requested but MPS is not available on this machine")
    return dev


def autocast(device: torch.device):
    """Mixed precision on GPU (float16 on CUDA/MPS), a no-op context on CPU."""
    if device.type in ("cuda", "mps"):
        return torch.autocast(device_type=device.type, dtype=torch.float16)
    return torch.autocast(device_type="cpu", enabled=False)
