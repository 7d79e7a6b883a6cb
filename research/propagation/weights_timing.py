"""Time ``Session.propagate`` (frozen, ema) on the stack of ``oaims bench napari --propagate`` with the
0.3.0 and the 0.4.0 packaged weights, interleaved in one process (first round a warm-up).

    OMP_NUM_THREADS=1 python research/propagation/weights_timing.py > research/propagation/weights_timing.txt
"""

import time

import numpy as np
import torch

from napari_oaims import Engine
from napari_oaims.evaluation.gui_propagate import propagation_stack

WEIGHTS = ("5eb3513865717c6b", "d57cb97eb645f3f6")  # 0.3.0, 0.4.0


def main(rounds: int = 6) -> None:
    torch.set_num_threads(1)
    image, target, click = propagation_stack(24, 128)
    engines = {h: Engine.for_base(h, device="cpu") for h in WEIGHTS}
    times: dict[tuple[str, str], list[float]] = {}
    for rep in range(rounds):
        for h, engine in engines.items():
            for method in ("frozen", "ema"):
                session = engine.session(image, plane_axes=(1, 2))
                session.click(click)
                t0 = time.perf_counter()
                mask = np.asarray(session.propagate(method=method).mask)
                dt = time.perf_counter() - t0
                if rep:
                    times.setdefault((h, method), []).append(dt)
                if rep == 1:
                    dice = 2 * (mask & target).sum() / (mask.sum() + target.sum())
                    print(h, method, "dice", round(float(dice), 3), "vox", int(mask.sum()), "true", int(target.sum()))
    for key, values in times.items():
        print(key, "median s", round(float(np.median(values)), 3))


if __name__ == "__main__":
    main()
