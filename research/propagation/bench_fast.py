"""ema with adapt_every=2 (half the adaptation cost) under the same protocol, procedural suite n=1.
    python research/propagation/bench_fast.py"""
import torch

torch.set_num_threads(1)
from napari_oaims.evaluation.propagate import bench_propagate  # noqa: E402

res = bench_propagate(("ema", "frozen"), data="procedural", n_per_kind=1, settings={"adapt_every": 2})
print(res["table"])
