"""``oaims bench store``: what autosaving a session costs, how big it gets, and whether it survives ``kill -9``.

1. Autosave cost: a real session (the engine, clicks at object centres of a real image, one
   accept per object) autosaved with :meth:`SessionStore.attach`; per event, the time of
   ``append_event`` and of the whole autosave (labels, objects table and weights included), p50/p95
   per event kind.
2. Size: the session folder after ``--objects`` accepted objects, by part.
3. Kill test: ``--kill-runs`` child processes annotate (or, with ``--kill-mode append``, append
   events in a tight loop; with ``adapt``, annotate with online adaptation) and autosave while the
   parent sends SIGKILL at a random moment. The child prints the seq of each event after
   ``append_event`` returned; the parent then opens the store and checks that every acknowledged
   event is readable (at most one more, the event in flight) and, when weights were saved, that
   the saved weights load and are weights the log names (the updates logged after them are the
   ones the crash lost).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from napari_oaims.evaluation.common import write_json

#: ``data=None``: the nuclei sample shipped with the package.
DATA: Path | None = None


def object_centres(labels: np.ndarray) -> list[tuple[int, tuple[int, int]]]:
    """``(id, (y, x))``: the robot's centre click (distance-transform maximum) in each object."""
    from scipy import ndimage

    from napari_oaims.evaluation.common import target_ids
    from napari_oaims.simulate.robot import click_in_region

    slices = ndimage.find_objects(labels.astype(np.int64))
    out = []
    for i in target_ids(labels):
        sl = slices[i - 1]
        y, x = click_in_region(labels[sl] == i, mode="center")
        out.append((i, (y + sl[0].start, x + sl[1].start)))
    return out


def _load_data(data: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """``image.tif`` and ``labels.tif`` of folder ``data``, or the shipped nuclei sample."""
    if data is None or str(data) == "":
        from napari_oaims.data import sample_nuclei

        return sample_nuclei()
    from napari_oaims.core.files import read_array

    return read_array(Path(data) / "image.tif"), read_array(Path(data) / "labels.tif")


def annotate(session, centres, n_objects: int, on_object=None, labels: np.ndarray | None = None) -> int:
    """Click each centre (cycling through them) and accept; returns the number of objects accepted.
    With ``labels``, one correction click (at the centre of the largest error) comes before each
    accept, so that a learning session has something to learn from."""
    from napari_oaims.simulate.clicks import correction_clicks

    done = k = 0
    while done < n_objects:
        lid, yx = centres[k % len(centres)]
        k += 1
        result = session.click(yx)
        if result.mask.any():
            if labels is not None:
                for c in correction_clicks(result.mask, labels == lid, 1, mode="center"):
                    session.click((c.y, c.x), positive=c.positive)
            session.accept()
            done += 1
            if on_object is not None:
                on_object(done)
        else:
            session.clear()
        if k > 3 * n_objects + len(centres):
            break
    return done


def _quantiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, float)
    return {
        "n": int(len(a)),
        "p50_ms": round(float(np.percentile(a, 50)), 3) if len(a) else float("nan"),
        "p95_ms": round(float(np.percentile(a, 95)), 3) if len(a) else float("nan"),
        "max_ms": round(float(a.max()), 3) if len(a) else float("nan"),
    }


