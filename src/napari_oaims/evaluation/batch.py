"""``oaims bench batch``: batch propagation on Dask (:func:`napari_oaims.batch.propagate_many`).

Two measurements in one run:

* **Scaling**: ``volumes`` procedural stacks (:func:`napari_oaims.training.synth.volume`), each
  object seeded on its largest slice (or on ``seed_slices`` slices spread over its extent),
  propagated with 1 and with 2 local worker processes (one torch thread each). Per worker count:
  the wall time of :func:`propagate_many` (workers already started and their engines built, so
  the number is the work, not the start-up, which is reported beside it), slices per second, the
  speed-up over 1 worker, and the Dice of every propagated object against the truth. The
  speed-up is about ``workers x balance / job slowdown``: ``balance`` is how evenly the jobs'
  times split over the workers (1: all equally busy), ``job slowdown`` how much longer the jobs
  took in all than with the first worker count (cores shared with each other and other work).
* **Memory**: one large Zarr volume (``large_gib`` GiB of uint16, written block by block: never
  in memory), a few spherical nuclei seeded on their middle slice, propagated by a single fresh
  worker. Reported: the worker's peak resident memory over the job (its ``ru_maxrss``), its
  resident memory with the engine loaded before the job, and the seeded objects' Dice (read back
  object by object).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_oaims.core.extras import require
from napari_oaims.core.overlap import dice

#: Output chunks of the large volume (z, y, x).
LARGE_CHUNKS = (16, 256, 256)


def write_volumes(
    folder: str | Path,
    n: int,
    shape: tuple[int, int, int] = (16, 96, 96),
    seed: int = 0,
    n_objects: int = 4,
    seed_slices: int = 1,
) -> tuple[Path, dict[str, Path]]:
    """Write ``n`` procedural stacks (TIFF), their seeds (NumPy: ``seed_slices`` annotated slices
    per object) and their truth; returns the manifest and the truth file of each job."""
    import tifffile

    from napari_oaims.training.synth import volume

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows, truth = ["image,seeds,name"], {}
    for i in range(n):
        image, labels = volume(np.random.default_rng([seed, i]), shape=shape, n_objects=n_objects)
        seeds = np.zeros(labels.shape, np.uint16)
        for oid in np.unique(labels)[1:]:
            obj = labels == oid
            area = obj.sum((1, 2))
            zs = np.flatnonzero(area)
            picks = (
                [int(np.argmax(area))]
                if seed_slices == 1
                else [int(zs[round(q)]) for q in np.linspace(0, len(zs) - 1, seed_slices + 2)[1:-1]]
            )
            for z in picks:
                seeds[z][obj[z]] = oid
        tifffile.imwrite(folder / f"vol{i}.tif", image)
        np.save(folder / f"vol{i}_seeds.npy", seeds)
        np.save(folder / f"vol{i}_truth.npy", labels)
        rows.append(f"vol{i}.tif,vol{i}_seeds.npy,vol{i}")
        truth[f"vol{i}"] = folder / f"vol{i}_truth.npy"
    (folder / "jobs.csv").write_text("\n".join(rows) + "\n")
    return folder / "jobs.csv", truth


def write_large(folder: str | Path, gib: float, n_objects: int = 6, seed: int = 0) -> tuple[Path, list[dict]]:
    """A ``gib`` GiB uint16 Zarr volume of shape (Z, 2048, 2048) (Z a multiple of 16; smaller planes
    below 1 GiB), with ``n_objects`` soft-edged ellipsoids, written one chunk-row at a time; seeds
    (Zarr, uint16) on each object's middle slice. Returns the manifest and the objects."""
    import zarr

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    side = 2048 if gib >= 1 else 1024
    z = max(32, int(round(gib * 2**30 / (2 * side * side) / 16)) * 16)
    shape = (z, side, side)
    rng = np.random.default_rng(seed)
    objects = []
    for i in range(1, n_objects + 1):
        r = np.array([rng.uniform(5, 9), rng.uniform(12, 20), rng.uniform(12, 20)])
        c = np.array([rng.uniform(r[0] + 2, z - r[0] - 2), *rng.uniform(64, side - 64, size=2)])
        objects.append({"id": i, "centre": c.tolist(), "radius": r.tolist()})
    image = zarr.create_array(str(folder / "large.zarr"), shape=shape, chunks=LARGE_CHUNKS, dtype=np.uint16)
    seeds = zarr.create_array(
        str(folder / "large_seeds.zarr"), shape=shape, chunks=LARGE_CHUNKS, dtype=np.uint16, fill_value=0
    )
    for z0 in range(0, z, LARGE_CHUNKS[0]):
        z1 = min(z, z0 + LARGE_CHUNKS[0])
        slab = (100 + rng.integers(0, 40, size=(z1 - z0, side, side), dtype=np.uint16)).astype(np.uint16)
        for o in objects:
            box, inside = _ellipsoid(o, z0, z1, side)
            if box is not None:
                slab[box] = np.maximum(slab[box], (100 + 300 * inside).astype(np.uint16))
        image[z0:z1] = slab
    for o in objects:
        zc = int(round(o["centre"][0]))
        box, inside = _ellipsoid(o, zc, zc + 1, side)
        plane = np.zeros((side, side), np.uint16)
        plane[box[1:]] = np.where(inside[0] > 0.5, o["id"], 0)
        seeds[zc] = plane
    (folder / "large.csv").write_text("image,seeds,name\nlarge.zarr,large_seeds.zarr,large\n")
    return folder / "large.csv", objects


