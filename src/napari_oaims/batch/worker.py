"""What a Dask worker runs: one job (one volume) per task, every object of it in turn.

The weights reach each worker once (:func:`~napari_oaims.batch.run.send_weights`); a worker process builds its
:class:`~napari_oaims.Engine` from them on its first task and keeps it (:func:`engine_for`).
A task never raises for a bad job: it returns the job's record with ``status: "failed"`` and the
message, so that one broken volume does not stop the others. A task whose worker process dies is
resubmitted by the Dask scheduler (``distributed.scheduler.allowed-failures`` times).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from napari_oaims.batch.output import Output, clean_leftovers, final_path
from napari_oaims.batch.volumes import objects_of, open_seeds, open_volume, seed_slices

#: Topic of the progress events a task sends to the driver (``Worker.log_event``).
TOPIC = "napari-oaims-batch"
#: Seconds between two progress events of one task.
PROGRESS_EVERY = 0.5
_ENGINES: dict[tuple, Any] = {}


def weights_held(payload: dict[str, Any]) -> dict[str, Any]:
    """The weights payload as the result of a task: workers fetch it from each other, and Dask
    computes it again if every copy was lost with its worker (scattered data would be gone)."""
    return payload


def weights_payload(path: str | Path | None) -> dict[str, Any]:
    """What the driver sends to every worker once: the weights.

    Parameters
    ----------
    path
        A ``.safetensors`` file with its ``.json`` beside it; None: the shipped weights.

    Returns
    -------
    dict
        ``name``, ``safetensors`` and ``json`` (bytes) and ``sha256`` (of the tensors, short).

    Raises
    ------
    FileNotFoundError, ValueError
        Missing, corrupted or unfitting weights (they are loaded once to check).
    """
    from napari_oaims.engine import shipped_weights_path
    from napari_oaims.model import load_weights

    p = Path(path) if path is not None else shipped_weights_path()
    base = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    st, js = base.with_suffix(".safetensors"), base.with_suffix(".json")
    load_weights(st)  # missing, corrupted or unfitting weights fail here, before any job
    data = st.read_bytes()
    return {
        "name": st.name,
        "safetensors": data,
        "json": js.read_bytes(),
        "sha256": hashlib.sha256(data).hexdigest()[:16],
    }


def engine_for(weights: dict[str, Any], device: str, adaptation: str):
    """The engine of this process for ``weights``, built on first use, then kept.

    Parameters
    ----------
    weights
        :func:`weights_payload`.
    device, adaptation
        Of :meth:`napari_oaims.Engine.pretrained`.

    Returns
    -------
    Engine
    """
    key = (weights["sha256"], device, adaptation)
    if key not in _ENGINES:
        from napari_oaims.engine import Engine

        with tempfile.TemporaryDirectory(prefix="oaims-weights-") as tmp:
            st = Path(tmp) / "weights.safetensors"
            st.write_bytes(weights["safetensors"])
            st.with_suffix(".json").write_bytes(weights["json"])
            _ENGINES[key] = Engine.pretrained(device=device, adaptation=adaptation, weights=st)
    return _ENGINES[key]


def peak_rss_mib() -> float | None:
    """Peak resident memory of this process so far (MiB; None where it cannot be read)."""
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(peak / (2**20 if sys.platform == "darwin" else 1024), 1)
    except (ImportError, OSError):  # pragma: no cover - not Unix
        return None


class _Reporter:
    """Progress events of one task to the driver (nothing when not run by a Dask worker)."""

    def __init__(self, name: str):
        self.name, self.last = name, 0.0
        try:
            from distributed import get_worker

            self.worker = get_worker()
        except (ImportError, ValueError):
            self.worker = None

    def __call__(self, force: bool = False, **msg) -> None:
        now = time.monotonic()
        if self.worker is None or (not force and now - self.last < PROGRESS_EVERY):
            return
        self.last = now
        self.worker.log_event(TOPIC, {"name": self.name, **msg})


def _message(err: BaseException) -> str:
    if isinstance(err, (FileNotFoundError, ValueError, PermissionError)):
        return str(err)
    return f"{type(err).__name__}: {err}"


def run_job(job: dict[str, Any], weights: dict[str, Any], settings: dict[str, Any], out: str) -> dict[str, Any]:
    """Propagate every object of one job and write ``<out>/<name>.ome.zarr``.

    Parameters
    ----------
    job
        :meth:`napari_oaims.batch.manifest.Job.to_dict`.
    weights
        :func:`weights_payload`.
    settings
        :meth:`napari_oaims.batch.settings.BatchSettings.to_dict`.
    out
        The output folder.

    Returns
    -------
    dict
        The job's record: ``status`` (``"done"`` or ``"failed"``), ``objects``, ``slices`` (slices
        holding an object), ``slices_propagated``, ``time_s``, ``error`` and details.
    """
    import dask

    t0 = time.perf_counter()
    record: dict[str, Any] = {
        "name": job["name"],
        "image": job["image"],
        "seeds": job["seeds"],
        "method": settings["method"],
        "axis": settings["axis"],
        "status": "failed",
        "objects": 0,
        "slices": 0,
        "slices_propagated": 0,
        "time_s": None,
        "error": None,
        "output": None,
        "pid": os.getpid(),
    }
    report = _Reporter(job["name"])
    output = None
    try:
        with dask.config.set(scheduler="synchronous"):  # lazy reads of this task stay in this task
            import torch

            torch.set_num_threads(int(settings["threads"]))
            clean_leftovers(out, job["name"])
            record.update(_propagate(job, weights, settings, out, report))
            output = record.pop("_output")
            record["time_s"] = round(time.perf_counter() - t0, 3)
            record["peak_rss_mib"] = peak_rss_mib()
            target = output.finish(record, record["object_details"], bool(settings["overwrite"]))
            output = None
            record["status"], record["output"] = "done", str(target)
    except Exception as err:  # noqa: BLE001 - any failure of one job is that job's record
        record["status"], record["error"] = "failed", _message(err)
        record.pop("_output", None)
    finally:
        if output is not None:
            output.discard()
    if record["status"] != "done":  # a done job keeps the record written into its output
        record["time_s"] = round(time.perf_counter() - t0, 3)
        record["peak_rss_mib"] = peak_rss_mib()
    report(force=True, objects_done=record["objects"], objects=record["objects"], final=True)
    return record


def _propagate(job, weights, settings, out, report) -> dict[str, Any]:
    axis = int(settings["axis"])
    image = open_volume(job["image"])
    seeds = open_seeds(job["seeds"])
    if tuple(seeds.shape) != tuple(image.shape):
        raise ValueError(
            f"shape mismatch: seeds {job['seeds']} have shape {tuple(seeds.shape)}, "
            f"image {job['image']} has shape {tuple(image.shape)}"
        )
    slices = seed_slices(seeds, axis)
    objects = objects_of(slices)
    if not objects:
        raise ValueError(f"no seeds: {job['seeds']} holds no labelled voxel (label a few slices of each object)")
    engine = engine_for(weights, settings["device"], settings["adaptation"])
    if settings["adaptation"] != "none":
        engine.reset()
    plane_axes = tuple(a for a in range(3) if a != axis)
    session = engine.session(image, plane_axes=plane_axes)
    output = Output(out, job["name"], image, copy_image=bool(settings["copy_image"]))
    details, held, propagated = [], set(), 0
    report(force=True, objects_done=0, objects=len(objects), slices_done=0)
    seeds = {oid: {(pos,): slices[pos] == oid for pos in positions} for oid, positions in objects.items()}
    planes_of: dict[int, dict] = {oid: {} for oid in objects}
    error = None
    try:
        try:  # every object at once, each a barrier to the others (a voxel belongs to one object)

            def progress(done, total, message=""):
                report(objects_done=0, objects=len(objects), slices_done=done)

            result = session.propagate_objects(
                seeds, axis=axis, method=settings["method"], settings=settings["propagate"], progress=progress
            )
            for oid, accepted in zip(result.labels, result.objects):
                planes_of[oid] = {k[0]: (box, crop) for k, (box, crop) in accepted.planes.items()}
            propagated = int(result.info.get("slices") or 0)
        except ValueError as err:  # a propagation that cannot run: the seeds alone are written
            error = str(err)
            planes_of = {}
        finally:
            session.run_pending_updates()  # what the engine learns from the objects (adaptation "none": nothing)
            _next_object(session)
        for n, (oid, positions) in enumerate(objects.items()):
            info: dict[str, Any] = {"id": oid, "seed_slices": positions, "error": error}
            planes = planes_of.get(oid) or {pos: ((0, 0, *slices[pos].shape), slices[pos] == oid) for pos in positions}
            info["voxels"], info["slices"] = output.paint(oid, planes, axis, slices)
            held.update(info["slices"])
            info["slices"] = len(info["slices"])
            details.append(info)
            report(force=n + 1 == len(objects), objects_done=n + 1, objects=len(objects), slices_done=propagated)
    except BaseException:
        output.discard()
        raise
    record_update = {
        "objects": len(objects),
        "slices": len(held),
        "slices_propagated": propagated,
        "object_details": details,
        "weights": weights["sha256"],
        "_output": output,
        "output": str(final_path(out, job["name"])),
    }
    return record_update


def _next_object(session) -> None:
    """Close the object in progress so the session starts the next one with nothing kept: accept
    it (the engine learns from it only with an adapter other than ``"none"``) or clear it."""
    try:
        session.accept()
    except ValueError:  # an empty mask: nothing to accept
        session.clear()
    session.prior_masks.clear()  # kept by a session for saving and replay; a batch does neither
    session.barrier_masks.clear()
