"""The benchmark and demo commands, end to end on small real data (files written, tables printed)."""

import json

import numpy as np
import pytest
import tifffile

from napari_oaims.cli import main
from napari_oaims.evaluation.shifts import SHIFTS, apply_shift


@pytest.fixture
def crop_files(nuclei_crop, tmp_path):
    image, labels = nuclei_crop
    tifffile.imwrite(tmp_path / "img.tif", image)
    np.save(tmp_path / "lbl.npy", labels)
    return str(tmp_path / "img.tif"), str(tmp_path / "lbl.npy")


def test_bench_clicks_writes_table_json_plot(crop_files, tmp_path, capsys):
    img, lbl = crop_files
    rc = main(
        [
            "bench",
            "clicks",
            "--image",
            img,
            "--labels",
            lbl,
            "--clicks",
            "2",
            "--max-targets",
            "2",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "r.json"),
            "--plot",
            str(tmp_path / "c.png"),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "random_walker" in out and "watershed" in out and "dice@1" in out
    data = json.loads((tmp_path / "r.json").read_text())
    assert set(data["methods"]) == {"model", "random_walker", "watershed"}
    assert len(data["methods"]["model"]["curves"]) == 2 and len(data["methods"]["model"]["curves"][0]) == 2
    assert (tmp_path / "c.png").stat().st_size > 1000


@pytest.mark.slow
def test_bench_adapt_and_latency(crop_files, tmp_path, capsys):
    img, lbl = crop_files
    rc = main(
        [
            "bench",
            "adapt",
            "--image",
            img,
            "--labels",
            lbl,
            "--shift",
            "invert",
            "--methods",
            "none,oaims",
            "--clicks",
            "2",
            "--max-targets",
            "2",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "a.json"),
            "--plot",
            str(tmp_path / "a.png"),
        ]
    )
    assert rc == 0
    data = json.loads((tmp_path / "a.json").read_text())
    oaims = data["shifts"]["invert"]["main"]["methods"]["oaims"]
    assert oaims["summary"]["updates"] > 0 and (tmp_path / "a_position.png").exists()
    rc = main(
        [
            "bench",
            "latency",
            "--image",
            img,
            "--labels",
            lbl,
            "--sizes",
            "160",
            "320",
            "--objects",
            "2",
            "--clicks",
            "2",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "l.json"),
        ]
    )
    assert rc == 0
    lat = json.loads((tmp_path / "l.json").read_text())
    rows = lat["rows"]
    assert "cpu 320px MI click" in rows and rows["cpu 160px PI update"]["n"] == 2
    assert lat["host"]["cuda"] is None and lat["host"]["torch"]


@pytest.mark.slow
def test_bench_adapt_jobs_gives_the_same_results(crop_files, tmp_path, capsys):
    """Cells evaluated in worker processes match the one-process run on a short sequence,
    worst-first order included (over long sequences adaptive curves can drift apart with the
    thread count, so the JSON records it)."""
    img, lbl = crop_files
    common = [
        "bench",
        "adapt",
        "--image",
        img,
        "--labels",
        lbl,
        "--shift",
        "invert",
        "--shift",
        "none",
        "--methods",
        "none,oaims",
        "--order",
        "worst-first",
        "--clicks",
        "2",
        "--max-targets",
        "3",
        "--device",
        "cpu",
    ]
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
    assert "mi_max_prompts='2.5' must be a whole number" in err
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


@pytest.mark.slow
def test_demo_headless(tmp_path, capsys):
    """The headless demo saves one object row per accepted object and explains its table."""
    out_dir = tmp_path / "demo"
    rc = main(["demo", "--headless", "--out", str(out_dir), "--objects", "3", "--clicks", "2", "--device", "cpu"])
    assert rc == 0
    assert (out_dir / "demo_results.json").exists() and (out_dir / "demo_dice_vs_clicks.png").exists()
    from napari_oaims.store.session_store import SessionStore

    store = SessionStore.open(out_dir / "demo.oaims.zarr", read_only=True)
    accepted = [e["object"] for e in store.events() if e["kind"] == "accept"]
    assert len(accepted) >= 1
    rows = store.objects()
    assert len(rows) == len(accepted)  # accepting autosaves the object: no second row
    assert sorted(r["id"] for r in rows) == sorted(accepted)
    store.close()
    out = capsys.readouterr().out
    for line in (
        "good outline within 1 click",
        "good outline within 2 clicks",
        "never good within 2 clicks",
        "ms per click (median)",
        "median after one warm-up nucleus",
        "frozen model",
        "learning model",
    ):
        assert line in out
    results = json.loads((out_dir / "demo_results.json").read_text())
    learning = results["plain"]["learning model (OAIMS)"]
    assert learning["objects"] == 3 and learning["updates"] == results["rows"]["learning model (OAIMS)"]["updates"]
    assert learning["good_within"]["2"] + learning["never_good"] == 3
    assert len(results["curves"]["frozen model"]) == 3 and len(results["latency_ms"]["frozen model"]) == 3
    assert {"dice@1", "noc@0.85", "auc", "latency_p50_ms"} <= set(results["rows"]["frozen model"])


