"""``oaims bench napari``: its stack and clicks, and a short run in a real viewer (under Xvfb)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("napari")

from napari_oaims.cli import main  # noqa: E402
from napari_oaims.data import sample_nuclei  # noqa: E402
from napari_oaims.evaluation.gui import STACK_SIDE, stack_from, targets  # noqa: E402


def test_stack_planes_are_shifted_crops_and_clicks_hit_whole_objects():
    image, labels = sample_nuclei()
    stack, truth = stack_from(image, labels, 20)
    assert stack.shape == truth.shape == (20, STACK_SIDE, STACK_SIDE)
    assert np.array_equal(stack[0], image[:STACK_SIDE, :STACK_SIDE]) and not np.array_equal(stack[1], stack[0])
    picks = targets(truth, 12)
    assert len({t.plane for t in picks}) > 6  # spread over the planes
    for t in picks:
        z, y, x = t.coords
        assert t.plane == z and truth[z, y, x] > 0
    flat = targets(labels, 5)
    assert all(t.plane is None and labels[t.coords] > 0 for t in flat)


@pytest.mark.slow
@pytest.mark.gui
def test_bench_napari_compares_the_widget_with_the_api(tmp_path, capsys):
    out = tmp_path / "napari.json"
    argv = ["bench", "napari", "--clicks", "3", "--warmup", "1", "--stack", "4", "--device", "cpu", "--hidden"]
    assert main([*argv, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "4 x 256 x 256 stack" in text and "API Session.click" in text and "napari / API p50:" in text
    result = json.loads(out.read_text())
    assert len(result["api_ms"]) == len(result["click_to_preview_ms"]) == 3
    assert result["ratio_p50"] == pytest.approx(
        result["summary"]["napari click->preview"]["p50_ms"] / result["summary"]["API Session.click"]["p50_ms"]
    )


@pytest.mark.slow
@pytest.mark.gui
def test_bench_napari_propagate_measures_the_stall_and_the_speed(tmp_path, capsys):
    out = tmp_path / "propagate.json"
    argv = ["bench", "napari", "--propagate", "--stack", "8", "--side", "48", "--method", "frozen"]
    argv += ["--repeats", "1", "--device", "cpu", "--hidden", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "propagation (frozen) through a 8 x 48 x 48 stack" in text and "main-thread stall" in text
    result = json.loads(out.read_text())
    assert result["slices"] > 0 and len(result["api_s"]) == len(result["widget_s"]) == 1
    assert result["speed_ratio"] == pytest.approx(result["api_s"][0] / result["widget_s"][0], rel=0.01)
    stall = result["stall"]
    assert stall["max_gap_ms"] >= stall["p99_gap_ms"] >= stall["median_gap_ms"] >= 5  # a 10 ms timer's gaps
    assert main(["bench", "napari", "--propagate", "--method", "teleport", "--device", "cpu", "--hidden"]) == 2
    assert "unknown propagation method 'teleport'" in capsys.readouterr().out


def test_propagate_all_volume_has_touching_objects_and_a_full_seeds_slice():
    from napari_oaims.evaluation.gui_propagate import object_dice, seeds_slice, touching_volume
    from napari_oaims.plugin.sample_data import volume_3d

    image, labels = touching_volume(32, 96, 6)
    (sample, _, _), (truth, _, _) = volume_3d()
    assert np.array_equal(image, sample) and np.array_equal(labels, truth)  # the plugin's 3D sample
    z = seeds_slice(labels)
    counts = [len(np.unique(p[p > 0])) for p in labels]
    assert counts[z] == max(counts) >= 3
    touching = np.any((labels[:, :, 1:] != labels[:, :, :-1]) & (labels[:, :, 1:] > 0) & (labels[:, :, :-1] > 0))
    assert touching
    # the truth's own objects, propagated from nothing, score 1; a seed is not a propagated object
    seeds = np.where(labels == 1, 1, 0)
    result = np.where(labels > 1, labels + 10, seeds)
    scores = object_dice(result, seeds, labels, z)
    assert len(scores) == len(set(np.unique(labels[z])) - {0, 1}) and all(s == 1.0 for s in scores)
    # an object on background only on the seeds slice scores 0; one half in a true object, by that object
    stray = np.where(labels == 0, 50, seeds)
    assert object_dice(stray, seeds, labels, z) == [0.0]
    half = np.where(labels == 2, 60, seeds)
    half[z][(labels[z] == 0) & (np.arange(labels.shape[2]) < 5)] = 60
    assert object_dice(half, seeds, labels, z) == [
        pytest.approx(2 * (labels == 2).sum() / ((half == 60).sum() + (labels == 2).sum()))
    ]


@pytest.mark.slow
@pytest.mark.gui
def test_bench_napari_propagate_all_measures_the_stall_and_the_speed(tmp_path, capsys):
    out = tmp_path / "propagate_all.json"
    argv = ["bench", "napari", "--propagate-all", "--stack", "8", "--side", "48", "--objects", "3"]
    argv += ["--method", "frozen", "--repeats", "1", "--device", "cpu", "--hidden", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "Propagate all (frozen)" in text and "8 x 48 x 48 stack of 3 touching objects" in text
    assert "API Session.propagate_objects" in text and "main-thread stall" in text
    result = json.loads(out.read_text())
    assert result["accepted"] >= 2 and len(result["api_s"]) == len(result["widget_s"]) == 1
    rows = result["summary"]
    assert rows["napari Propagate all"]["objects"] == rows["API Session.propagate_objects"]["objects"] >= 2
    assert result["speed_ratio"] == pytest.approx(result["api_s"][0] / result["widget_s"][0], rel=0.01)
    stall = result["stall"]
    assert stall["max_gap_ms"] >= stall["p99_gap_ms"] >= stall["median_gap_ms"] >= 5  # a 10 ms timer's gaps
    assert all(0 <= d <= 1 for d in result["dice"]) and result["dice"]
    assert main(["bench", "napari", "--propagate-all", "--objects", "1", "--device", "cpu", "--hidden"]) == 2
    assert "--objects must be at least 2" in capsys.readouterr().out
    assert main(["bench", "napari", "--propagate", "--propagate-all", "--device", "cpu", "--hidden"]) == 2
    assert "choose one of --propagate and --propagate-all" in capsys.readouterr().out
