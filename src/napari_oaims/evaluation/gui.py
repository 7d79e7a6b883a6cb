"""``oaims bench napari``: click-to-preview latency inside a real napari viewer, against the API.

The image is the shipped 512 x 512 nuclei sample, or with ``--stack N`` an N x 256 x 256 stack
whose planes are shifted crops of it. One click at the centre of each of ``--clicks`` nuclei
(after ``--warmup`` clicks), each given twice in turn: through the Python API
(``Session.click`` on a second engine with the same settings) and in the annotator widget. A
widget click is timed from the Points layer's data event (the moment napari adds the point) to
the preview Labels layer's ``labels_update`` event (the widget's partial update; ``set_data`` for
a full refresh): the displayed slice holds the new mask and the canvas has been told to redraw,
so the time includes the widget, its worker thread, the model and the layer update. The time
from the call that adds the point (napari's own handling of a new point included) is reported
too, and so is the model's share (the session's ``predict`` latency). After each click the object
is accepted (cleared if empty), in the API and in the widget alike. Needs a display (or Xvfb).

With ``--propagate`` or ``--propagate-all`` it measures propagation instead
(:mod:`napari_oaims.evaluation.gui_propagate`): the longest stall of napari's main thread while
the widget's *Propagate* or *Propagate all* runs, and its speed against the API in the same run.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass

import numpy as np

#: Side of the planes of a ``--stack`` image and how far (px) each plane's crop moves from the last.
STACK_SIDE = 256
STACK_SHIFT = (7, 5)


@dataclass
class Target:
    """One measured click: full image coordinates, and its plane in a stack (None: a 2D image)."""

    coords: tuple[int, ...]
    plane: int | None


def _percentiles(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, float)
    return {
        "clicks": len(v),
        "p50_ms": float(np.percentile(v, 50)),
        "p95_ms": float(np.percentile(v, 95)),
        "mean_ms": float(v.mean()),
        "max_ms": float(v.max()),
    }


def stack_from(image: np.ndarray, labels: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``depth`` x 256 x 256 stack of crops of ``image`` (and ``labels``) that shift from plane to plane."""
    room = np.array(image.shape) - STACK_SIDE
    offsets = [(z * STACK_SHIFT[0] % (room[0] + 1), z * STACK_SHIFT[1] % (room[1] + 1)) for z in range(depth)]
    crop = [(slice(y, y + STACK_SIDE), slice(x, x + STACK_SIDE)) for y, x in offsets]
    return np.stack([image[c] for c in crop]), np.stack([labels[c] for c in crop])


def targets(labels: np.ndarray, n: int, min_area: int = 30) -> list[Target]:
    """``n`` clicks at the centres of whole objects, spread over the image (and the planes of a stack)."""
    from napari_oaims.simulate.robot import click_in_region

    out = []
    for i in range(n):
        z = None if labels.ndim == 2 else (i * 7) % labels.shape[0]
        plane = labels if z is None else labels[z]
        inner = plane[1:-1, 1:-1]
        ids, counts = np.unique(inner[inner > 0], return_counts=True)
        whole = [int(k) for k, c in zip(ids, counts) if c >= min_area and c == np.count_nonzero(plane == k)]
        k = whole[(i * 11) % len(whole)]
        yx = tuple(int(v) for v in click_in_region(plane == k))
        out.append(Target(yx if z is None else (z, *yx), z))
    return out


def _api_click(session, target: Target) -> float:
    t0 = time.perf_counter()
    result = session.click(target.coords)
    ms = (time.perf_counter() - t0) * 1e3
    if result.area:
        session.accept()
    else:
        session.clear()
    return ms


