"""Dice@1 and Dice@2 of the shipped model on click sets, the loop of ``oaims bench clicks``
(same robot, session, accept between targets), model only and two clicks, to compare two
versions of the package source quickly.

    PYTHONPATH=SRC python research/first-answer/neck_bench.py OUT.json NAME=IMAGE,LABELS[,MAX] ...
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from napari_oaims.evaluation.common import ModelMethod, Protocol, load_pair, run_targets, target_ids


def main(out: str, specs: list[str]) -> None:
    import torch

    torch.set_num_threads(1)
    protocol = Protocol(clicks=2, device="cpu")
    results = {}
    for spec in specs:
        name, paths = spec.split("=", 1)
        parts = paths.split(",")
        img, lab = load_pair(parts[0], parts[1])
        ids = target_ids(lab)[: int(parts[2])] if len(parts) > 2 else target_ids(lab)
        t0 = time.time()
        method = ModelMethod(protocol.make_engine(), img)
        res = run_targets(method, lab, ids, protocol.make_robot(), 2)
        curves = np.array([c + [c[-1]] * (2 - len(c)) for c in res["curves"]])
        results[name] = {
            "targets": len(ids),
            "dice@1": round(float(curves[:, 0].mean()), 4),
            "dice@2": round(float(curves[:, 1].mean()), 4),
            "per_target@1": [round(float(v), 4) for v in curves[:, 0]],
            "empty_positive": method.empty_positive,
            "refused": method.refused,
        }
        print(
            name,
            results[name]["targets"],
            results[name]["dice@1"],
            results[name]["dice@2"],
            f"{time.time() - t0:.0f}s",
            flush=True,
        )
        with open(out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