@pytest.mark.slow
def test_bench_merge_joins_methods_run_apart(crop_files, tmp_path, capsys):
    img, lbl = crop_files
    common = [
        "bench",
        "adapt",
        "--image",
        img,
        "--labels",
        lbl,
        "--shift",
        "invert",
        "--clicks",
        "2",
        "--max-targets",
        "2",
        "--device",
        "cpu",
    ]
    assert main([*common, "--methods", "none,pi", "--out", str(tmp_path / "a.json")]) == 0
    assert main([*common, "--methods", "none,mi", "--out", str(tmp_path / "b.json")]) == 0
    assert main([*common, "--methods", "mi", "--seed", "5", "--out", str(tmp_path / "c.json")]) == 0
    capsys.readouterr()
    rc = main(
        [
            "bench",
            "merge",
            str(tmp_path / "a.json"),
            str(tmp_path / "b.json"),
            "--out",
            str(tmp_path / "m.json"),
            "--markdown",
            str(tmp_path / "m.md"),
            "--plot",
            str(tmp_path / "m.png"),
        ]
    )
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


def test_bench_first_window_option(crop_files, tmp_path, capsys):
    """``--first-window`` reaches the engine: a window as large as the crop answers differently."""
    img, lbl = crop_files
    curves = {}
    for fw in (None, "160", "auto"):
        out = tmp_path / f"r{fw}.json"
        extra = ["--first-window", fw] if fw else []
        assert (
            main(
                [
                    "bench",
                    "clicks",
                    "--image",
                    img,
                    "--labels",
                    lbl,
                    "--clicks",
                    "1",
                    "--max-targets",
                    "4",
                    "--methods",
                    "model",
                    "--device",
                    "cpu",
                    "--out",
                    str(out),
                ]
                + extra
            )
            == 0
        )
        data = json.loads(out.read_text())
        assert data["settings"]["first_window"] == str(fw)
        curves[fw] = data["methods"]["model"]["curves"]
    assert curves["160"] != curves[None]
    with pytest.raises(SystemExit):
        main(["bench", "clicks", "--image", img, "--labels", lbl, "--first-window", "3"])
    assert "whole number of pixels" in capsys.readouterr().err


def test_bench_clicks_fresh_starts_every_target_in_a_new_session(crop_files, tmp_path, nuclei_crop):
    """``--fresh``: each target is a session's first object (no accepted objects before it)."""
    from napari_oaims import Engine
    from napari_oaims.evaluation.common import ModelMethod, run_targets, target_ids
    from napari_oaims.simulate.robot import Robot

    image, labels = nuclei_crop
    ids = target_ids(labels)[:3]
    engine = Engine.pretrained(device="cpu", adaptation="none")
    for fresh, accepts in ((True, 1), (False, 3)):
        method = ModelMethod(engine, image, fresh=fresh)
        run_targets(method, labels, ids, Robot(), 1)
        assert [e["kind"] for e in method.session.events].count("accept") == accepts
    img, lbl = crop_files
    out = tmp_path / "fresh.json"
    args = ["bench", "clicks", "--image", img, "--labels", lbl, "--clicks", "1", "--max-targets", "2"]
    assert main([*args, "--methods", "model", "--device", "cpu", "--fresh", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["settings"]["fresh"] == "True"


def test_benchmarks_are_plain_functions(crop_files, tmp_path):
    """The benchmarks take typed arguments and return their results; only ``cli`` parses arguments."""
    from pathlib import Path

    import napari_oaims.evaluation as evaluation
    from napari_oaims.evaluation.adapt import run_suite
    from napari_oaims.evaluation.clicks import compare_methods
    from napari_oaims.evaluation.common import Protocol

    img, lbl = crop_files
    seen = []
    res = compare_methods(
        img,
        lbl,
        ["watershed"],
        Protocol(clicks=2, max_targets=2),
        out=tmp_path / "w.json",
        progress=lambda *step: seen.append(step),
    )
    assert res["settings"]["bench"] == "clicks"
    assert res["targets"] == json.loads((tmp_path / "w.json").read_text())["targets"]
    assert len(res["methods"]["watershed"]["curves"]) == 2 and seen[-1] == (2, 2, "watershed")
    with pytest.raises(ValueError, match="unknown method"):
        compare_methods(img, lbl, ["magic"])
    with pytest.raises(ValueError, match="jobs"):
        run_suite(img, lbl, ["none"], jobs=0)
    with pytest.raises(ValueError, match="unknown adaptation"):
        run_suite(img, lbl, ["nope"])
    for module in Path(evaluation.__file__).parent.glob("*.py"):
        assert "argparse" not in module.read_text(), module.name
