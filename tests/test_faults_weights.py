"""Crafted weights files are refused quickly and cleanly: one ValueError each, before anything is built."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

#: Address space of the child that loads a huge config (GiB): far below what building it would take.
MEMORY_CAP_GIB = 3


def _crafted(tmp_path, name: str, **config_changes) -> Path:
    """A copy of the shipped weights whose JSON config has ``config_changes``."""
    from napari_oaims.engine import shipped_weights_path

    src = shipped_weights_path()
    st = tmp_path / f"{name}.safetensors"
    shutil.copy(src, st)
    config = json.loads(src.with_suffix(".json").read_text())
    config.update(config_changes)
    st.with_suffix(".json").write_text(json.dumps(config))
    return st


def test_a_huge_config_is_refused_before_building_under_a_memory_cap(tmp_path):
    """channels [4096] * 4 would ask for about 10 GB: the child has 3 GiB and must answer at once."""
    st = _crafted(tmp_path, "huge", channels=[4096] * 4)
    code = (
        "import resource, sys\n"
        f"cap = {MEMORY_CAP_GIB} * 2**30\n"
        "resource.setrlimit(resource.RLIMIT_AS, (cap, cap))\n"
        "from napari_oaims.engine import Engine\n"
        "try:\n"
        "    Engine.load(sys.argv[1], device='cpu')\n"
        "except ValueError as err:\n"
        "    print('refused:', err)\n"
        "    sys.exit(0)\n"
        "sys.exit(3)\n"
    )
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", code, str(st)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "refused:" in r.stdout and "channels must be a list of" in r.stdout


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"in_channels": -1}, "in_channels must be a whole number"),
        ({"in_channels": True}, "in_channels must be a whole number"),
        ({"channels": []}, "channels must be a list of"),
        ({"channels": "16,32"}, "channels must be a list of"),
        ({"channels": [16, 32, 64]}, "do not fit"),
        ({"channels": [6, 12, 24, 48]}, "make no valid network"),
        ({"channels": [1024] * 8}, "parameters"),
        ({"window": [64]}, "must be JSON objects"),
    ],
)
def test_each_crafted_config_gives_one_value_error(tmp_path, changes, message):
    from napari_oaims.engine import Engine

    st = _crafted(tmp_path, "bad", **changes)
    with pytest.raises(ValueError, match=message):
        Engine.load(st, device="cpu")


def test_a_deeply_nested_config_gives_a_value_error(tmp_path):
    from napari_oaims.model import load_weights

    st = _crafted(tmp_path, "deep")
    text = st.with_suffix(".json").read_text()
    st.with_suffix(".json").write_text(text[:-1] + ', "notes": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ValueError, match="nested too deeply"):
        load_weights(st)


def test_non_finite_weights_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    from napari_oaims.model import load_weights

    st = _crafted(tmp_path, "nan")
    tensors = load_file(str(st))
    tensors["head.bias"] = torch.full_like(tensors["head.bias"], float("nan"))
    save_file(tensors, str(st))
    with pytest.raises(ValueError, match=r"NaN or infinite values \(in \['head.bias'\]\)"):
        load_weights(st)


def test_integer_tensors_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    from napari_oaims.model import load_weights

    st = _crafted(tmp_path, "int")
    tensors = load_file(str(st))
    tensors["head.bias"] = tensors["head.bias"].to(torch.int32)
    save_file(tensors, str(st))
    with pytest.raises(ValueError, match="floating point"):
        load_weights(st)


def test_a_session_with_crafted_weights_is_refused_cleanly(tmp_path):
    import numpy as np

    from napari_oaims.store.session_store import SessionStore

    image = np.random.default_rng(0).integers(0, 255, (64, 64)).astype(np.uint8)
    store = SessionStore.create(tmp_path / "s.oaims.zarr", image)
    (tmp_path / "s.oaims.zarr" / "model").mkdir(exist_ok=True)
    _crafted(tmp_path / "s.oaims.zarr" / "model", "current", channels=[])  # as a received session could hold
    with pytest.raises(ValueError, match="its saved weights cannot be loaded.*channels must be a list"):
        store.resume()
    store.close()


def test_oaims_propagate_with_crafted_weights_prints_one_line_and_exits_2(tmp_path, capsys):
    from napari_oaims.cli.main import main

    st = _crafted(tmp_path, "bad", channels=[])
    manifest = tmp_path / "jobs.csv"
    manifest.write_text("image,seeds,name\nv.tif,s.tif,v\n")
    assert main(["propagate", "--manifest", str(manifest), "--out", str(tmp_path / "out"), "--weights", str(st)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("oaims propagate: error: weights config") and "channels" in err