def run(args) -> int:
    if getattr(args, "propagate", False) and getattr(args, "propagate_all", False):
        print("choose one of --propagate and --propagate-all")
        return 2
    if getattr(args, "propagate", False):
        from napari_oaims.evaluation.gui_propagate import run_propagate

        return run_propagate(args)
    if getattr(args, "propagate_all", False):
        from napari_oaims.evaluation.gui_propagate import run_propagate_all

        return run_propagate_all(args)
    import napari
    import torch
    from qtpy.QtWidgets import QApplication

    from napari_oaims import Engine
    from napari_oaims.data import sample_nuclei
    from napari_oaims.evaluation.common import format_table, write_json
    from napari_oaims.plugin.api import annotate, annotator

    if args.threads:
        torch.set_num_threads(args.threads)
    image, labels = sample_nuclei()
    depth = getattr(args, "stack", 0)
    if depth:
        image, labels = stack_from(image, labels, depth)
    picks = targets(labels, args.warmup + args.clicks)
    api = Engine.pretrained(device=args.device, adaptation=args.adaptation).session(image)
    viewer = napari.Viewer(show=not args.hidden)
    app = QApplication.instance()
    try:
        annotate(image, viewer=viewer, device=args.device, adaptation=args.adaptation)
        widget = annotator(viewer)

        def settle(timeout: float = 120.0) -> None:
            end = time.perf_counter() + timeout
            while widget.jobs.busy:
                if time.perf_counter() > end:
                    raise TimeoutError("the annotator did not finish within the timeout")
                app.processEvents()
                time.sleep(0.001)
            app.processEvents()

        settle()
        if widget.session is None:
            print("the annotator could not open the image (see the notifications above)")
            return 1
        points, preview = widget.layers["points"], widget.layers["preview"]
        added: list[float] = []
        refreshed: list[float] = []
        points.events.data.connect(
            lambda e: added.append(time.perf_counter()) if str(e.action) == "added" else None, position="first"
        )
        # a full refresh emits set_data; the widget's partial update (data_setitem) emits labels_update
        preview.events.set_data.connect(lambda e: refreshed.append(time.perf_counter()))
        preview.events.labels_update.connect(lambda e: refreshed.append(time.perf_counter()))

        api_ms, gui_ms, call_ms, model_ms = [], [], [], []
        for n, target in enumerate(picks):
            measured = n >= args.warmup
            t_api = _api_click(api, target)
            if target.plane is not None and viewer.dims.current_step[0] != target.plane:
                viewer.dims.set_current_step(0, target.plane)  # the user goes to the slice first
                settle()
            added.clear()
            refreshed.clear()
            t_call = time.perf_counter()
            points.add(list(target.coords))
            settle()
            if not added or not refreshed:
                print(f"click {n}: no preview refresh (empty prediction?); not counted")
            elif measured:
                api_ms.append(t_api)
                gui_ms.append((refreshed[-1] - added[0]) * 1e3)
                call_ms.append((refreshed[-1] - t_call) * 1e3)
                predict = [e for e in widget.session.events if e["kind"] == "predict"][-1]
                model_ms.append(float(predict["latency_ms"]))
            if preview.data.any():
                widget.editor.accept()
            else:
                widget.editor.clear()
            settle()
        if not gui_ms:
            print("no click was measured")
            return 1
        engine = widget.engine
        rows = {
            "API Session.click": _percentiles(api_ms),
            "napari click->preview": _percentiles(gui_ms),
            "napari, from adding the point": _percentiles(call_ms),
            "model in napari (predict)": _percentiles(model_ms),
            "napari overhead": _percentiles([g - m for g, m in zip(gui_ms, model_ms)]),
        }
        ratio = rows["napari click->preview"]["p50_ms"] / rows["API Session.click"]["p50_ms"]
        hardware = {
            "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "device": str(engine.device),
            "cuda": torch.cuda.get_device_name() if engine.device.type == "cuda" else None,
        }
        what = f"{depth} x {STACK_SIDE} x {STACK_SIDE} stack" if depth else f"{image.shape[0]} x {image.shape[1]} image"
        print(
            f"napari {napari.__version__}, {what}, device {engine.device}, adaptation {engine.adaptation}, "
            f"{len(gui_ms)} clicks after {args.warmup} warm-up, {'hidden' if args.hidden else 'shown'} window"
        )
        print(format_table(rows, ["clicks", "p50_ms", "p95_ms", "mean_ms", "max_ms"]))
        print(f"napari / API p50: {ratio:.2f}x")
        if args.out:
            write_json(
                {
                    "settings": {k: str(v) for k, v in vars(args).items() if k != "func"},
                    "hardware": hardware,
                    "napari": napari.__version__,
                    "summary": rows,
                    "ratio_p50": ratio,
                    "api_ms": [round(v, 3) for v in api_ms],
                    "click_to_preview_ms": [round(v, 3) for v in gui_ms],
                    "from_adding_the_point_ms": [round(v, 3) for v in call_ms],
                    "model_ms": [round(v, 3) for v in model_ms],
                },
                args.out,
            )
            print(f"saved {args.out}")
        return 0
    finally:
        viewer.close()
