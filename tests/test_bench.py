"""The benchmark and demo commands, end to end on small real data (files written, tables printed)."""

import json

import numpy as np
import pytest
import tifffile

from napari_oaims.bench.shifts import SHIFTS, apply_shift
from napari_oaims.cli import main


@pytest.fixture
def crop_files(nuclei_crop, tmp_path):
    image, labels = nuclei_crop
    tifffile.imwrite(tmp_path / "img.tif", image)
    np.save(tmp_path / "lbl.npy", labels)
    return str(tmp_path / "img.tif"), str(tmp_path / "lbl.npy")


def test_bench_clicks_writes_table_json_plot(crop_files, tmp_path, capsys):
    img, lbl = crop_files
    rc = main(["bench", "clicks", "--image", img, "--labels", lbl, "--clicks", "2", "--max-targets", "2",
               "--device", "cpu", "--out", str(tmp_path / "r.json"), "--plot", str(tmp_path / "c.png")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "random_walker" in out and "watershed" in out and "dice@1" in out
    data = json.loads((tmp_path / "r.json").read_text())
    assert set(data["methods"]) == {"model", "random_walker", "watershed"}
    assert len(data["methods"]["model"]["curves"]) == 2 and len(data["methods"]["model"]["curves"][0]) == 2
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_bench_adapt_and_latency(crop_files, tmp_path, capsys):
    img, lbl = crop_files
    rc = main(["bench", "adapt", "--image", img, "--labels", lbl, "--shift", "invert", "--methods", "none,oaims",
               "--clicks", "2", "--max-targets", "2", "--device", "cpu", "--out", str(tmp_path / "a.json"),
               "--plot", str(tmp_path / "a.png")])
    assert rc == 0
    data = json.loads((tmp_path / "a.json").read_text())
    oaims = data["shifts"]["invert"]["main"]["methods"]["oaims"]
    assert oaims["summary"]["updates"] > 0 and (tmp_path / "a_position.png").exists()
    rc = main(["bench", "latency", "--image", img, "--labels", lbl, "--sizes", "160", "320", "--objects", "2",
               "--clicks", "2", "--device", "cpu", "--out", str(tmp_path / "l.json")])
    assert rc == 0
    lat = json.loads((tmp_path / "l.json").read_text())
    rows = lat["rows"]
    assert "cpu 320px MI click" in rows and rows["cpu 160px PI update"]["n"] == 2
    assert lat["host"]["cuda"] is None and lat["host"]["torch"]


def test_bench_adapt_jobs_gives_the_same_results(crop_files, tmp_path, capsys):
    """Cells evaluated in worker processes match the one-process run on a short sequence,
    worst-first order included (over long sequences adaptive curves can drift apart with the
    thread count, so the JSON records it)."""
    img, lbl = crop_files
    common = ["bench", "adapt", "--image", img, "--labels", lbl, "--shift", "invert", "--shift", "none",
              "--methods", "none,oaims", "--order", "worst-first", "--clicks", "2", "--max-targets", "3",
              "--device", "cpu"]
    assert main(common + ["--out", str(tmp_path / "one.json")]) == 0
    assert main(common + ["--jobs", "2", "--out", str(tmp_path / "two.json")]) == 0
    one, two = (json.loads((tmp_path / f).read_text()) for f in ("one.json", "two.json"))
    assert int(two["settings"]["torch_threads"]) >= 1
    one, two = one["shifts"], two["shifts"]
    for shift in ("invert", "none"):
        assert one[shift]["main"]["targets"] == two[shift]["main"]["targets"]
        for method in ("none", "oaims"):
            a, b = one[shift]["main"]["methods"][method], two[shift]["main"]["methods"][method]
            assert np.allclose(a["curves"], b["curves"], atol=1e-6) and len(a["curves"]) == 3
            assert a["summary"]["updates"] == b["summary"]["updates"]
    with pytest.raises(SystemExit, match="--jobs"):
        main(common + ["--jobs", "0"])
    capsys.readouterr()
    assert main(common + ["--methods", "oaims:mi_max_prompts=2.5"]) == 2
    err = capsys.readouterr().err
    assert "mi_max_prompts must be a whole number" in err
    assert "/oaims:mi_max_prompts" not in err  # stopped before any cell (and its progress bar) started


def test_shift_suite_is_deterministic(nuclei_crop):
    image, labels = nuclei_crop
    for name in SHIFTS:
        a, la = apply_shift(name, image, labels)
        b, lb = apply_shift(name, image, labels)
        assert np.array_equal(a, b) and np.array_equal(la, lb) and a.shape == la.shape
    assert apply_shift("down3", image, labels)[0].shape == (53, 53)  # round(160 / 3)
    with pytest.raises(ValueError):
        apply_shift("nope", image, labels)


def test_bad_inputs_to_bench(tmp_path, crop_files, capsys):
    img, _ = crop_files
    assert main(["bench", "clicks", "--image", str(tmp_path / "missing.tif"), "--labels", img]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "bad.tif").write_bytes(b"not a tiff")
    assert main(["bench", "clicks", "--image", str(tmp_path / "bad.tif"), "--labels", img]) == 2
    assert "cannot read" in capsys.readouterr().err
    np.save(tmp_path / "lbl3.npy", np.zeros((3, 3), np.int32))
    assert main(["bench", "clicks", "--image", img, "--labels", str(tmp_path / "lbl3.npy")]) == 2
    assert "matching" in capsys.readouterr().err


def test_demo_headless(tmp_path, capsys):
    rc = main(["demo", "--headless", "--out", str(tmp_path / "demo"), "--objects", "2", "--clicks", "2",
               "--device", "cpu"])
    assert rc == 0
    assert (tmp_path / "demo" / "demo_results.json").exists() and (tmp_path / "demo" / "demo_dice_vs_clicks.png").exists()
    from napari_oaims.store import SessionStore

    store = SessionStore.open(tmp_path / "demo" / "demo.oaims.zarr")
    assert len(store.objects()) >= 1 and any(e["kind"] == "accept" for e in store.events())


def test_bench_merge_joins_methods_run_apart(crop_files, tmp_path, capsys):
    img, lbl = crop_files
    common = ["bench", "adapt", "--image", img, "--labels", lbl, "--shift", "invert", "--clicks", "2",
              "--max-targets", "2", "--device", "cpu"]
    assert main([*common, "--methods", "none,pi", "--out", str(tmp_path / "a.json")]) == 0
    assert main([*common, "--methods", "none,mi", "--out", str(tmp_path / "b.json")]) == 0
    assert main([*common, "--methods", "mi", "--seed", "5", "--out", str(tmp_path / "c.json")]) == 0
    capsys.readouterr()
    rc = main(["bench", "merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(tmp_path / "m.json"),
               "--markdown", str(tmp_path / "m.md"), "--plot", str(tmp_path / "m.png")])
    assert rc == 0
    merged = json.loads((tmp_path / "m.json").read_text())
    assert list(merged["shifts"]["invert"]["main"]["methods"]) == ["none", "pi", "mi"]
    table = (tmp_path / "m.md").read_text()
    assert table.startswith("| shift | none | pi | mi |") and "| invert (2) |" in table
    assert (tmp_path / "m.png").exists() and (tmp_path / "m_position.png").exists()
    # Another seed is another protocol; anything but an adapt result is refused.
    assert main(["bench", "merge", str(tmp_path / "a.json"), str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err
    assert "another protocol" in err and "seed" in err
    assert main(["bench", "merge", str(tmp_path / "m.png")]) == 2
    assert "not a readable JSON" in capsys.readouterr().err


def test_breakdown_script_counts_never_reached_as_cap(tmp_path):
    """docs/results/breakdown.py (session 7 analysis): NoC histogram, thirds and the frozen comparison."""
    import subprocess
    import sys
    from pathlib import Path

    labels = np.zeros((8, 30), np.uint16)
    labels[2:5, 1:4], labels[2:5, 25:28] = 1, 2  # one target in the left third, one in the right
    tifffile.imwrite(tmp_path / "labels.tif", labels)

    def result(none, oaims):
        return {"shifts": {"invert": {"main": {"targets": [1, 2], "methods": {
            "none": {"curves": none}, "oaims": {"curves": oaims}}}}}}

    (tmp_path / "frozen.json").write_text(json.dumps(result([[0.5, 0.9], [0.5, 0.6]], [[0.5, 0.9], [0.5, 0.6]])))
    (tmp_path / "probe.json").write_text(json.dumps(result([[0.5, 0.9], [0.5, 0.6]], [[0.9, 0.9], [0.5, 0.86]])))
    script = Path(__file__).resolve().parents[1] / "docs" / "results" / "breakdown.py"
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "probe.json"), "--labels",
                          str(tmp_path / "labels.tif"), "--frozen", str(tmp_path / "frozen.json")],
                         capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert "NoC@0.85 11.00 never: 1 histogram: {2: 1, 20: 1}" in lines[0]  # none: 2 clicks, never
    assert "NoC@0.85 1.50 never: 0 histogram: {1: 1, 2: 1}" in lines[3]
    assert "NoC@0.85 11.00 -> 1.50 (-86.4" in lines[4] and "Dice@1 +20.0" in lines[4]
    assert "third 0: n=1 Dice@1 0.900 NoC 1.00" in lines[5] and "third 2: n=1 Dice@1 0.500 NoC 2.00" in lines[5]
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "probe.json"), "--frozen",
                          str(tmp_path / "frozen.json"), "--halves"], capture_output=True, text=True, check=True).stdout
    assert "1st half: n=1 Dice@1 0.900 NoC 1.00 (-50.0% vs frozen) | 2nd half: n=1 Dice@1 0.500 NoC 2.00 " \
        "(-90.0% vs frozen)" in out.splitlines()[5]
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "probe.json"), "--skip", "2"],
                         capture_output=True, text=True, check=True).stdout
    assert "NoC@0.85 2.00 never: 0 histogram: {2: 1}" in out.splitlines()[0]  # target 2 (never) left out
    bad = subprocess.run([sys.executable, str(script), str(tmp_path / "probe.json"), "--shift", "edges"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "no main run for shift 'edges'" in bad.stderr and "Traceback" not in bad.stderr
    bad = subprocess.run([sys.executable, str(script), str(tmp_path / "probe.json"), "--labels",
                          str(tmp_path / "frozen.json")], capture_output=True, text=True)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


def test_ceiling_script_learns_on_one_half_and_tests_on_the_other(crop_files, tmp_path):
    """docs/results/ceiling.py (session 9 analysis): PI passes over the first half, frozen copies on the second."""
    import subprocess
    import sys
    from pathlib import Path

    img, lbl = crop_files
    script = Path(__file__).resolve().parents[1] / "docs" / "results" / "ceiling.py"
    out = tmp_path / "c.json"
    run = subprocess.run([sys.executable, str(script), "--image", img, "--labels", lbl, "--shift", "none",
                          "--epochs", "2", "--clicks", "2", "--method", "pi:lr=1e-3", "--out", str(out)],
                         capture_output=True, text=True, check=True)
    rows = json.loads(out.read_text())["shifts"]["none"]
    n_test = rows["frozen"]["n_targets"]
    from napari_oaims.bench.common import target_ids

    n_all = len(target_ids(np.load(lbl)))
    assert n_test == n_all - n_all // 2 and rows["pi:lr=1e-3 x2 on 1st half"]["n_targets"] == n_test
    assert "pi:lr=1e-3 x1 on 1st half" in run.stdout
    # the learner's weights reach the frozen copies: the second half's curves move
    assert rows["pi:lr=1e-3 x2 on 1st half"]["auc"] != rows["frozen"]["auc"]
    bad = subprocess.run([sys.executable, str(script), "--image", img, "--labels", lbl, "--shift", "none",
                          "--epochs", "0"], capture_output=True, text=True)
    assert bad.returncode != 0 and "at least 1" in bad.stderr and "Traceback" not in bad.stderr


def test_bench_first_window_option(crop_files, tmp_path, capsys):
    """``--first-window`` reaches the engine: a window as large as the crop answers differently."""
    img, lbl = crop_files
    curves = {}
    for fw in (None, "160", "auto"):
        out = tmp_path / f"r{fw}.json"
        extra = ["--first-window", fw] if fw else []
        assert main(["bench", "clicks", "--image", img, "--labels", lbl, "--clicks", "1", "--max-targets", "4",
                     "--methods", "model", "--device", "cpu", "--out", str(out)] + extra) == 0
        data = json.loads(out.read_text())
        assert data["settings"]["first_window"] == str(fw)
        curves[fw] = data["methods"]["model"]["curves"]
    assert curves["160"] != curves[None]
    with pytest.raises(SystemExit):
        main(["bench", "clicks", "--image", img, "--labels", lbl, "--first-window", "3"])
    assert "whole number of pixels" in capsys.readouterr().err


def test_scale_script_rescales_and_sets_the_first_window(nuclei_crop, tmp_path):
    """docs/results/scale.py (session 13): first-click Dice per scale and first window."""
    import subprocess
    import sys
    from pathlib import Path

    image, labels = nuclei_crop
    tifffile.imwrite(tmp_path / "img.tif", image)
    tifffile.imwrite(tmp_path / "lbl.tif", labels)
    script = Path(__file__).resolve().parents[1] / "docs" / "results" / "scale.py"
    out = tmp_path / "s.json"
    subprocess.run([sys.executable, str(script), "--image", str(tmp_path / "img.tif"), "--labels", str(tmp_path / "lbl.tif"),
                    "--scales", "1", "2", "--first-window", "64", "4d", "auto", "--out", str(out)],
                   capture_output=True, text=True, check=True)
    rows = json.loads(out.read_text())["rows"]
    assert [r["scale"] for r in rows] == [1.0, 2.0]
    assert rows[1]["median_diameter_px"] > 1.7 * rows[0]["median_diameter_px"]
    for r in rows:
        assert r["dice@1"]["64"]["first_window"] == 64 and r["dice@1"]["auto"]["first_window"] == "auto"
        assert abs(r["dice@1"]["4d"]["first_window"] - 4 * r["median_diameter_px"]) <= 1  # diameter rounded in the JSON
        assert all(0 < v["mean"] <= 1 for v in r["dice@1"].values())
