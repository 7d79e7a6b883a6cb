"""What the command line says: files checked before a batch starts, progress in a log file,
errors that name the file at fault, a 3D image given to a 2D benchmark."""

from __future__ import annotations

import io

import numpy as np
import tifffile

from napari_oaims.cli import main


def test_a_missing_file_stops_the_batch_before_it_starts(tmp_path, capsys):
    np.save(tmp_path / "seeds.npy", np.zeros((4, 16, 16), np.uint16))
    (tmp_path / "jobs.csv").write_text("image,seeds,name\nmissing.tif,seeds.npy,a\n")
    out = tmp_path / "out"
    assert main(["propagate", "--manifest", str(tmp_path / "jobs.csv"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "missing.tif" in err[0] and "row 1" in err[0] and "nothing was run" in err[0]
    assert not out.exists()  # no output folder: the batch never started


def test_a_binary_manifest_is_named(tmp_path, capsys):
    manifest = tmp_path / "photo.csv"
    manifest.write_bytes(bytes(range(256)) * 4)
    assert main(["propagate", "--manifest", str(manifest), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(manifest) in err[0] and "CSV text" in err[0]


def test_progress_off_a_terminal_is_plain_lines(monkeypatch):
    from napari_oaims.core.progress import TqdmProgress

    log = io.StringIO()  # a file or a pipe: not a terminal
    monkeypatch.setattr("sys.stderr", log)
    with TqdmProgress(unit="object") as bars:
        for i in range(1, 41):
            bars(i, 40, "frozen model")
        for i in range(1, 41):
            bars(i, 40, "learning model")
    text = log.getvalue()
    assert "\x1b" not in text and "\r" not in text
    lines = text.splitlines()
    assert lines == [f"{m}: {n}/40 objects" for m in ("frozen model", "learning model") for n in (10, 20, 30, 40)]


def test_batch_progress_off_a_terminal_is_one_line_per_job(monkeypatch):
    from napari_oaims.batch.run import _Bars

    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    bars = _Bars(3, show=True)
    bars.event((0.0, {"name": "a", "slices_done": 4}))
    bars.advance(1, {"name": "a", "status": "done"})
    bars.failed({"name": "b", "error": "no such file"})
    bars.advance(1, {"name": "b", "status": "failed"})
    bars.advance(1, {"name": "c", "status": "done"})
    bars.close()
    text = log.getvalue()
    assert "\x1b" not in text and "\r" not in text
    assert text.splitlines() == [
        "jobs: 1/3 (last: a done)",
        "b: failed: no such file",
        "jobs: 2/3 (last: b failed)",
        "jobs: 3/3 (last: c done)",
    ]


def test_bench_clicks_with_a_3d_image_says_the_image_is_3d(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "vol.tif", np.zeros((5, 32, 32), np.uint16))
    tifffile.imwrite(tmp_path / "lab.tif", np.zeros((32, 32), np.uint16))
    argv = ["bench", "clicks", "--image", str(tmp_path / "vol.tif"), "--labels", str(tmp_path / "lab.tif")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "is 3D (5, 32, 32)" in err and "labels are 2D" in err
