"""Dice@1/@2 and first-mask area of the shipped weights and a candidate on validation sets, with
and without the first-window check of ``answer.rescale`` (``answer.checks_scale`` patched to False).

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/base-model/first_window_gate.py soft_cells,halo [CANDIDATE]
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import bench_val  # noqa: E402

from napari_oaims import answer  # noqa: E402

torch.set_num_threads(1)
checks_scale = answer.checks_scale
weights = {"shipped": None, "candidate": sys.argv[2] if len(sys.argv) > 2 else "runs/c35/candidate.safetensors"}
for s in sys.argv[1].split(","):
    for gate in (True, False):
        answer.checks_scale = checks_scale if gate else (lambda *a, **k: False)
        for name, w in weights.items():
            r = bench_val.bench_set(f"runs/val/{s}/image.tif", f"runs/val/{s}/labels.tif", w)
            print(s, "check" if gate else "no check", name, r["dice"][:2], r["area_ratio_median"], flush=True)
