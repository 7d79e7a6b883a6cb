"""The main thread's longest stall while the annotator runs *Propagate all* on the plugin's 3D
sample (every nucleus of its fullest slice), timed like ``oaims bench napari --propagate``: a
10 ms QTimer in napari's event loop, its longest gap between two ticks. Also the 3D Dice of each
propagated nucleus against the sample's ground truth.

    OMP_NUM_THREADS=1 xvfb-run -a python research/propagation/stall_all.py [repeats] [method]
"""

from __future__ import annotations

import sys
import time

import numpy as np


def main(repeats: int = 3, method: str = "frozen") -> None:
    import napari
    import torch
    from qtpy.QtCore import QEventLoop, QTimer

    from napari_oaims import Engine
    from napari_oaims.evaluation.metrics import dice
    from napari_oaims.plugin.api import annotate, annotator
    from napari_oaims.plugin.sample_data import volume_3d

    torch.set_num_threads(1)
    (image, _, _), (labels, _, _) = volume_3d()
    z = int(np.argmax([len(np.unique(p)) * 10**6 + np.count_nonzero(p) for p in labels]))
    engine = Engine.pretrained(device="cpu")
    viewer = napari.Viewer(show=False)
    annotate(image, viewer=viewer, engine=engine)
    widget = annotator(viewer)

    def settle(action=None) -> list[float]:
        ticks = [time.perf_counter()]
        loop, timer = QEventLoop(), QTimer()

        def tick() -> None:
            ticks.append(time.perf_counter())
            if not widget.busy and len(ticks) > 3:
                loop.quit()

        timer.timeout.connect(tick)
        timer.start(10)
        if action is not None:
            QTimer.singleShot(0, action)
        loop.exec()
        timer.stop()
        return list(np.diff(ticks) * 1e3)

    settle()
    viewer.dims.set_current_step(0, z)
    objects = widget.layers.objects()
    objects.data[z] = labels[z]
    objects.refresh()
    seeds = np.array(objects.data)
    stalls, seconds = [], []
    for n in range(repeats + 1):
        t0 = time.perf_counter()
        gaps = settle(lambda: widget.propagate_all(method))
        took = time.perf_counter() - t0
        out = np.asarray(objects.data)
        scores = []
        for v in sorted(set(np.unique(out)) - set(np.unique(seeds))):  # the propagated objects
            seed = int(np.bincount(labels[z][(out == v)[z]]).argmax())
            scores.append(dice(out == v, labels == seed))
        if n:  # the first run warms up
            stalls.append(max(gaps))
            seconds.append(took)
            print(
                f"run {n}: {took:.1f} s, longest stall {max(gaps):.0f} ms (p99 {np.percentile(gaps, 99):.0f} ms), "
                f"3D Dice {np.round(scores, 3).tolist()} mean {np.mean(scores):.3f}"
            )
        widget.undo()
        settle()
        assert np.array_equal(objects.data, seeds)
    print(
        f"{method}: longest main-thread stall over {repeats} runs {max(stalls):.0f} ms "
        f"(median {np.median(stalls):.0f} ms); median {np.median(seconds):.1f} s per Propagate all"
    )
    viewer.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3, sys.argv[2] if len(sys.argv) > 2 else "frozen")
