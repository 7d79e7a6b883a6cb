"""``oaims bench propagate`` and ``oaims bench batch`` through the command line's entry point, at tiny
sizes: the real shipped model, a real Zarr volume for the memory check, a real Dask LocalCluster
with worker processes for the batch benchmark."""

from __future__ import annotations

import json

import pytest
import tifffile

from napari_oaims.cli.main import main
from napari_oaims.training.volumes import VolumeSpec, make_volume


def test_bench_propagate_procedural(tmp_path, capsys):
    out = tmp_path / "res"
    code = main(
        ["bench", "propagate", "--methods", "copy,frozen", "--n-per-kind", "1", "--shape", "10,32,32"]
        + ["--cap", "3", "--target", "0.8", "--device", "cpu", "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| copy |" in printed and "| frozen |" in printed and "clicks_median" in printed
    result = json.loads((out / "propagate_procedural.json").read_text())
    assert (out / "propagate_procedural.png").stat().st_size > 1000
    assert result["settings"]["methods"] == ["copy", "frozen"] and result["settings"]["shape"] == [10, 32, 32]
    assert result["settings"]["target_dice"] == 0.8 and result["settings"]["cap"] == 3
    assert len(result["rows"]) == 10  # 5 kinds x 2 methods
    assert all(1 <= r["clicks_used"] <= 3 and r["clicks"] <= 3 for r in result["rows"])
    assert result["summary"]["frozen"]["ms_per_slice"] > 0


def test_bench_propagate_seed_draws_other_volumes(tmp_path, capsys):
    """``--seed`` draws new failure volumes (0: the published suite); it is saved with the result."""
    from napari_oaims.evaluation.propagate import load_cases

    same, other = (load_cases("failures", 1, (10, 32, 32), seed=s) for s in (0, 1))
    assert [c["name"] for c in same] == [c["name"] for c in other]
    assert not all(np_equal(a["image"], b["image"]) for a, b in zip(same, other))
    assert all(np_equal(a["image"], b["image"]) for a, b in zip(same, load_cases("failures", 1, (10, 32, 32))))
    out = tmp_path / "res"
    argv = ["bench", "propagate", "--data", "failures", "--methods", "copy", "--n-per-kind", "1"]
    argv += ["--shape", "10,32,32", "--cap", "2", "--seed", "3", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    result = json.loads((out / "propagate_failures.json").read_text())
    assert result["settings"]["seed"] == 3 and len(result["rows"]) == len(same)
    capsys.readouterr()
    assert main(["bench", "propagate", "--data", "stack", "--image", "a.tif", "--labels", "b.tif", "--seed", "2"]) == 2
    assert "--seed draws procedural volumes" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "propagate", "--data", "failures", "--seed", "-1"])
    assert "expected a whole number, at least 0, got '-1'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="seed must be a whole number, at least 0"):
        load_cases("failures", 1, (10, 32, 32), seed=-2)


def np_equal(a, b) -> bool:
    return a.shape == b.shape and bool((a == b).all())


def test_bench_propagate_stack_first_only_with_settings(tmp_path, capsys):
    image, labels = make_volume(VolumeSpec(kind="ellipsoid", shape=(10, 40, 40), seed=1, neighbours=2))
    tifffile.imwrite(tmp_path / "im.tif", image)
    tifffile.imwrite(tmp_path / "lb.tif", labels)
    code = main(
        ["bench", "propagate", "--data", "stack", "--image", str(tmp_path / "im.tif"), "--labels"]
        + [str(tmp_path / "lb.tif"), "--methods", "frozen", "--max-objects", "2", "--first-only", "--device", "cpu"]
        + ["--settings", '{"min_contrast": 0.5}']
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "| frozen | 2 |" in table or "| frozen | 1 |" in table


def test_bench_propagate_memory(tmp_path, capsys):
    code = main(
        ["bench", "propagate", "--memory", "128", "--method", "frozen", "--device", "cpu", "--out", str(tmp_path)]
    )
    assert code == 0
    assert "peak memory grew by" in capsys.readouterr().out
    result = json.loads((tmp_path / "propagate_memory_frozen_128.json").read_text())
    assert result["method"] == "frozen" and result["slices"] > 5 and result["growth_mib"] >= 0
    assert (tmp_path / "volume_128.zarr").is_dir()  # the lazily read Zarr volume


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "stack"], "--data stack needs --image and --labels"),
        (["--image", "x.tif"], "--image and --labels are for --data stack"),
        (["--settings", "{lr: 1}"], "--settings is not valid JSON"),
        (["--settings", "[1]"], "--settings must be a JSON object"),
        (["--settings", '{"nope": 1}'], "unknown propagation settings ['nope']"),
        (["--methods", "ema,magic"], "unknown benchmark methods ['magic']"),
        (["--memory", "64", "--method", "copy"], "side must be at least 128"),
    ],
)
def test_bench_propagate_bad_input(argv, message, capsys):
    assert main(["bench", "propagate", "--device", "cpu", *argv]) == 2
    assert message in capsys.readouterr().err


