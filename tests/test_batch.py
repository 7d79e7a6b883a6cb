"""Batch propagation on Dask: a real LocalCluster with worker processes, tiny volumes.

Outputs are read back with ``ome_zarr``'s reader; a broken job among good ones; a rerun that skips
finished jobs (and redoes one a killed run left half-written); bad manifests rejected before any
work; a worker killed mid-job; the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_oaims.batch import LABELS, REPORT, propagate_many, read_manifest
from napari_oaims.training.synth import volume

SHAPE = (6, 48, 48)


def _seeds(labels: np.ndarray) -> np.ndarray:
    """Each object annotated on its largest slice only."""
    seeds = np.zeros_like(labels, dtype=np.uint16)
    for i in np.unique(labels)[1:]:
        t = labels == i
        z = int(np.argmax(t.sum((1, 2))))
        seeds[z][t[z]] = i
    return seeds


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three volumes: TIFF + NumPy seeds, NumPy + TIFF seeds, OME-Zarr + a .oaims.zarr session."""
    import zarr
    from ome_zarr.writer import write_image

    from napari_oaims.store import SessionStore

    d = tmp_path_factory.mktemp("batch-data")
    truth = {}
    for i in range(3):
        img, lab = volume(np.random.default_rng(10 + i), shape=SHAPE, n_objects=3)
        truth[f"v{i}"] = lab
        seeds = _seeds(lab)
        if i == 0:
            tifffile.imwrite(d / "v0.tif", img)
            np.save(d / "v0_seeds.npy", seeds)
        elif i == 1:
            np.save(d / "v1.npy", img)
            tifffile.imwrite(d / "v1_seeds.tif", seeds)
        else:
            write_image(img, zarr.open_group(str(d / "v2.ome.zarr"), mode="w"), scale_factors=[], axes="zyx")
            with SessionStore.create(d / "v2_seeds.oaims.zarr", img, plane_axes=(1, 2)) as store:
                store.write_labels(seeds.astype(np.uint32))
    np.save(d / "wrong_shape.npy", np.zeros((6, 40, 48), np.uint16))
    np.save(d / "empty_seeds.npy", np.zeros(SHAPE, np.uint16))
    (d / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    good = [
        "image,seeds,name",
        "v0.tif,v0_seeds.npy,v0",
        "v1.npy,v1_seeds.tif,v1",
        "v2.ome.zarr,v2_seeds.oaims.zarr,v2",
    ]
    broken = [
        "missing.tif,v0_seeds.npy,missing",
        "v0.tif,wrong_shape.npy,mismatch",
        "v0.tif,empty_seeds.npy,noseeds",
        "corrupt.npy,v0_seeds.npy,corrupt",
    ]
    (d / "good.csv").write_text("\n".join(good) + "\n")
    (d / "jobs.csv").write_text("\n".join(good[:3] + broken[:2] + good[3:] + broken[2:]) + "\n")
    return d, truth


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as c,
    ):
        yield c


def read_labels(path: Path) -> np.ndarray:
    """The propagated labels of an output folder, as ome-zarr's reader (and napari) finds them."""
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader

    nodes = list(Reader(parse_url(str(path)))())
    assert nodes[0].metadata["name"] == path.name.removesuffix(".ome.zarr")  # the image group
    labels = [n for n in nodes if n.load(Label)]
    assert len(labels) == 1 and labels[0].metadata["name"] == LABELS
    assert "labels/propagated" in str(
        labels[0].zarr.path_or_url if hasattr(labels[0].zarr, "path_or_url") else labels[0].zarr
    )
    return np.asarray(labels[0].data[0])


def dice(a, b) -> float:
    return 2 * float((a & b).sum()) / max(1, int(a.sum() + b.sum()))


def by_name(report) -> dict:
    return {j["name"]: j for j in report["jobs"]}


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


