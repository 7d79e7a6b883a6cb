"""``oaims bench clicks`` with corrections, while the evidence follows the snap, answered by
variant SNAPVAR: ``A`` the model's own (what shipped), ``B`` the snap of the correction's logits
with every click as a marker. Ran on the first attempt's code (candidates chosen by the larger
mean gain), which was not committed: it differs from the shipped ``EdgeEvidence.choice`` only
in that choice.

    SNAPVAR=B PYTHONPATH=src OMP_NUM_THREADS=1 python research/first-answer/snap_corrections.py bench clicks \
        --image runs/suites/lesions/image.tif --labels runs/suites/lesions/labels.tif --methods model \
        --clicks 10 --device cpu --edges auto --max-targets 30 --out OUT.json
"""

import os, sys
import numpy as np
from napari_oaims import answer
from napari_oaims.core import edges

V = os.environ["SNAPVAR"]
ORIG = answer.edge_answer


def patched(session, key, prompts, window, logits, inside, where, shown=None, flat=False):
    first = answer.is_first_answer(session, prompts)
    follow = session.edge_evidence.choice() if session.engine.edges == "auto" else None
    if first or follow != "snap" or not inside.any():
        return ORIG(session, key, prompts, window, logits, inside, where, shown, flat)
    if V == "A":
        return inside, None
    ys, xs = where
    _, _, wy, wx = window.clip(session.source.plane_shape)
    offset = np.array([ys.start, xs.start])
    negatives = [p.points for p in prompts if not p.positive and p.kind in ("click", "scribble")]
    neg = np.concatenate(negatives) if negatives else np.zeros((0, 2))
    crop = session.source.crop(key, window)[wy, wx]
    snap = edges.snap_to_edges(crop, logits[wy, wx], inside, answer.positive_points(prompts) - offset, neg - offset)
    return snap, "snap"


answer.edge_answer = patched
from napari_oaims.cli import main

sys.exit(main(sys.argv[1:]))
