"""Make ``docs/screenshot.png``: napari with the OAIMS annotator at work on the nuclei sample, in
napari's default window (1089 x 630 under ``xvfb-run``'s screen).

    xvfb-run -a python docs/make_screenshot.py [OUT.png]

A simulated user accepts a few nuclei (one to three clicks each) and leaves one in progress with a
positive and a negative click, so the picture shows accepted objects, a preview and clicks.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

from napari_oaims.data import sample_nuclei
from napari_oaims.evaluation.metrics import dice
from napari_oaims.plugin.api import annotate, annotator
from napari_oaims.simulate.robot import click_in_region, correction_clicks

OUT = Path(__file__).resolve().parent / "screenshot.png"
ACCEPTED = 8
REGION = (slice(20, 260), slice(40, 330))  # rows, columns of the image shown


def main(out: Path = OUT) -> None:
    image, truth = sample_nuclei()
    viewer = napari.Viewer(title="napari-oaims")
    annotate(image, viewer=viewer, adaptation="oaims")
    widget = annotator(viewer)
    app = QApplication.instance()

    def settle() -> None:
        while widget.jobs.busy:
            app.processEvents()
            time.sleep(0.005)
        app.processEvents()

    settle()
    points, preview = widget.layers["points"], widget.layers["preview"]
    # nuclei inside the region shown (zoomed in), the largest first
    rows, cols = REGION
    crop = truth[rows, cols]
    ids, sizes = np.unique(crop[crop > 0], return_counts=True)
    inside = [int(i) for i, n in zip(ids, sizes) if np.count_nonzero(truth == i) == n]  # not cut by the border
    inside.sort(key=lambda i: -np.count_nonzero(truth == i))
    rng = np.random.default_rng(0)
    for t in inside[:ACCEPTED]:
        target = truth == t
        points.add(list(click_in_region(target)))
        settle()
        for _ in range(3):
            mask = preview.data.astype(bool)
            if dice(mask, target) > 0.9:
                break
            [c] = correction_clicks(mask, target, 1, rng, mode="center")
            widget.set_positive(c.positive)
            points.add([c.y, c.x])
            settle()
        widget.set_positive(True)
        widget.editor.accept()
        settle()
    # one object in progress: a positive click and a negative one beside it
    target = truth == inside[ACCEPTED]
    y, x = click_in_region(target)
    points.add([y, x])
    settle()
    widget.set_positive(False)
    ys, xs = np.nonzero(target)
    points.add([y, xs.max() + 6])
    settle()
    widget.set_positive(True)
    viewer.layers.selection.active = points
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari >= 0.9: scene.camera
    camera.center = ((rows.start + rows.stop) / 2, (cols.start + cols.stop) / 2)
    camera.zoom = 2.4
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    size = viewer.window._qt_window.size()
    viewer.screenshot(str(out), canvas_only=False, flash=False)
    print(f"saved {out} ({size.width()} x {size.height()} window)")
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
