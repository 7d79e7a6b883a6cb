"""``oaims bench napari --propagate`` and ``--propagate-all``: propagation in a real napari viewer.

Both modes measure, in the same run, the longest stall of napari's main thread while the widget
propagates (a ``QTimer`` ticks every :data:`TICK_MS` ms in the event loop; the longest gap between
two ticks is the stall) and the widget's speed against the same call through the API:

* ``--propagate`` (:func:`run_propagate`): one object through a procedural stack with *Propagate*,
  against ``Session.propagate``;
* ``--propagate-all`` (:func:`run_propagate_all`): several touching objects, accepted in the
  widget on one slice (a click at each one's deepest point, then *Accept*), carried through the
  stack together with *Propagate all*, against ``Session.propagate_objects`` with the same seeds.

Needs a display (or Xvfb).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np

#: Interval (ms) of the main-thread timer whose longest gap is the stall.
TICK_MS = 10


def run_until_idle(widget, action: Callable[[], None] | None = None, timeout: float = 600.0) -> list[float]:
    """Run napari's event loop (calling ``action`` in it first) until ``widget`` is idle; the gaps
    (ms) between the ticks of a :data:`TICK_MS` ms timer meanwhile."""
    from qtpy.QtCore import QEventLoop, QTimer

    ticks = [time.perf_counter()]
    loop, timer = QEventLoop(), QTimer()
    end = ticks[0] + timeout

    def tick() -> None:
        ticks.append(time.perf_counter())
        if not widget.jobs.busy or ticks[-1] > end:
            loop.quit()

    timer.timeout.connect(tick)
    timer.start(TICK_MS)
    if action is not None:
        QTimer.singleShot(0, action)
    loop.exec()
    timer.stop()
    if widget.jobs.busy:
        raise TimeoutError("the annotator did not finish within the timeout")
    return list(np.diff(ticks) * 1e3)


def stall_summary(gaps: list[float], per_run: list[float]) -> dict:
    """The longest, 99th-percentile and median gap (ms) of the main-thread timer, and each run's longest."""
    return {
        "max_gap_ms": float(max(gaps)),
        "p99_gap_ms": float(np.percentile(gaps, 99)),
        "median_gap_ms": float(np.median(gaps)),
        "per_run_max_ms": [round(v, 1) for v in per_run],
    }