# -- manifests: rejected before any work ----------------------------------------------------------
@pytest.mark.parametrize(
    "rows, message",
    [
        (["image,name", "a.tif,a"], "lacks the column(s) ['seeds']"),
        (["image,seeds,name", "a.png,s.npy,a"], "unknown image file type 'a.png'"),
        (["image,seeds,name", "a.tif,s.csv,a"], "unknown seeds file type 's.csv'"),
        (["image,seeds,name", "a.tif,s.npy,x", "b.tif,s.npy,x"], "duplicate name 'x' (also row 1)"),
        (["image,seeds,name", "a.tif,s.npy,../x"], "not a plain file name"),
        (["image,seeds,name"], "holds no jobs"),
    ],
)
def test_bad_manifest_is_rejected_before_any_work(tmp_path, rows, message):
    csv = tmp_path / "jobs.csv"
    csv.write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError) as err:
        propagate_many(csv, tmp_path / "out", workers=1, progress=False)
    assert message in str(err.value)
    assert not (tmp_path / "out").exists()


def test_bad_settings_and_manifest_paths(tmp_path):
    with pytest.raises(TypeError, match="unknown settings"):
        propagate_many([], tmp_path / "out", methd="copy")
    with pytest.raises(ValueError, match="unknown propagation method"):
        propagate_many([], tmp_path / "out", method="magic")
    with pytest.raises(ValueError, match="either workers"):
        propagate_many(
            [{"image": "a.tif", "seeds": "b.npy", "name": "a"}], tmp_path / "out", client="tcp://x:1", workers=2
        )
    with pytest.raises(FileNotFoundError):
        propagate_many(tmp_path / "nope.csv", tmp_path / "out")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "jobs.csv").write_text("name,seeds,image,extra\nj,s.oaims.zarr,img.ome.zarr/,1\n")
    [job] = read_manifest(tmp_path / "sub" / "jobs.csv")
    assert job.image == str(tmp_path / "sub" / "img.ome.zarr") and job.seeds.endswith("s.oaims.zarr")
    assert not (tmp_path / "out").exists()


# -- the runs ------------------------------------------------------------------------------------
def test_good_and_broken_jobs_then_rerun(data, client, tmp_path):
    d, truth = data
    out = tmp_path / "out"
    report = propagate_many(d / "jobs.csv", out, client=client, method="copy", progress=False)
    jobs = by_name(report)
    assert report["summary"] == {"jobs": 7, "done": 3, "skipped": 0, "failed": 4, "pending": 0}
    assert json.loads((out / REPORT).read_text())["summary"] == report["summary"]
    assert "no such file" in jobs["missing"]["error"]
    assert "shape mismatch" in jobs["mismatch"]["error"]
    assert jobs["noseeds"]["error"].startswith("no seeds")
    assert "cannot read" in jobs["corrupt"]["error"]
    for name in ("v0", "v1", "v2"):
        job = jobs[name]
        assert job["status"] == "done" and job["objects"] == 3 and job["error"] is None and job["time_s"] > 0
        labels = read_labels(out / f"{name}.ome.zarr")
        seeds = _seeds(truth[name])
        assert labels.shape == SHAPE
        assert np.array_equal(labels[seeds > 0], seeds[seeds > 0])  # the seeds, exactly
        for i in range(1, 4):
            assert dice(labels == i, truth[name] == i) > 0.45  # "copy": the anchor mask on every slice
        assert job["slices"] == int(labels.any((1, 2)).sum())
    assert sorted(p.name for p in out.iterdir()) == [REPORT, "v0.ome.zarr", "v1.ome.zarr", "v2.ome.zarr"]

    # a killed run left v1 half-written: its folder never got its final name
    (out / "v1.ome.zarr").rename(out / ".tmp-0123abcd-v1.ome.zarr")
    again = by_name(propagate_many(d / "jobs.csv", out, client=client, method="copy", progress=False))
    assert again["v0"]["status"] == again["v2"]["status"] == "skipped"
    assert again["v0"]["objects"] == 3 and again["v0"]["time_s"] == jobs["v0"]["time_s"]  # the earlier record
    assert again["v1"]["status"] == "done" and again["missing"]["status"] == "failed"
    assert leftovers(out) == []
    other = by_name(propagate_many(d / "good.csv", out, client=client, method="frozen", progress=False))
    assert all(j["status"] == "failed" and "overwrite=True" in j["error"] for j in other.values())
    redo = by_name(propagate_many(d / "good.csv", out, client=client, method="copy", overwrite=True, progress=False))
    assert [j["status"] for j in redo.values()] == ["done"] * 3
    assert np.array_equal(read_labels(out / "v0.ome.zarr"), read_labels(out / "v0.ome.zarr"))


