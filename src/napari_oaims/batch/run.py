"""The driver of a batch: jobs to Dask tasks, progress, skipping finished jobs, ``report.json``."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from napari_oaims.batch.manifest import Job, read_manifest
from napari_oaims.batch.output import clean_leftovers, done_record, final_path
from napari_oaims.batch.settings import BatchSettings
from napari_oaims.batch.worker import TOPIC, run_job, weights_held, weights_payload
from napari_oaims.core.extras import require
from napari_oaims.core.progress import CancelLike, Progress, TqdmProgress, cancel_requested, check_cancel, emit

REPORT = "report.json"


def missing_files(jobs: Iterable[Job]) -> list[str]:
    """``"row N: image|seeds PATH"`` for each file of ``jobs`` that does not exist on this machine
    (a pre-flight check; :func:`propagate_many` itself lets such a job fail on its own)."""
    return [
        f"row {job.row}: {column} {path}"
        for job in jobs
        for column, path in (("image", job.image), ("seeds", job.seeds))
        if not Path(path).exists()
    ]


def propagate_many(
    jobs: str | Path | Iterable[Mapping[str, Any] | Job],
    out: str | Path,
    client: Any = None,
    workers: int | None = None,
    progress: bool | Progress = True,
    cancel: CancelLike = None,
    **settings: Any,
) -> dict[str, Any]:
    """Carry the seeded objects of many volumes through their stacks, one Dask task per volume.

    Parameters
    ----------
    jobs
        A manifest: a CSV file with the columns ``image,seeds,name``, or mappings with those keys
        (see :func:`napari_oaims.batch.manifest.read_manifest`). ``image``: TIFF, NumPy, Zarr or
        OME-Zarr (3D); ``seeds``: a label volume of the same shape with a few annotated slices
        (0 elsewhere; each id one object), or a ``.oaims.zarr`` session (its accepted objects).
        A bad manifest raises before any work starts.
    out
        Output folder: ``<name>.ome.zarr`` per job (:mod:`napari_oaims.batch.output`) and
        ``report.json`` (rewritten as each job ends).
    client
        A ``dask.distributed.Client``, or a scheduler address (``"tcp://host:8786"``), e.g. of a
        ``dask_jobqueue.SLURMCluster`` or ``PBSCluster``; the workers need napari-oaims installed.
        None: a ``LocalCluster`` of ``workers`` processes with one thread each, closed at the end.
    workers
        Worker processes of the local cluster (default: one per CPU core, at most one per job).
        Only without ``client``.
    progress
        True: progress bars (jobs, slices) and failures on the terminal (stderr); False: nothing;
        or a :class:`~napari_oaims.core.progress.Progress`, called ``progress(done, total,
        "<name> <status>")`` as each job ends.
    cancel
        Checked while jobs run: when set, the jobs not yet finished are cancelled, the report
        lists them as pending and :class:`~napari_oaims.core.progress.Cancelled` is raised.
    **settings
        :class:`napari_oaims.batch.settings.BatchSettings`: ``method`` (``"frozen"``), ``axis`` (0),
        ``weights``, ``overwrite``, ``device``, ``threads``, ``adaptation``, ``copy_image``,
        ``propagate`` (a dict of propagation settings).

    Returns
    -------
    dict
        The report (as written to ``report.json``): ``jobs``, one record per job in manifest
        order (``status`` ``"done"``, ``"skipped"`` (complete from an earlier run) or
        ``"failed"``; ``objects``, ``slices``, ``time_s``, ``error``, ...), ``summary`` (counts)
        and ``settings``.

    Notes
    -----
    A job fails on its own (missing or damaged file, shape mismatch, no seeds) and the others go
    on. Each output is built in a temporary folder and renamed when complete, so a rerun with
    the same ``out`` skips exactly the jobs that finished (``overwrite=True`` redoes them). A
    worker that dies mid-job has its task resubmitted by the scheduler; after
    ``distributed.scheduler.allowed-failures`` deaths the job is reported as failed.
    """
    s = BatchSettings.of({**settings, "progress": progress is True})
    todo_jobs = read_manifest(jobs)
    if client is not None and workers is not None:
        raise ValueError("give either workers (a local cluster) or client (an existing scheduler), not both")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a whole number >= 1, got {workers!r}")
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise ValueError(f"the output folder {out} is a file; give a folder")
    payload = weights_payload(s.weights)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    report: dict[str, Any] = {
        "out": str(out),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": {**s.to_dict(), "weights_sha256": payload["sha256"]},
        "jobs": [],
    }
    records: dict[str, dict[str, Any]] = {}
    run: list[Job] = []
    for job in todo_jobs:
        previous = done_record(out, job.name)
        if previous is None or s.overwrite:
            run.append(job)
            continue
        same = {k: previous.get(k) for k in ("image", "seeds", "method", "axis")}
        wanted = {"image": job.image, "seeds": job.seeds, "method": s.method, "axis": s.axis}
        if same == wanted:
            records[job.name] = {**previous, "status": "skipped", "error": None}
        else:
            diff = sorted(k for k in wanted if same[k] != wanted[k])
            records[job.name] = _failed(
                job,
                s,
                f"{final_path(out, job.name)} holds the output of another job "
                f"(different {', '.join(diff)}): pass overwrite=True or another output folder",
            )
    bars = _Bars(len(todo_jobs), s.progress, None if isinstance(progress, bool) else progress)
    bars.advance(sum(1 for r in records.values() if r["status"] == "skipped"))
    for r in records.values():
        if r["status"] == "failed":
            bars.failed(r)

    def write() -> None:
        report["jobs"] = [records[j.name] for j in todo_jobs if j.name in records]
        counts = {k: sum(1 for r in report["jobs"] if r["status"] == k) for k in ("done", "skipped", "failed")}
        report["summary"] = {"jobs": len(todo_jobs), **counts, "pending": len(todo_jobs) - len(report["jobs"])}
        report["time_s"] = round(time.perf_counter() - t0, 3)
        _write_json(out / REPORT, report)

    try:
        if run:
            _run(run, out, s, payload, client, workers, records, bars, write, cancel)
    finally:
        bars.close()
        write()
    return report


def _failed(job: Job, s: BatchSettings, message: str) -> dict[str, Any]:
    return {
        "name": job.name,
        "image": job.image,
        "seeds": job.seeds,
        "method": s.method,
        "axis": s.axis,
        "status": "failed",
        "objects": 0,
        "slices": 0,
        "slices_propagated": 0,
        "time_s": None,
        "error": message,
        "output": None,
    }


def send_weights(client, payload: dict):
    """A future of the weights ``payload`` (:func:`~napari_oaims.batch.worker.weights_payload`)
    for the tasks of ``client``'s cluster. It is a task, not scattered data: Dask may keep one copy
    only (its memory manager drops replicas), and a task's result lost with its worker is computed
    again where scattered data would be gone."""
    return client.submit(weights_held, payload, key=f"oaims-weights-{uuid.uuid4().hex[:8]}", pure=False)


def _run(run: list[Job], out: Path, s: BatchSettings, payload, client, workers, records, bars, write, cancel) -> None:
    distributed = require("distributed", "batch", "batch runs on Dask")
    Client, LocalCluster, as_completed = distributed.Client, distributed.LocalCluster, distributed.as_completed

    cluster = None
    own = client is None or isinstance(client, str)
    if client is None:
        n = workers or max(1, min(os.cpu_count() or 1, len(run)))
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
        )
        client = Client(cluster, set_as_default=False)  # used explicitly: dask's global default is left alone
    elif isinstance(client, str):
        client = Client(client, set_as_default=False)
    try:
        client.subscribe_topic(TOPIC, bars.event)
        weights = send_weights(client, payload)
        settings = s.to_dict()
        futures, by_key = [], {}
        for i, job in enumerate(run):
            clean_leftovers(out, job.name)
            key = f"oaims-propagate-{job.name}-{uuid.uuid4().hex[:8]}"
            f = client.submit(run_job, job.to_dict(), weights, settings, str(out), key=key, pure=False, priority=-i)
            futures.append(f)
            by_key[f.key] = job
        stop = _watch(cancel, lambda: client.cancel(futures))
        try:
            for f in as_completed(futures, loop=client.loop):
                check_cancel(cancel)
                job = by_key[f.key]
                try:
                    record = f.result()
                except Exception as err:  # noqa: BLE001 - a killed worker (KilledWorker), a lost scheduler
                    record = _failed(job, s, f"the job's worker failed: {type(err).__name__}: {err}")
                records[job.name] = record
                if record["status"] == "failed":
                    clean_leftovers(out, job.name)
                    bars.failed(record)
                bars.advance(1, record)
                write()
        except BaseException:
            client.cancel(futures)
            raise
        finally:
            stop.set()
    finally:
        try:
            client.unsubscribe_topic(TOPIC)
        except Exception:  # noqa: BLE001 - the client may be gone already
            pass
        if own:
            client.close()
        if cluster is not None:
            cluster.close()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def _watch(cancel: CancelLike, on_cancel) -> threading.Event:
    """Call ``on_cancel()`` once ``cancel`` is set (polled by a daemon thread until the returned
    event is set)."""
    stop = threading.Event()
    if cancel is None:
        return stop

    def watch() -> None:
        while not stop.wait(0.2):
            if cancel_requested(cancel):
                on_cancel()
                return

    threading.Thread(target=watch, name="oaims-batch-cancel", daemon=True).start()
    return stop


class _Bars:
    """Progress of the jobs: ``progress`` calls, and with ``show`` terminal bars over jobs and
    over propagated slices (:class:`~napari_oaims.core.progress.TqdmProgress`, stderr)."""

    def __init__(self, total: int, show: bool, progress: Progress | None = None):
        self.lock = threading.Lock()
        self.total, self.done, self.slices_done, self.progress = total, 0, 0, progress
        self.seen: dict[str, int] = {}  # name -> slices done
        self.jobs = self.slices = None
        if show:
            self.jobs = TqdmProgress(unit="job", desc="jobs", extra="batch", file=sys.stderr, position=0)
            self.slices = TqdmProgress(unit="slice", desc="slices", extra="batch", file=sys.stderr, position=1)
            self.jobs(0, total)
            self.slices(0, 0)

    def event(self, event) -> None:
        """A progress event from a worker (``(time, msg)``)."""
        msg = event[1] if isinstance(event, tuple) else event
        if self.slices is None or not isinstance(msg, dict) or "slices_done" not in msg:
            return
        with self.lock:
            done = int(msg.get("slices_done", 0))
            before = self.seen.get(msg["name"], 0)
            if done > before:
                self.seen[msg["name"]] = done
                self.slices_done += done - before
                self.slices(self.slices_done, 0)

    def advance(self, n: int, record: dict | None = None) -> None:
        with self.lock:
            self.done += n
            last = "" if record is None else f"{record['name']} {record['status']}"
            if n:
                emit(self.progress, self.done, self.total, last)
            if self.jobs is not None:
                self.jobs(self.done, self.total, f"last: {last}" if last else "")

    def failed(self, record: dict) -> None:
        text = f"{record['name']}: failed: {record['error']}"
        if self.jobs is not None:
            self.jobs.write(text)
        else:
            print(text, file=sys.stderr)

    def close(self) -> None:
        for bar in (self.slices, self.jobs):
            if bar is not None:
                bar.close()