def _folder_sizes(path: Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for f in path.rglob("*"):
        if f.is_file():
            part = f.relative_to(path).parts[0] if len(f.relative_to(path).parts) > 1 else "(root)"
            sizes[part] = sizes.get(part, 0) + f.stat().st_size
    sizes["total"] = sum(sizes.values())
    return dict(sorted(sizes.items()))


def bench_autosave(workdir: Path, n_objects: int, adaptation: str, data: Path) -> dict[str, Any]:
    """Annotate ``n_objects`` objects with autosave on; time every event; measure the folder."""
    from napari_oaims.core.events import normalise_event
    from napari_oaims.engine import Engine
    from napari_oaims.store.session_store import SessionStore

    image, labels = _load_data(data)
    engine = Engine.pretrained(device="cpu", adaptation=adaptation)
    session = engine.session(image)
    store = SessionStore.create(workdir / "bench.oaims.zarr", image, engine=engine, overwrite=True)
    append_ms: list[float] = []
    append = store.append_event

    def timed_append(event):
        t0 = time.perf_counter()
        append(event)
        append_ms.append((time.perf_counter() - t0) * 1e3)

    store.append_event = timed_append  # instrument this instance only
    per_kind: dict[str, list[float]] = {}

    def autosave(event, result=None):
        t0 = time.perf_counter()
        store.autosave(session, event, result)
        per_kind.setdefault(event["kind"], []).append((time.perf_counter() - t0) * 1e3)

    session.subscribe(autosave)
    store.autosave(session, session.events[0])
    t0 = time.perf_counter()
    done = annotate(session, object_centres(labels), n_objects)
    seconds = time.perf_counter() - t0
    store.close()
    reopened = SessionStore.open(store.path, read_only=True)
    ok = reopened.events() == [normalise_event(e) for e in session.events]
    return {
        "objects": done,
        "events": len(session.events),
        "annotate_s": round(seconds, 1),
        "append_event": _quantiles(append_ms),
        "autosave_all": _quantiles([v for vs in per_kind.values() for v in vs]),
        "autosave_by_kind": {k: _quantiles(v) for k, v in sorted(per_kind.items())},
        "size_bytes": _folder_sizes(store.path),
        "reopened_equal": ok,
    }


# -- kill test -------------------------------------------------------------------------------------
def _child(mode: str, path: Path, data: Path, seed: int) -> None:
    """Annotate (or append events) with autosave forever, printing ``seq`` after each saved event."""
    from napari_oaims.store.session_store import SessionStore

    image, labels = _load_data(data)
    out = sys.stdout.fileno()
    if mode == "append":
        store = SessionStore.create(path, image)
        os.write(out, b"ready\n")
        template = {
            "time": 0.0,
            "kind": "predict",
            "object": 1,
            "plane": [],
            "coords": None,
            "label": None,
            "latency_ms": 12.5,
            "weights": "0" * 16,
            "extra": {"window": [0, 0, 64], "area": 100, "passes": 1},
        }
        seq = 0
        while True:
            store.append_event({**template, "seq": seq, "time": time.time(), "object": seq // 3 + 1})
            os.write(out, b"%d\n" % seq)
            seq += 1
    import torch

    from napari_oaims.engine import Engine

    torch.set_num_threads(1)
    engine = Engine.pretrained(device="cpu", adaptation="oaims" if mode == "adapt" else "none")
    session = engine.session(image)
    SessionStore.create(path, image, engine=engine, session=session)  # saves the session's first event
    for event in session.events:
        os.write(out, b"%d\n" % event["seq"])
    session.subscribe(lambda event, _result: os.write(out, b"%d\n" % event["seq"]))  # after the store's listener
    os.write(out, b"ready\n")
    centres = object_centres(labels)
    random.Random(seed).shuffle(centres)
    annotate(session, centres, 10**9, labels=labels if mode == "adapt" else None)


def kill_run(
    path: Path,
    mode: str = "annotate",
    delay_s: float = 1.0,
    data: Path = DATA,
    seed: int = 0,
    min_acks: int = 0,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """Start a child that autosaves into ``path``, SIGKILL it ``delay_s`` after it is ready (and has
    acknowledged ``min_acks`` events), then compare acknowledged events with the store."""
    from napari_oaims.store.session_store import SessionStore

    pkg_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([pkg_root, os.environ.get("PYTHONPATH", "")])}
    cmd = [
        sys.executable,
        "-m",
        "napari_oaims.evaluation.store",
        mode,
        str(path),
        "" if data is None else str(data),
        str(seed),
    ]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env)
        lines: list[bytes] = []
        ready = threading.Event()

        def read() -> None:
            for line in proc.stdout:
                if line == b"ready\n":
                    ready.set()
                else:
                    lines.append(line)
            ready.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        start = time.monotonic()
        ready.wait(timeout_s)
        while len(lines) < min_acks and proc.poll() is None and time.monotonic() - start < timeout_s:
            time.sleep(0.01)
        time.sleep(delay_s)
        alive = proc.poll() is None
        if alive:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        reader.join(10)
        err.seek(0)
        stderr = err.read().decode(errors="replace")[-2000:]
    if not alive:
        raise RuntimeError(f"the kill-test child exited by itself (code {proc.returncode}):\n{stderr}")
    acked = [int(x) for x in b"".join(lines).split(b"\n") if x.strip()]  # a torn last line is not an ack
    result: dict[str, Any] = {"mode": mode, "delay_s": round(delay_s, 3), "acked": len(acked)}
    try:
        store = SessionStore.open(path, read_only=True)
        events = store.events()
        stored = {e["seq"] for e in events}
        store.labels()[...]
        objects = store.objects()
        weights = _saved_weights(store, events)
        store.close()
    except (ValueError, FileNotFoundError) as exc:
        return {**result, "opened": False, "error": str(exc), "lost": len(acked), "extra": 0, "ok": False}
    lost = sorted(set(acked) - stored)
    extra = sorted(stored - set(acked))
    return {
        **result,
        "opened": True,
        "stored": len(stored),
        "objects": len(objects),
        "lost": len(lost),
        "extra": len(extra),
        "weights": weights,
        "ok": not lost and len(extra) <= 1 and weights.get("known", True),
    }


def _saved_weights(store, events: list[dict[str, Any]]) -> dict[str, Any]:
    """The saved adapted weights of a killed session: their hash (of the tensors, loaded), whether
    the log names them, and how many logged updates came after them."""
    p = store.model_path()
    if p is None:
        return {}
    from napari_oaims.model import load_weights, weights_hash
    from napari_oaims.store.resume import lost_updates

    model, _ = load_weights(p)  # a torn file would raise here
    h = weights_hash(model)
    updates = sum(e["kind"] == "update" for e in events)
    return {
        "hash": h,
        "known": any(e["weights"] == h for e in events),
        "updates": updates,
        "lost_updates": lost_updates(events, h),
    }


def bench_kill(workdir: Path, runs: int, mode: str, max_delay_s: float, data: Path, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    results = []
    for i in range(runs):
        m = mode if mode != "both" else ("annotate", "append")[i % 2]
        path = workdir / f"kill-{i}.oaims.zarr"
        r = kill_run(path, m, rng.uniform(0.0, max_delay_s), data, seed + i)
        w = r.get("weights") or {}
        lost_w = f", updates lost {w['lost_updates']}/{w['updates']}" if w.get("updates") else ""
        print(
            f"  kill run {i + 1}/{runs} ({m}, after {r['delay_s']:.2f} s): acked {r['acked']}, stored "
            f"{r.get('stored', '-')}, lost {r['lost']}{lost_w}, ok {r['ok']}",
            flush=True,
        )
        results.append(r)
    return {
        "runs": results,
        "all_ok": all(r["ok"] for r in results),
        "lost_total": sum(r["lost"] for r in results),
        "extra_max": max((r["extra"] for r in results), default=0),
    }


def _print_table(res: dict[str, Any]) -> None:
    a = res.get("autosave")
    if a:
        print(f"\nautosave, {a['objects']} objects / {a['events']} events (annotation took {a['annotate_s']} s)")
        print(f"{'what':<22}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
        rows = [("append_event", a["append_event"]), ("autosave (all)", a["autosave_all"])]
        rows += [(f"autosave: {k}", v) for k, v in a["autosave_by_kind"].items()]
        for name, q in rows:
            print(f"{name:<22}{q['n']:>6}{q['p50_ms']:>10.3f}{q['p95_ms']:>10.3f}{q['max_ms']:>10.3f}")
        print(f"\nsession size after {a['objects']} objects (reopened log equal: {a['reopened_equal']})")
        for part, size in a["size_bytes"].items():
            print(f"  {part:<12}{size / 1024:>10.1f} KiB")
    k = res.get("kill")
    if k:
        n = len(k["runs"])
        ok = sum(r["ok"] for r in k["runs"])
        print(
            f"\nkill -9 test: {ok}/{n} runs consistent; acknowledged events lost: {k['lost_total']}; "
            f"most unacknowledged events found in one run: {k['extra_max']}"
        )


def run(args) -> int:
    """``oaims bench store`` with the command's options ``args``."""
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="oaims-bench-store-"))
    workdir.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {"workdir": str(workdir), "cpu_count": os.cpu_count()}
    if args.objects > 0:
        print(f"annotating {args.objects} objects with autosave ...", flush=True)
        res["autosave"] = bench_autosave(workdir, args.objects, args.adaptation, args.data)
    if args.kill_runs > 0:
        print(f"kill test, {args.kill_runs} runs ...", flush=True)
        res["kill"] = bench_kill(workdir, args.kill_runs, args.kill_mode, args.kill_max_s, args.data, args.seed)
    _print_table(res)
    if args.out:
        write_json(res, args.out)
        print(f"saved {args.out}")
    return 0 if res.get("kill", {}).get("all_ok", True) else 1


if __name__ == "__main__":  # the kill-test child: python -m napari_oaims.evaluation.store MODE PATH DATA SEED
    _mode, _path, _data, _seed = sys.argv[1:5]
    _child(_mode, Path(_path), Path(_data) if _data else None, int(_seed))