def propagation_stack(depth: int, side: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """A procedural ``depth`` x ``side`` x ``side`` stack with one smooth object through most of it:
    image, the object's mask, and a click at the centre of its largest slice."""
    from napari_oaims.simulate.robot import click_in_region
    from napari_oaims.training.volumes import VolumeSpec, make_volume

    image, labels = make_volume(VolumeSpec(kind="ellipsoid", shape=(depth, side, side), seed=seed, neighbours=1))
    target = labels == 1
    z = int(np.argmax(target.sum((1, 2))))
    y, x = (int(v) for v in click_in_region(target[z]))
    return image, target, (z, y, x)


def run_propagate(args) -> int:
    """The ``--propagate`` mode (see the module docstring).

    The widget's session and a second session on the same engine get the same click on the
    object's largest slice. Then, ``--repeats`` times (after one warm-up of each), back to back
    in alternating order, the API propagates (``Session.propagate``, then undo) and the widget
    propagates (its Propagate
    action, called from napari's event loop and timed from the call to the moment the widget is
    idle again, the preview updated; then its undo) with the same method. From just before that
    call until the widget is idle, a ``QTimer`` ticks every :data:`TICK_MS` ms in the event loop:
    the longest gap between two ticks is the stall. The speed ratio is the median over the
    repeats of API time / widget time.
    """
    import napari
    import torch

    from napari_oaims import Engine
    from napari_oaims.evaluation.common import format_table
    from napari_oaims.propagate.settings import METHODS

    if args.method not in METHODS:
        print(f"unknown propagation method {args.method!r}; use one of {METHODS}")
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    depth = args.stack or 24
    image, target, click = propagation_stack(depth, args.side)
    engine = Engine.pretrained(device=args.device, adaptation=args.adaptation)
    api = engine.session(image, plane_axes=(1, 2))
    api.click(click)
    with opened_annotator(image, engine, args.hidden) as (viewer, widget, settle):
        if widget is None:
            return 1
        viewer.dims.set_current_step(0, click[0])
        widget.layers["points"].add(list(click))
        settle()
        api_s, widget_s, gaps, stalls, api_compute, widget_compute = [], [], [], [], [], []
        slices = None

        def api_run() -> tuple:
            t0 = time.perf_counter()
            result = api.propagate(method=args.method)
            t_api = time.perf_counter() - t0
            api.undo()
            return result, t_api

        def widget_run() -> tuple:
            events = len(widget.session.events)
            started: list[float] = []

            def go() -> None:
                started.append(time.perf_counter())
                widget.stack.propagate(args.method)

            run_gaps = settle(go)
            t_widget = time.perf_counter() - started[0]
            done = [e for e in widget.session.events[events:] if e["kind"] == "propagate"]
            mask = widget.session.mask
            if done:
                widget.editor.undo()
                settle()
            return done, mask, run_gaps, t_widget

        for n in range(args.repeats + 1):
            if n % 2:  # the order alternates: a drift of the machine's load favours neither
                (result, t_api), (done, mask, run_gaps, t_widget) = api_run(), widget_run()
            else:
                (done, mask, run_gaps, t_widget), (result, t_api) = widget_run(), api_run()
            if not done:
                print("the widget's propagation changed nothing (see the notifications above)")
                return 1
            same = bool(np.array_equal(mask, result.mask))
            if n == 0:
                continue  # warm-up
            slices = int(result.info.get("total", 0))
            api_s.append(t_api)
            widget_s.append(t_widget)
            api_compute.append(float(result.info["time_ms"]) / 1e3)
            widget_compute.append(float(done[-1]["extra"]["time_ms"]) / 1e3)
            gaps.extend(run_gaps)
            stalls.append(max(run_gaps))
            if not same:
                print(f"repeat {n}: the widget's mask differs from the API's")
        # each repeat's pair of runs, back to back, gives one ratio: the median of those is the speed
        speed = float(np.median(np.asarray(api_s) / np.asarray(widget_s)))
        rows = {
            name: {
                "runs": len(wall),
                "median_s": float(np.median(wall)),
                "max_s": max(wall),
                "compute_median_s": float(np.median(compute)),
            }
            for name, wall, compute in (
                ("API Session.propagate", api_s, api_compute),
                ("napari Propagate", widget_s, widget_compute),
            )
        }
        stall = stall_summary(gaps, stalls)
        print(
            f"napari {napari.__version__}, propagation ({args.method}) through a {depth} x {args.side} x "
            f"{args.side} stack ({slices} slices), device {engine.device}, {args.repeats} runs after 1 warm-up, "
            f"{'hidden' if args.hidden else 'shown'} window, torch threads {torch.get_num_threads()}"
        )
        print(format_table(rows, ["runs", "median_s", "max_s", "compute_median_s"]))
        print("(compute: the propagation's own time, in the worker thread for the widget)")
        print_stall_and_speed(stall, speed, "propagates")
        save_mode(
            args,
            engine,
            rows,
            stall,
            speed,
            api_s,
            widget_s,
            slices=slices,
            api_compute_s=[round(v, 4) for v in api_compute],
            widget_compute_s=[round(v, 4) for v in widget_compute],
        )
        return 0


@contextmanager
def opened_annotator(image: np.ndarray, engine, hidden: bool):
    """A napari viewer annotating ``image`` with ``engine``: yields it, the annotator widget and
    ``settle(action=None)`` (:func:`run_until_idle` on the widget); the widget is None, after a
    message, when the annotator could not open the image. The viewer is closed on exit."""
    import napari

    from napari_oaims.plugin.api import annotate, annotator

    viewer = napari.Viewer(show=not hidden)
    try:
        annotate(image, viewer=viewer, engine=engine)
        widget = annotator(viewer)

        def settle(action=None) -> list[float]:
            return run_until_idle(widget, action)

        settle()
        if widget.session is None:
            print("the annotator could not open the image (see the notifications above)")
            widget = None
        yield viewer, widget, settle
    finally:
        viewer.close()


def print_stall_and_speed(stall: dict, speed: float, doing: str) -> None:
    """The two result lines of a propagation mode: the main thread's longest stall while the
    widget ``doing`` (e.g. "propagates all"), and the widget's speed against the API's."""
    print(
        f"main-thread stall (longest gap of a {TICK_MS} ms timer while the widget {doing}): "
        f"{stall['max_gap_ms']:.0f} ms (p99 {stall['p99_gap_ms']:.0f} ms; target <= 100 ms)"
    )
    print(f"widget speed / API speed (median over the repeats' pairs): {speed:.2f} (target >= 0.80)")


def save_mode(args, engine, rows, stall: dict, speed: float, api_s, widget_s, **fields) -> None:
    """Write a propagation mode's results to ``args.out`` (when given) as JSON: the settings, napari's
    version, the device, the summary rows, the stall, the speed ratio, the API and widget times and
    the mode's own ``fields``."""
    if not args.out:
        return
    import napari

    from napari_oaims.evaluation.common import write_json

    write_json(
        {
            "settings": {k: str(v) for k, v in vars(args).items() if k != "func"},
            "napari": napari.__version__,
            "device": str(engine.device),
            "summary": rows,
            "stall": stall,
            "speed_ratio": speed,
            "api_s": [round(v, 4) for v in api_s],
            "widget_s": [round(v, 4) for v in widget_s],
            **fields,
        },
        args.out,
    )
    print(f"saved {args.out}")


def touching_volume(depth: int, side: int, objects: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A procedural ``depth`` x ``side`` x ``side`` stack of ``objects`` deformed ellipsoids that
    touch where they meet (:func:`napari_oaims.training.synth.volume`; 32 x 96 x 96 with 6 objects
    and ``seed=0`` is the plugin's 3D sample): image and labels."""
    from napari_oaims.training.synth import volume

    return volume(np.random.default_rng(seed), (depth, side, side), objects)


def seeds_slice(labels: np.ndarray) -> int:
    """The slice with the most objects (of those, the one with the largest labelled area)."""

    def fullness(z: int) -> tuple[int, int]:
        return len(np.unique(labels[z][labels[z] > 0])), int(np.count_nonzero(labels[z]))

    return max(range(len(labels)), key=fullness)


def accept_slice(widget, labels: np.ndarray, z: int, settle: Callable[..., list[float]]) -> int:
    """Accept the objects of slice ``z`` in the widget as a user would: a click at each one's
    deepest point (largest object first), then *Accept* (*Clear* when the model found nothing);
    the number accepted."""
    from napari_oaims.core.clicks import deepest_point

    plane = labels[z]
    ids, areas = np.unique(plane[plane > 0], return_counts=True)
    accepted = 0
    for k in ids[np.argsort(-areas, kind="stable")]:
        y, x = deepest_point(plane == k)
        widget.layers["points"].add([z, int(y), int(x)])
        settle()
        found = widget.layers["preview"].data[z].any()
        settle(widget.editor.accept if found else widget.editor.clear)
        accepted += bool(found)
    return accepted


def object_dice(result: np.ndarray, seeds: np.ndarray, labels: np.ndarray, z: int) -> list[float]:
    """3D Dice of each object of ``result`` not in ``seeds`` and present on slice ``z`` against the
    true object under most of its object voxels there (0 for one on background only there)."""
    from napari_oaims.core.overlap import dice

    scores = []
    for v in sorted(set(np.unique(result)) - set(np.unique(seeds)) - {0}):
        on_slice = (result == v)[z]
        if not on_slice.any():  # not carried from slice z
            continue
        under = labels[z][on_slice]
        under = under[under > 0]
        scores.append(dice(result == v, labels == int(np.bincount(under).argmax())) if under.size else 0.0)
    return scores


def run_propagate_all(args) -> int:
    """The ``--propagate-all`` mode (see the module docstring).

    A :func:`touching_volume` of ``--stack`` slices (default 32) of ``--side`` px with
    ``--objects`` objects; on its :func:`seeds_slice` the widget accepts each object
    (:func:`accept_slice`). The widget's seeds (the objects layer on that slice) and barrier
    (the rest of the layer) are given to ``Session.propagate_objects`` of a new session on the same
    engine too. Then, ``--repeats`` times after one warm-up of each, back to back in alternating
    order: the API call, and the widget's *Propagate all* (called from napari's event loop, timed
    from the call until the widget is idle, the objects in the layer; then its undo, which takes
    them all back), the main-thread timer ticking meanwhile. The speed ratio is the median over
    the repeats of API time / widget time; the 3D Dice of each propagated object against the
    truth is reported for the last run.
    """
    import napari
    import torch

    from napari_oaims import Engine
    from napari_oaims.evaluation.common import format_table
    from napari_oaims.propagate.settings import METHODS

    if args.method not in METHODS:
        print(f"unknown propagation method {args.method!r}; use one of {METHODS}")
        return 2
    if args.objects < 2:
        print(f"--objects must be at least 2 (several objects to propagate together), got {args.objects}")
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    depth = args.stack or 32
    image, labels = touching_volume(depth, args.side, args.objects)
    z = seeds_slice(labels)
    engine = Engine.pretrained(device=args.device, adaptation=args.adaptation)
    with opened_annotator(image, engine, args.hidden) as (viewer, widget, settle):
        if widget is None:
            return 1
        viewer.dims.set_current_step(0, z)
        accepted = accept_slice(widget, labels, z, settle)
        got = widget.stack.seeds()
        if isinstance(got, str) or accepted < 2:
            print(f"the widget accepted {accepted} objects on slice {z}: {got if isinstance(got, str) else 'too few'}")
            return 1
        plane, seeds, barrier = got
        axis = widget.stack.axis()
        top = max(int(seeds.max()), int(barrier.max()))
        objects_layer = widget.layers.objects()
        before = np.array(objects_layer.data)

        def api_run() -> tuple:
            session = engine.session(image)
            session.object_id = top + 1  # as the widget numbers them: after every label of the layer
            t0 = time.perf_counter()
            result = session.propagate_objects(seeds, plane=plane, axis=axis, method=args.method, barrier=barrier)
            return result, time.perf_counter() - t0

        def widget_run() -> tuple:
            started: list[float] = []

            def go() -> None:
                started.append(time.perf_counter())
                widget.stack.propagate_all(args.method)

            run_gaps = settle(go)
            t_widget = time.perf_counter() - started[0]
            after = np.array(objects_layer.data)
            widget.editor.undo()
            settle()
            if not np.array_equal(objects_layer.data, before):
                raise RuntimeError("undo did not take the propagated objects back")
            return after, run_gaps, t_widget

        api_s, widget_s, gaps, stalls, counts = [], [], [], [], []
        after = result = None
        for n in range(args.repeats + 1):
            if n % 2:  # the order alternates: a drift of the machine's load favours neither
                (result, t_api), (after, run_gaps, t_widget) = api_run(), widget_run()
            else:
                (after, run_gaps, t_widget), (result, t_api) = widget_run(), api_run()
            made = len(set(np.unique(after)) - set(np.unique(before)))
            if not made:
                print("the widget's Propagate all made no object (see the notifications above)")
                return 1
            if n == 0:
                continue  # warm-up
            api_s.append(t_api)
            widget_s.append(t_widget)
            gaps.extend(run_gaps)
            stalls.append(max(run_gaps))
            counts.append((len(result.objects), made))
        speed = float(np.median(np.asarray(api_s) / np.asarray(widget_s)))
        rows = {
            name: {"runs": len(wall), "objects": n, "median_s": float(np.median(wall)), "max_s": max(wall)}
            for name, wall, n in (
                ("API Session.propagate_objects", api_s, counts[-1][0]),
                ("napari Propagate all", widget_s, counts[-1][1]),
            )
        }
        stall = stall_summary(gaps, stalls)
        scores = object_dice(after, before, labels, z)
        print(
            f"napari {napari.__version__}, Propagate all ({args.method}) of {accepted} objects accepted on slice {z} "
            f"of a {depth} x {args.side} x {args.side} stack of {args.objects} touching objects, device "
            f"{engine.device}, {args.repeats} runs after 1 warm-up, {'hidden' if args.hidden else 'shown'} window, "
            f"torch threads {torch.get_num_threads()}"
        )
        print(format_table(rows, ["runs", "objects", "median_s", "max_s"]))
        print_stall_and_speed(stall, speed, "propagates all")
        print(f"3D Dice of the propagated objects: {np.round(scores, 3).tolist()}, mean {np.mean(scores):.3f}")
        save_mode(
            args,
            engine,
            rows,
            stall,
            speed,
            api_s,
            widget_s,
            seeds_slice=z,
            accepted=accepted,
            dice=[round(v, 4) for v in scores],
        )
        return 0
