"""Weights on disk: ``NAME.safetensors`` (tensors) + ``NAME.json`` (config). Never executes code.

A weights file may come from anyone (every saved session holds one), so :func:`load_weights`
checks it before building anything: the config's architecture within bounds
(:data:`MAX_IN_CHANNELS`, :data:`MAX_LEVELS`, :data:`MAX_CHANNELS`, :data:`MAX_PARAMETERS`), the
tensor names, shapes and dtypes in the safetensors header against that architecture (its shapes
come from a network built on PyTorch's ``meta`` device, which allocates nothing), and then every
value finite. Each failure is one ``ValueError`` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch

from napari_oaims.model.unet import ClickUNet

FORMAT = "napari-oaims-weights"
FORMAT_VERSION = 1
ARCHITECTURE = "ClickUNet"
#: Bounds of a config that is loaded: input channels, U-Net levels, channels per level, parameters.
MAX_IN_CHANNELS = 16
MAX_LEVELS = 8
MAX_CHANNELS = 1024
MAX_PARAMETERS = 50_000_000
#: A weights config larger than this (bytes) is refused unread.
MAX_CONFIG_BYTES = 2**20
_FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
#: Config entries that must be JSON objects when present.
_OBJECT_ENTRIES = ("window", "adapted_from", "normalisation", "guidance", "training")


def weights_hash(model: torch.nn.Module) -> str:
    """Short sha256 of the parameters (names, shapes and values): identifies a weights version."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        t = tensor.detach().to("cpu", torch.float32).contiguous()
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def _paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    base = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    return base.with_suffix(".safetensors"), base.with_suffix(".json")


def save_weights(model: ClickUNet, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``path.safetensors`` + ``path.json``; returns the safetensors path."""
    from safetensors.torch import save_file

    st_path, json_path = _paths(path)
    st_path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": ARCHITECTURE,
        "in_channels": model.in_channels,
        "channels": list(model.channels),
        "weights_hash": weights_hash(model),
        **(extra or {}),
    }
    tmp_st, tmp_json = st_path.with_name(st_path.name + ".tmp"), json_path.with_name(json_path.name + ".tmp")
    save_file(tensors, str(tmp_st))
    tmp_json.write_text(json.dumps(config, indent=2, default=str))
    tmp_st.replace(st_path)
    tmp_json.replace(json_path)
    return st_path


def read_config(path: str | Path) -> dict[str, Any]:
    """Read and check the JSON config beside a weights file."""
    _, json_path = _paths(path)
    if not json_path.is_file():
        raise FileNotFoundError(f"weights config not found: {json_path}")
    if json_path.stat().st_size > MAX_CONFIG_BYTES:
        raise ValueError(f"weights config {json_path} is larger than {MAX_CONFIG_BYTES} bytes: not a weights config")
    try:
        config = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"weights config {json_path} is not valid JSON: {err}") from err
    except RecursionError:
        raise ValueError(f"weights config {json_path} is nested too deeply to be a weights config") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{json_path} is not a napari-oaims weights config (missing 'format': '{FORMAT}')")
    if config.get("architecture") != ARCHITECTURE:
        raise ValueError(
            f"{json_path} describes architecture {config.get('architecture')!r}; this version loads {ARCHITECTURE!r}"
        )
    wrong = [k for k in _OBJECT_ENTRIES if k in config and not isinstance(config[k], dict)]
    if wrong:
        raise ValueError(f"weights config {json_path}: {wrong} must be JSON objects")
    return config


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def architecture(config: dict[str, Any], where: Path) -> tuple[int, tuple[int, ...]]:
    """``(in_channels, channels)`` of a weights config, checked against the bounds."""
    in_channels, channels = config.get("in_channels"), config.get("channels")
    if not _whole(in_channels, 1, MAX_IN_CHANNELS):
        raise ValueError(
            f"weights config {where}: in_channels must be a whole number 1-{MAX_IN_CHANNELS}, got {in_channels!r}"
        )
    if (
        not isinstance(channels, list)
        or not 1 <= len(channels) <= MAX_LEVELS
        or not all(_whole(c, 1, MAX_CHANNELS) for c in channels)
    ):
        raise ValueError(
            f"weights config {where}: channels must be a list of 1-{MAX_LEVELS} whole numbers 1-{MAX_CHANNELS} "
            f"(one per U-Net level), got {str(channels)[:80]}"
        )
    return in_channels, tuple(channels)


def _expected_shapes(in_channels: int, channels: tuple[int, ...], where: Path) -> dict[str, tuple[int, ...]]:
    """Tensor shapes of the network the config describes (built on the meta device: no memory)."""
    try:
        with torch.device("meta"):
            skeleton = ClickUNet(in_channels, channels)
    except (ValueError, RuntimeError) as err:
        raise ValueError(f"weights config {where}: channels {list(channels)} make no valid network ({err})") from None
    shapes = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    count = sum(math.prod(s) for s in shapes.values())
    if count > MAX_PARAMETERS:
        raise ValueError(
            f"weights config {where}: channels {list(channels)} need {count} parameters (at most {MAX_PARAMETERS})"
        )
    return shapes


def _header(st_path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Dtype and shape of every tensor in a safetensors file, from its header (no data read)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(st_path), framework="pt") as f:
            names = f.keys()  # a safe_open handle is not iterable
            return {k: (f.get_slice(k).get_dtype(), tuple(f.get_slice(k).get_shape())) for k in names}
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"weights file {st_path} is corrupted or truncated: {err}") from err


def load_weights(path: str | Path) -> tuple[ClickUNet, dict[str, Any]]:
    """Check the weights (module docstring), then build the model the config describes and load
    its tensors (CPU, eval mode)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    st_path, json_path = _paths(path)
    config = read_config(path)
    if not st_path.is_file():
        raise FileNotFoundError(f"weights file not found: {st_path}")
    in_channels, channels = architecture(config, json_path)
    expected = _expected_shapes(in_channels, channels, json_path)
    header = _header(st_path)
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    wrong = [k for k in expected if k in header and header[k][1] != expected[k]]
    if missing or unexpected or wrong:
        raise ValueError(
            f"weights in {st_path} do not fit the {ARCHITECTURE}{channels} architecture of its config "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]})"
        )
    odd = sorted({dtype for dtype, _ in header.values()} - set(_FLOAT_DTYPES))
    if odd:
        raise ValueError(f"weights in {st_path} have dtype(s) {odd}; weights are floating point ({_FLOAT_DTYPES})")
    try:
        tensors = load_file(str(st_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"weights file {st_path} is corrupted or truncated: {err}") from err
    bad = [k for k, t in tensors.items() if not bool(torch.isfinite(t).all())]
    if bad:
        raise ValueError(f"weights in {st_path} hold NaN or infinite values (in {bad[:3]}): they cannot predict")
    model = ClickUNet(in_channels, channels)
    model.load_state_dict(tensors)
    model.eval()
    return model, config
