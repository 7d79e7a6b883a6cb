"""mi_check variants for MI alone (issue 35, deliverable 7): how many accepted objects it asks
(``--held``), how much better they must be answered for an object's MI steps to be kept
(``--margin``, mean Dice), or that their mean gain be ``--t`` standard errors above zero.
Runs ``oaims bench adapt`` in this process with the variant patched in.

It patches ``guard.mean_dice_with`` of the 0.9.0 package (commit e2814cb; run it in a worktree of
that commit). The rows "first object undone" of ``research/issue-35.md`` also need
``mi_check_first``, which is in the package since 0.10.0 (``mi:mi_check_se=...`` runs those with
the package alone).

    OMP_NUM_THREADS=1 python research/adapt/mi_check_variants.py --held 16 --margin 0 -- \
        --image src/napari_oaims/data/nuclei2d_image.tif --labels src/napari_oaims/data/nuclei2d_labels.tif \
        --methods mi --shift invert --jobs 1 --device cpu --out OUT.json
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from napari_oaims.adapt import guard, oaims
from napari_oaims.cli.main import main as oaims_main
from napari_oaims.core.overlap import dice


def patch(held: int, margin: float, t: float | None = None) -> None:
    """``HELD`` and a margin in ``OAIMSAdapter._check_mi``; ``t``: keep the steps only when the
    held objects' mean gain is at least ``t`` standard errors of their per-object gains."""
    oaims.HELD = held
    original = guard.mean_dice_with

    def with_margin(engine, probes, other):
        if t is not None:
            return significant(engine, probes, other, t)
        after, before = original(engine, probes, other)
        return after - margin, before

    oaims.mean_dice_with = with_margin


def significant(engine, probes, other, t: float) -> tuple[float, float]:
    """(1, 0) when the per-object gains are significantly positive, else (0, 1)."""
    x = np.stack([p.x for p in probes])
    with engine.lock:
        now = engine.predict(x) > 0
        kept = {k: v.detach().clone() for k, v in engine.model.state_dict().items()}
        engine.model.load_state_dict(other)
        try:
            then = engine.predict(x) > 0
        finally:
            engine.model.load_state_dict(kept)
    gains = np.array([dice(a, p.target) - dice(b, p.target) for a, b, p in zip(now, then, probes)])
    se = gains.std(ddof=1) / np.sqrt(len(gains)) if len(gains) > 1 else np.inf
    return (1.0, 0.0) if gains.mean() > 0 and gains.mean() >= t * se else (0.0, 1.0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--held", type=int, default=oaims.HELD)
    parser.add_argument("--margin", type=float, default=0.0)
    parser.add_argument("--t", type=float, default=None)
    args, rest = parser.parse_known_args()
    patch(args.held, args.margin, args.t)
    sys.exit(oaims_main(["bench", "adapt", *[r for r in rest if r != "--"]]))
