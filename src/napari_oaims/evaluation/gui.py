"""``oaims bench napari``: click-to-preview latency inside a real napari viewer.

One click at the centre of each of ``--clicks`` nuclei of the shipped image (after a few warm-up
clicks). A click is timed from the Points layer's data event (the moment napari adds the point)
to the preview Labels layer's ``labels_update`` event (the widget's partial update; ``set_data``
for a full refresh): its displayed slice holds the new mask and the canvas has been told to
redraw, so the time includes the widget, its worker thread, the model and
the layer refresh. The model's own time (the session's ``predict`` latency) is reported beside it.
Needs a display (or Xvfb).
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np


def _percentiles(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, float)
    return {
        "clicks": len(v),
        "p50_ms": float(np.percentile(v, 50)),
        "p95_ms": float(np.percentile(v, 95)),
        "mean_ms": float(v.mean()),
        "max_ms": float(v.max()),
    }


def run(args) -> int:
    import napari
    import torch
    from qtpy.QtWidgets import QApplication

    from napari_oaims.data import sample_nuclei
    from napari_oaims.evaluation.common import format_table, target_ids, write_json
    from napari_oaims.plugin.api import annotate, annotator
    from napari_oaims.simulate.robot import click_in_region

    if args.threads:
        torch.set_num_threads(args.threads)
    image, labels = sample_nuclei()
    viewer = napari.Viewer(show=not args.hidden)
    app = QApplication.instance()
    try:
        annotate(image, viewer=viewer, device=args.device, adaptation=args.adaptation)
        widget = annotator(viewer)

        def settle(timeout: float = 120.0) -> None:
            end = time.perf_counter() + timeout
            while widget.busy:
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

        ids = target_ids(labels, min_area=30)
        picks = [ids[i] for i in np.linspace(0, len(ids) - 1, args.warmup + args.clicks).astype(int)]
        gui_ms, model_ms = [], []
        for n, t in enumerate(picks):
            added.clear()
            refreshed.clear()
            points.add(list(click_in_region(labels == t)))
            settle()
            if not added or not refreshed:
                print(f"click {n}: no preview refresh (empty prediction?); not counted")
            elif n >= args.warmup:
                gui_ms.append((refreshed[-1] - added[0]) * 1e3)
                predict = [e for e in widget.session.events if e["kind"] == "predict"][-1]
                model_ms.append(float(predict["latency_ms"]))
            if preview.data.any():
                widget.accept()
            else:
                widget.clear()
            settle()
        if not gui_ms:
            print("no click was measured")
            return 1
        engine = widget.engine
        rows = {
            "napari click->preview": _percentiles(gui_ms),
            "model (session predict)": _percentiles(model_ms),
            "napari overhead": _percentiles([g - m for g, m in zip(gui_ms, model_ms)]),
        }
        hardware = {
            "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "device": str(engine.device),
            "cuda": torch.cuda.get_device_name() if engine.device.type == "cuda" else None,
        }
        print(
            f"napari {napari.__version__}, device {engine.device}, adaptation {engine.adaptation}, "
            f"{len(gui_ms)} clicks after {args.warmup} warm-up, {'hidden' if args.hidden else 'shown'} window"
        )
        print(format_table(rows, ["clicks", "p50_ms", "p95_ms", "mean_ms", "max_ms"]))
        if args.out:
            write_json(
                {
                    "settings": {k: str(v) for k, v in vars(args).items() if k != "func"},
                    "hardware": hardware,
                    "napari": napari.__version__,
                    "summary": rows,
                    "click_to_preview_ms": [round(v, 3) for v in gui_ms],
                    "model_ms": [round(v, 3) for v in model_ms],
                },
                args.out,
            )
            print(f"saved {args.out}")
        return 0
    finally:
        viewer.close()