def test_bench_propagate_bad_shape():
    with pytest.raises(SystemExit):
        main(["bench", "propagate", "--shape", "10,32"])


@pytest.mark.slow
def test_bench_batch(tmp_path, capsys):
    import dask

    out = tmp_path / "batch.json"
    scheduler = dask.config.get("scheduler", None)
    code = main(
        ["bench", "batch", "--volumes", "2", "--shape", "6,48,48", "--workers", "1,2", "--method", "copy"]
        + ["--repeats", "2", "--large-gib", "0", "--folder", str(tmp_path / "work"), "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| workers | wall (s) |" in printed and "large volume" not in printed
    result = json.loads(out.read_text())
    rows = {r["workers"]: r for r in result["scaling"]}
    assert set(rows) == {1, 2} and rows[1]["speedup"] == 1.0 and rows[2]["speedup"] > 0
    assert rows[1]["jobs"] == rows[2]["jobs"] == 2 and rows[1]["slices"] == rows[2]["slices"] > 0
    assert rows[1]["dice_mean"] == rows[2]["dice_mean"] > 0.3  # fixed weights: the same result
    assert len(rows[1]["walls_s"]) == len(rows[2]["walls_s"]) == 2 and rows[1]["worker_cpu_s"] > 0
    assert 0 < rows[2]["balance"] <= 1 and rows[1]["balance"] == 1.0 and rows[1]["job_slowdown"] == 1.0
    assert result["memory"] is None and result["settings"]["method"] == "copy"
    assert (tmp_path / "work" / "data" / "jobs.csv").is_file()
    assert dask.config.get("scheduler", None) == scheduler  # the clusters leave dask's default scheduler alone


def test_bench_propagate_all_objects(tmp_path, capsys):
    out = tmp_path / "res"
    code = main(
        ["bench", "propagate", "--all-objects", "--data", "failures", "--methods", "frozen", "--n-per-kind", "1"]
        + ["--shape", "16,48,48", "--device", "cpu", "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| frozen | touching_0 | fullest" in printed and "mean_dice" in printed
    result = json.loads((out / "propagate_failures_objects.json").read_text())
    rows = result["rows"]
    assert {r["seeds"] for r in rows} == {"fullest", "end"} and {r["case"] for r in rows} >= {"touching_0"}
    assert all(0 <= r["dice"] <= 1 and r["taken"] >= 0 for r in rows)
    summary = result["summary"]["frozen"]
    assert summary["objects"] == len(rows) and summary["taken"] == sum(r["taken"] for r in rows)
    assert main(["bench", "propagate", "--all-objects", "--methods", "ema+suggest", "--device", "cpu"]) == 2
    assert "--all-objects takes propagation methods" in capsys.readouterr().err