def _ellipsoid(o: dict, z0: int, z1: int, side: int):
    """Soft occupancy (0..1) of ellipsoid ``o`` in slices ``z0:z1``: its box in the slab, values."""
    c, r = np.asarray(o["centre"]), np.asarray(o["radius"])
    lo = np.maximum(np.floor(c - r - 2).astype(int), [z0, 0, 0])
    hi = np.minimum(np.ceil(c + r + 3).astype(int), [z1, side, side])
    if np.any(hi <= lo):
        return None, None
    zz, yy, xx = np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij")
    d = np.sqrt(((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + ((xx - c[2]) / r[2]) ** 2)
    inside = np.clip((1 - d) * r[1] / 2 + 0.5, 0, 1)
    return (slice(lo[0] - z0, hi[0] - z0), slice(lo[1], hi[1]), slice(lo[2], hi[2])), inside


def _cluster(n: int):
    distributed = require("distributed", "batch", "the batch benchmark")
    Client, LocalCluster = distributed.Client, distributed.LocalCluster

    cluster = LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    )
    return cluster, Client(cluster, set_as_default=False)  # passed explicitly; dask's global default stays as it was


def _warm(client, weights: str | None, device: str) -> list[float | None]:
    """Build each worker's engine (what a first job pays) and return their resident memory (MiB)."""
    from napari_oaims.batch.run import send_weights
    from napari_oaims.batch.worker import engine_for, weights_payload

    payload = send_weights(client, weights_payload(weights))

    def warm(p, dev):
        import psutil

        engine_for(p, dev, "none")
        return round(psutil.Process().memory_info().rss / 2**20, 1)

    futures = [
        client.submit(warm, payload, device, workers=[w], pure=False, allow_other_workers=False)
        for w in client.scheduler_info()["workers"]
    ]
    return client.gather(futures)


def _labels(path: Path):
    import zarr

    return zarr.open_array(str(path / "labels" / "propagated" / "0"), mode="r")


def _cpu_s(client) -> float:
    """CPU seconds (user + system) the client's worker processes have used so far."""

    def used() -> float:
        import psutil

        t = psutil.Process().cpu_times()
        return t.user + t.system

    return float(sum(client.run(used).values()))


def _scaling_run(client, manifest: Path, out: Path, truth: dict[str, Path], method, weights, device) -> dict:
    """One timed :func:`propagate_many` of the manifest on ``client``'s (warm) workers."""
    from napari_oaims.batch import propagate_many

    cpu0, t0 = _cpu_s(client), time.perf_counter()
    report = propagate_many(
        manifest, out, client=client, method=method, weights=weights, device=device, overwrite=True, progress=False
    )
    wall = time.perf_counter() - t0
    cpu = _cpu_s(client) - cpu0
    dices, busy = [], {}  # busy: worker process -> seconds of its jobs
    for job in report["jobs"]:
        if job["status"] != "done":
            raise RuntimeError(f"benchmark job {job['name']} failed: {job['error']}")
        labels, ref = np.asarray(_labels(Path(job["output"]))[...]), np.load(truth[job["name"]])
        dices += [dice(labels == i, ref == i) for i in np.unique(ref)[1:]]
        busy[job["pid"]] = busy.get(job["pid"], 0.0) + job["time_s"]
    return {
        "wall_s": wall,
        "worker_cpu_s": cpu,
        "job_s": [j["time_s"] for j in report["jobs"]],
        "busiest_s": max(busy.values()),
        "slices": sum(j["slices_propagated"] for j in report["jobs"]),
        "jobs": len(report["jobs"]),
        "dices": dices,
        "peak_rss_mib": max(j["peak_rss_mib"] or 0 for j in report["jobs"]),
    }


def run(
    volumes: int = 4,
    shape: Sequence[int] = (16, 96, 96),
    method: str = "frozen",
    workers: Sequence[int] = (1, 2),
    large_gib: float = 4.0,
    seed: int = 0,
    seed_slices: int = 1,
    weights: str | None = None,
    device: str = "cpu",
    folder: str | Path | None = None,
    repeats: int = 1,
) -> dict[str, Any]:
    """Run the benchmark (see the module docstring).

    Parameters
    ----------
    volumes, shape, seed, seed_slices
        The procedural stacks of the scaling part.
    method
        Propagation method.
    workers
        Worker counts to compare (the first is the reference of the speed-up; empty: only the
        memory part). A cluster of each is started (and its engines built) before any timing.
    large_gib
        Size of the large Zarr volume of the memory part (0: skip it).
    weights, device
        Of the engines.
    folder
        Scratch folder for the inputs and outputs (default: a temporary folder, removed).
    repeats
        Rounds of the scaling part; each round runs every worker count once, one after the
        other, so that a change in the machine's load hits all of them alike. Reported: the
        median wall time, and the median over rounds of the speed-up within a round.

    Returns
    -------
    dict
        ``scaling``: one row per worker count; ``memory``: the large-volume job (or None);
        ``settings``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    tmp = tempfile.TemporaryDirectory(prefix="oaims-bench-batch-") if folder is None else None
    root = Path(tmp.name if tmp is not None else folder)
    try:
        rows = []
        if workers:
            manifest, truth = write_volumes(root / "data", volumes, tuple(shape), seed, seed_slices=seed_slices)
            rows = _scaling(manifest, truth, root, list(workers), repeats, method, weights, device)
        memory = _memory(root, large_gib, method, seed, weights, device) if large_gib > 0 else None
    finally:
        if tmp is not None:
            tmp.cleanup()
    return {
        "scaling": rows,
        "memory": memory,
        "settings": {
            "volumes": volumes,
            "shape": list(shape),
            "method": method,
            "workers": list(workers),
            "large_gib": large_gib,
            "seed": seed,
            "seed_slices": seed_slices,
            "weights": weights,
            "device": device,
            "repeats": repeats,
            "cpu_count": os.cpu_count(),
            "load_average": [round(v, 2) for v in os.getloadavg()],
        },
    }


def _scaling(manifest, truth, root: Path, workers: list[int], repeats: int, method, weights, device) -> list[dict]:
    """The scaling part: warm clusters of every worker count, then ``repeats`` interleaved rounds."""
    clusters, startup, rss = {}, {}, {}
    try:
        for n in workers:
            t0 = time.perf_counter()
            clusters[n] = _cluster(n)
            rss[n] = _warm(clusters[n][1], weights, device)
            startup[n] = time.perf_counter() - t0
        runs: dict[int, list[dict]] = {n: [] for n in workers}
        for _ in range(repeats):
            for n in workers:
                out = root / f"out{n}"
                runs[n].append(_scaling_run(clusters[n][1], manifest, out, truth, method, weights, device))
    finally:
        for cluster, client in clusters.values():
            client.close()
            cluster.close()
    ref = runs[workers[0]]
    rows = []
    for n in workers:
        rs = runs[n]
        last = rs[-1]
        wall = float(np.median([x["wall_s"] for x in rs]))
        rows.append(
            {
                "workers": n,
                "wall_s": round(wall, 2),
                "walls_s": [round(x["wall_s"], 2) for x in rs],
                "startup_s": round(startup[n], 2),
                "jobs": last["jobs"],
                "slices": last["slices"],
                "slices_per_s": round(last["slices"] / wall, 2),
                # within each round, over the first worker count; the median over the rounds
                "speedup": round(float(np.median([a["wall_s"] / b["wall_s"] for a, b in zip(ref, rs)])), 2),
                # speed-up ~ workers x balance / job slowdown: how evenly the jobs' times split over the
                # workers (1: all equally busy), how much longer the jobs took than with the first count
                "balance": round(float(np.median([sum(x["job_s"]) / (n * x["busiest_s"]) for x in rs])), 3),
                "job_slowdown": round(
                    float(np.median([sum(b["job_s"]) / sum(a["job_s"]) for a, b in zip(ref, rs)])), 3
                ),
                "worker_cpu_s": round(float(np.median([x["worker_cpu_s"] for x in rs])), 2),
                "dice_mean": round(float(np.mean(last["dices"])), 4),
                "dice_median": round(float(np.median(last["dices"])), 4),
                "worker_rss_mib": rss[n],
                "peak_rss_mib": last["peak_rss_mib"],
            }
        )
    return rows


def _memory(root: Path, gib: float, method: str, seed: int, weights, device) -> dict[str, Any]:
    from napari_oaims.batch import propagate_many

    t0 = time.perf_counter()
    manifest, objects = write_large(root / "large", gib, seed=seed)
    made = time.perf_counter() - t0
    cluster, client = _cluster(1)
    try:
        [rss] = _warm(client, weights, device)
        report = propagate_many(
            manifest,
            root / "out_large",
            client=client,
            method=method,
            weights=weights,
            device=device,
            overwrite=True,
            progress=False,
        )
    finally:
        client.close()
        cluster.close()
    [job] = report["jobs"]
    if job["status"] != "done":
        raise RuntimeError(f"large-volume job failed: {job['error']}")
    labels = _labels(Path(job["output"]))
    dices = []
    for o in objects:
        box, inside = _ellipsoid(o, 0, labels.shape[0], labels.shape[1])
        dices.append(dice(np.asarray(labels[box]) == o["id"], inside > 0.5))
    return {
        "shape": list(labels.shape),
        "gib": round(float(np.prod(labels.shape)) * 2 / 2**30, 2),
        "objects": len(objects),
        "write_s": round(made, 1),
        "job_s": job["time_s"],
        "slices": job["slices_propagated"],
        "worker_rss_before_mib": rss,
        "peak_rss_mib": job["peak_rss_mib"],
        "growth_mib": round(job["peak_rss_mib"] - rss, 1) if rss else None,
        "dice_mean": round(float(np.mean(dices)), 4),
    }


def table(result: dict[str, Any]) -> str:
    """The benchmark's result as markdown tables."""
    lines = [
        "| workers | wall (s) | start-up (s) | jobs | slices | slices/s | speed-up | balance | job slowdown "
        "| worker CPU (s) | Dice mean | Dice median | peak worker memory (MiB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["scaling"]:
        lines.append(
            f"| {r['workers']} | {r['wall_s']} | {r['startup_s']} | {r['jobs']} | {r['slices']} | "
            f"{r['slices_per_s']} | {r['speedup']}x | {r['balance']} | {r['job_slowdown']}x | {r['worker_cpu_s']} | "
            f"{r['dice_mean']:.3f} | {r['dice_median']:.3f} | {r['peak_rss_mib']} |"
        )
    m = result.get("memory")
    if m:
        lines += [
            "",
            "| large volume | GiB | objects | job (s) | slices | worker before (MiB) | peak (MiB) | "
            "growth (MiB) | Dice mean |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {' x '.join(map(str, m['shape']))} uint16 Zarr | {m['gib']} | {m['objects']} | {m['job_s']} | "
            f"{m['slices']} | {m['worker_rss_before_mib']} | {m['peak_rss_mib']} | {m['growth_mib']} | "
            f"{m['dice_mean']:.3f} |",
        ]
    return "\n".join(lines)
