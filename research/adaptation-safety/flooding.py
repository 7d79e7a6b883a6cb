"""Flooding (issue 24, failure 2): MI on the procedural flooding suite, then what the adapted model
answers to centre clicks on the shipped nuclei (a check of "background everywhere").

    OMP_NUM_THREADS=1 python research/adaptation-safety/flooding.py TARGETS SPEC [SPEC ...] > out.jsonl

Each SPEC is an adaptation (e.g. ``mi``, ``mi:mi_lr=1e-3``); run it with ``PYTHONPATH`` pointing at
another checkout's ``src`` to measure that version (the suite module is copied there).
"""

import json
import sys

import numpy as np
import torch

from napari_oaims import sample_nuclei
from napari_oaims.evaluation.adapt import order_targets
from napari_oaims.evaluation.common import ModelMethod, Protocol, run_targets, summary_row, target_ids
from napari_oaims.evaluation.suites import flooding
from napari_oaims.simulate.clicks import click_in_region

torch.set_num_threads(1)
n = int(sys.argv[1])
image, labels = flooding(0, tiles=(3, 5))
ids = order_targets(target_ids(labels), "random", 0)[:n]
nuc_image, nuc_labels = sample_nuclei()
nuc_ids = target_ids(nuc_labels)[::6][:20]


def nuclei_answers(engine) -> tuple[float, int]:
    """Mean Dice of one centre click per nucleus (no learning: a fresh session, cleared) and how many were empty."""
    s = engine.session(nuc_image)
    scores, empty = [], 0
    for lid in nuc_ids:
        t = nuc_labels == lid
        m = s.click(click_in_region(t)).mask
        scores.append(2 * (m & t).sum() / (m.sum() + t.sum()))
        empty += not m.any()
        s.clear()
    return float(np.mean(scores)), empty


for spec in sys.argv[2:]:
    engine = Protocol(first_window=256, device="cpu").make_engine(spec)
    method = ModelMethod(engine, image)
    res = run_targets(method, labels, ids, Protocol().make_robot(), 10)
    row = summary_row(res)
    ev = method.session.events
    clicks = [e for e in ev if e["kind"] == "click"]
    ups = [e["extra"] for e in ev if e["kind"] == "update"]
    mi = [u for u in ups if u["method"] == "mi"]
    empty_pos = sum(
        1
        for i, e in enumerate(ev)
        if e["kind"] == "click"
        and e["label"] == 1
        and next(x for x in ev[i + 1 :] if x["kind"] == "predict")["extra"]["area"] == 0
    )
    adapter = engine.adapter
    engine.adaptation = "none"  # answer the nuclei with the adapted weights, learning nothing more
    nuc_dice, nuc_empty = nuclei_answers(engine)
    print(
        json.dumps(
            {
                "spec": spec,
                "targets": n,
                "dice@1/5/10": [round(row[f"dice@{k}"], 3) for k in (1, 5, 10)],
                "dice@1_per_target": [round(c[0], 2) for c in res["curves"]],
                "first_empty_target": next((i for i, c in enumerate(res["curves"]) if c[0] == 0), None),
                "negative_share": round(sum(e["label"] == 0 for e in clicks) / len(clicks), 3),
                "positive_clicks_answered_empty": f"{empty_pos}/{sum(e['label'] == 1 for e in clicks)}",
                "mi_steps": len(mi),
                "rolled_back": sum(u["rolled_back"] for u in ups),
                "reasons": sorted({str(u["reason"]).split(" (")[0] for u in ups if u["rolled_back"]}),
                "nuclei_centre_click_dice": round(nuc_dice, 3),
                "nuclei_empty": f"{nuc_empty}/{len(nuc_ids)}",
                "adapter": adapter.name,
            }
        ),
        flush=True,
    )
