import json

import pytest
import torch

from napari_oaims.engine import Engine, shipped_weights_path
from napari_oaims.model import ClickUNet, load_weights, read_config, resolve_device, save_weights, weights_hash


def test_shipped_weights_load_offline_and_are_small():
    path = shipped_weights_path()
    assert path.is_file() and path.stat().st_size < 20 * 2**20
    model, config = load_weights(path)
    assert config["architecture"] == "ClickUNet" and config["in_channels"] == 4
    assert "training" in config
    assert weights_hash(model) == config["weights_hash"]


def test_round_trip(tmp_path):
    m = ClickUNet(channels=(8, 16))
    save_weights(m, tmp_path / "w", {"note": "x"})
    m2, cfg = load_weights(tmp_path / "w.safetensors")
    assert weights_hash(m2) == weights_hash(m) and cfg["note"] == "x"


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_weights(tmp_path / "nothing.safetensors")


def test_truncated_file(tmp_path):
    save_weights(ClickUNet(channels=(8, 16)), tmp_path / "w")
    data = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "w.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupted or truncated"):
        load_weights(tmp_path / "w.safetensors")


def test_wrong_architecture(tmp_path):
    save_weights(ClickUNet(channels=(8, 16)), tmp_path / "w")
    cfg = json.loads((tmp_path / "w.json").read_text())
    cfg["channels"] = [16, 32, 64, 128]
    (tmp_path / "w.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="do not fit"):
        load_weights(tmp_path / "w.safetensors")
    cfg["architecture"] = "SomethingElse"
    (tmp_path / "w.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="architecture"):
        read_config(tmp_path / "w.json")


def test_garbage_config(tmp_path):
    save_weights(ClickUNet(channels=(8, 16)), tmp_path / "w")
    (tmp_path / "w.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_weights(tmp_path / "w")


def test_device_choice(monkeypatch):
    assert resolve_device("cpu").type == "cpu"
    monkeypatch.setenv("OAIMS_DEVICE", "cpu")
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(ValueError):
        resolve_device("not-a-device")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
        monkeypatch.setenv("OAIMS_DEVICE", "cuda")
        with pytest.raises(ValueError):
            Engine.pretrained()
