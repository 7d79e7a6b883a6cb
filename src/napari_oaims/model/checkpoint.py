"""Weights on disk: ``NAME.safetensors`` (tensors) + ``NAME.json`` (config). Never executes code."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from napari_oaims.model.unet import ClickUNet

FORMAT = "napari-oaims-weights"
FORMAT_VERSION = 1
ARCHITECTURE = "ClickUNet"


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
    try:
        config = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"weights config {json_path} is not valid JSON: {err}") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{json_path} is not a napari-oaims weights config (missing 'format': '{FORMAT}')")
    if config.get("architecture") != ARCHITECTURE:
        raise ValueError(
            f"{json_path} describes architecture {config.get('architecture')!r}; this version loads {ARCHITECTURE!r}"
        )
    return config


def load_weights(path: str | Path) -> tuple[ClickUNet, dict[str, Any]]:
    """Build the model described by the config and load its tensors (CPU, eval mode)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    st_path, _ = _paths(path)
    config = read_config(path)
    if not st_path.is_file():
        raise FileNotFoundError(f"weights file not found: {st_path}")
    try:
        tensors = load_file(str(st_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"weights file {st_path} is corrupted or truncated: {err}") from err
    try:
        model = ClickUNet(int(config["in_channels"]), tuple(int(c) for c in config["channels"]))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"weights config for {st_path} lacks a valid 'in_channels'/'channels': {err}") from err
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [k for k in expected if k in tensors and tuple(tensors[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        raise ValueError(
            f"weights in {st_path} do not fit the {ARCHITECTURE}{tuple(model.channels)} architecture "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]})"
        )
    model.load_state_dict(tensors)
    model.eval()
    return model, config
