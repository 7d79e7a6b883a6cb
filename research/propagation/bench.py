"""The small-scale run of `oaims bench propagate` recorded in README.md.

    python research/propagation/bench.py procedural 1      # 5 procedural volumes (one per kind)
    python research/propagation/bench.py stack 4           # 4 largest objects of nuclei3d_synthetic
    python research/propagation/bench.py memory 1024 ema   # 4 GiB lazily read Zarr (one method per process)
"""
import json
import sys
import tempfile
import time

import torch

torch.set_num_threads(1)
from napari_oaims.evaluation.propagate import BENCH_METHODS, bench_propagate  # noqa: E402
from napari_oaims.evaluation.propagate_memory import memory_check  # noqa: E402

what = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1
out = "research/propagation/results"
t0 = time.perf_counter()


def progress(done, total, what=""):
    print(f"{what} {done}/{total} {time.perf_counter() - t0:.0f}s", flush=True)


if what == "procedural":
    res = bench_propagate(BENCH_METHODS, data="procedural", n_per_kind=n, out=out, progress=progress)
elif what == "stack":
    data = "/work/shared/data/nuclei3d_synthetic/"
    res = bench_propagate(BENCH_METHODS, data="stack", stack=(data + "image.tif", data + "labels.tif"), max_objects=n,
                          out=out, progress=progress)
else:
    with tempfile.TemporaryDirectory() as tmp:
        res = memory_check(tmp, side=n, method=sys.argv[3] if len(sys.argv) > 3 else "ema")
    print(json.dumps(res, indent=1))
    sys.exit(0)
print(res["table"])