@pytest.mark.slow
def test_killed_worker_is_retried_and_nothing_finished_is_lost(data, client, tmp_path):
    d, truth = data
    (tmp_path / "jobs.csv").write_text(f"image,seeds,name\n{d}/v1.npy,{d}/v1_seeds.tif,slow\n")
    out = tmp_path / "out"
    done: dict = {}
    runner = threading.Thread(
        target=lambda: done.update(
            propagate_many(tmp_path / "jobs.csv", out, client=client, method="ema", progress=False)
        )
    )
    runner.start()
    deadline = time.monotonic() + 60
    while not list(out.glob(".tmp-*-slow.ome.zarr")) and time.monotonic() < deadline:
        time.sleep(0.05)
    busy = [w for w, keys in client.processing().items() if any("oaims-propagate-slow" in str(k) for k in keys)]
    assert len(busy) == 1, "the job should be running on one worker"
    pid = client.run(os.getpid, workers=busy)[busy[0]]
    os.kill(pid, signal.SIGKILL)  # mid-job: its output folder is still temporary
    runner.join(120)
    [job] = done["jobs"]
    assert job["status"] == "done" and job["pid"] != pid  # resubmitted by Dask to a live worker
    labels = read_labels(out / "slow.ome.zarr")
    assert min(dice(labels == i, truth["v1"] == i) for i in range(1, 4)) > 0.5  # crowded: later objects win
    assert leftovers(out) == []


def test_command_line(data, client, tmp_path, capsys):
    from napari_oaims.cli import propagate as cli

    d, _ = data
    parser = argparse.ArgumentParser(prog="oaims")
    cli.register(parser.add_subparsers(dest="command"))

    def run(*argv):
        args = parser.parse_args(["propagate", *argv])
        return args.func(args)

    address = client.scheduler.address
    (tmp_path / "one.csv").write_text(f"image,seeds,name\n{d}/v0.tif,{d}/v0_seeds.npy,v0\n")
    (tmp_path / "two.csv").write_text(
        f"image,seeds,name\n{d}/v0.tif,{d}/v0_seeds.npy,v0\n{d}/nope.tif,{d}/v0_seeds.npy,nope\n"
    )
    out = tmp_path / "out"
    assert (
        run(
            "--manifest",
            str(tmp_path / "one.csv"),
            "--out",
            str(out),
            "--scheduler",
            address,
            "--method",
            "copy",
            "--axis",
            "0",
        )
        == 0
    )
    assert (
        run("--manifest", str(tmp_path / "two.csv"), "--out", str(out), "--scheduler", address, "--method", "copy") == 1
    )
    report = json.loads((out / REPORT).read_text())
    assert [j["status"] for j in report["jobs"]] == ["skipped", "failed"]
    err = capsys.readouterr().err  # the terminal bars and the failure line
    assert "jobs" in err and "2/2" in err and "nope: failed:" in err
    (tmp_path / "bad.csv").write_text("image,seeds\nx.tif,y.npy\n")
    with pytest.raises(ValueError, match="lacks the column"):
        run("--manifest", str(tmp_path / "bad.csv"), "--out", str(out))
    with pytest.raises(SystemExit):
        parser.parse_args(["propagate", "--manifest", "m.csv", "--out", "o", "--workers", "2", "--scheduler", "x"])


