"""The model on a device: device choice (``auto`` = CUDA, then MPS, then CPU; ``OAIMS_DEVICE``
overrides ``auto``), the one forward pass every caller uses (:func:`predict_logits`), and the
torch intra-op threads a pass of a given size runs on (:func:`intra_op_threads`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

DEVICE_ENV = "OAIMS_DEVICE"

#: Network input pixels (128 x 128 windows) up to which a forward or backward pass runs on one
#: intra-op thread: splitting a few small convolutions over threads costs more than it saves,
#: and far more when other processes keep the cores busy. Larger work keeps torch's threads.
ONE_THREAD_PIXELS = 4 * 128 * 128


def intra_op_threads(pixels: int) -> int:
    """torch intra-op threads for a pass over ``pixels`` input pixels (per channel): 1 for the
    few windows of a click or an online update, torch's own setting for larger work."""
    return 1 if pixels <= ONE_THREAD_PIXELS else torch.get_num_threads()


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads and restore the previous number after it."""
    before = torch.get_num_threads()
    if n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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


def flush_denormals(device: torch.device) -> None:
    """On CPU, flush denormal floats to zero in the calling thread: they make convolutions 3-5x
    slower. The flag lives in each thread's FPU state, so every model call sets it (GUI workers
    are threads the model was not made in)."""
    if device.type == "cpu":
        torch.set_flush_denormal(True)


def as_tensor(a: np.ndarray, device: torch.device) -> torch.Tensor:
    """A float32 tensor of ``a`` on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(device)


def predict_logits(model: torch.nn.Module, x: np.ndarray, device: torch.device) -> np.ndarray:
    """Logits (B, S, S) of ``model`` for network inputs ``x`` (B, 4, S, S): no gradient, float16
    autocast on GPU (:func:`autocast`), denormals flushed on CPU. The caller holds any lock and
    puts the model in eval mode."""
    flush_denormals(device)
    with torch.inference_mode(), autocast(device):
        return model(as_tensor(x, device))[:, 0].float().cpu().numpy()
