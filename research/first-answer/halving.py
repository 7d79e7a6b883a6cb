"""Does the first-window check gain when it may halve the window more than once?

Replays the click benchmark (robot ``center``, fresh session per target) with
:func:`napari_oaims.answer.rescale` patched: ``none`` is the package (one halving at most);
``halveN`` halves up to N times while the model stays unsure and each smaller answer is surer
and not a speck.

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/first-answer/halving.py \
        --variants none,halve2,halve3 --sets runs/suites/lesions,nuclei,... [--out F.json]
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from napari_oaims import answer
from napari_oaims.core import regions

SHIPPED = answer.rescale
_spec = importlib.util.spec_from_file_location("edge_snap", Path(__file__).with_name("edge_snap.py"))
edge_snap = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(edge_snap)


def _halving(times: int):
    def rescale(session, key, prompts, window, logits):
        for _ in range(times):
            smaller, small_logits = SHIPPED(session, key, prompts, window, logits)
            if smaller is window:
                break
            window, logits = smaller, small_logits
            inside, _ = answer.window_answer(session, key, prompts, window, logits)
            _, _, wy, wx = window.clip(session.source.plane_shape)
            if regions.sureness(logits[wy, wx], inside) >= regions.SURE_LOGIT:
                break
        return window, logits

    return rescale


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="none,halve2,halve3")
    p.add_argument("--sets", default="nuclei")
    p.add_argument("--clicks", type=int, default=3)
    p.add_argument("--max-targets", type=int, default=30)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)

    def run_one(v: str, image: str, labels: str) -> dict:
        answer.rescale = SHIPPED if v == "none" else _halving(int(v[5:]))
        edge_snap.SHIPPED_RESCALE = answer.rescale
        try:
            return edge_snap.run("none", image, labels, args.clicks, True, args.max_targets)
        finally:
            answer.rescale = edge_snap.SHIPPED_RESCALE = SHIPPED

    edge_snap.sweep(args.sets, args.variants, args.out, run_one)


if __name__ == "__main__":
    main()