def test_seed_slices_are_written_exactly(tmp_path):
    """Each seed slice is an anchor whose mask is the seed itself (``Session.set_mask``), not a
    prediction from it: on its seed slices every object is exactly its seed, here with ``frozen``
    and two seed slices per object, run in this process by the task function itself."""
    from napari_oaims.batch.manifest import Job
    from napari_oaims.batch.settings import BatchSettings
    from napari_oaims.batch.worker import run_job, weights_payload

    img, lab = volume(np.random.default_rng(7), shape=(8, 48, 48), n_objects=3)
    seeds = np.zeros(lab.shape, np.uint16)
    for i in np.unique(lab)[1:]:
        zs = np.flatnonzero((lab == i).any((1, 2)))
        for z in (zs[len(zs) // 3], zs[(2 * len(zs)) // 3]):
            seeds[z][lab[z] == i] = i
    np.save(tmp_path / "img.npy", img)
    np.save(tmp_path / "seeds.npy", seeds)
    job = Job(str(tmp_path / "img.npy"), str(tmp_path / "seeds.npy"), "exact").to_dict()
    settings = BatchSettings(method="frozen", device="cpu").to_dict()
    record = run_job(job, weights_payload(None), settings, str(tmp_path / "out"))
    assert record["status"] == "done", record["error"]
    labels = read_labels(tmp_path / "out" / "exact.ome.zarr")
    checked = 0
    for i in np.unique(seeds)[1:]:
        for z in np.flatnonzero((seeds == i).any((1, 2))):
            assert np.array_equal(labels[z] == i, seeds[z] == i), f"object {i} on its seed slice {z}"
            checked += 1
        assert (labels == i).sum() > (seeds == i).sum()  # and it was carried beyond its seeds
    assert checked >= 4


@pytest.mark.slow
def test_progress_calls_and_cancel_leave_the_rest_pending(data, tmp_path):
    """A Progress callable hears of each finished job; a cancel set after the first one stops the
    batch: the finished job is complete on disk, the others are pending in the report."""
    from napari_oaims.core.progress import Cancel, Cancelled, Collect

    d, _ = data
    seen, token = Collect(), Cancel()

    def progress(done, total, message=""):
        seen(done, total, message)
        token.set()

    with pytest.raises(Cancelled):
        propagate_many(d / "good.csv", tmp_path / "out", workers=1, device="cpu", progress=progress, cancel=token)
    assert seen.calls[0][:2] == (1, 3) and seen.calls[0][2].endswith(" done")
    report = json.loads((tmp_path / "out" / REPORT).read_text())
    assert report["summary"]["done"] >= 1 and report["summary"]["pending"] >= 1
    assert report["settings"]["progress"] is False


def test_one_seeds_slice_with_many_labels(tmp_path):
    """One slice labelled with every nucleus on it: all are carried at once, each a barrier to the
    others, and each reaches most of its ground truth (the plugin's 3D sample)."""
    from napari_oaims.batch.manifest import Job
    from napari_oaims.batch.settings import BatchSettings
    from napari_oaims.batch.worker import run_job, weights_payload
    from napari_oaims.evaluation.metrics import dice
    from napari_oaims.plugin.sample_data import volume_3d

    (img, _, _), (lab, _, _) = volume_3d()
    z = int(np.argmax([len(np.unique(p)) * 10**6 + np.count_nonzero(p) for p in lab]))
    seeds = np.zeros(lab.shape, np.uint16)
    seeds[z] = lab[z]
    np.save(tmp_path / "img.npy", img)
    np.save(tmp_path / "seeds.npy", seeds)
    job = Job(str(tmp_path / "img.npy"), str(tmp_path / "seeds.npy"), "slice").to_dict()
    record = run_job(job, weights_payload(None), BatchSettings(device="cpu").to_dict(), str(tmp_path / "out"))
    assert record["status"] == "done", record["error"]
    labels = read_labels(tmp_path / "out" / "slice.ome.zarr")
    ids = [int(i) for i in np.unique(lab[z]) if i]
    assert len(ids) >= 4 and record["objects"] == len(ids)
    scores = [dice(labels == i, lab == i) for i in ids]
    assert np.array_equal(labels[z], lab[z]) and np.mean(scores) >= 0.85
