"""How far can adaptation to one image take the shipped model? Learn on one half, test on the other.

The issue 3 rule "+15 Dice@1 and -30% NoC@0.85 where frozen Dice@1 < 0.70" is judged over the
whole sequence of ``oaims bench adapt``. This script asks what the *second* half of that sequence
could reach at best: an engine with adaptation ``--method`` (PI by default) works through the
first half of the targets (the bench's seed-0 order, robot clicks, accept after each) for
``--epochs`` passes; after each pass a frozen copy of its weights is evaluated on the second half.
It prints Dice@1/5/10 and NoC@0.85 there, beside the frozen model and the online results read
from a bench JSON (``--online``) on the same targets. Used in docs/NOTES.md (session 9)::

    python docs/results/ceiling.py --image ../shared/data/nuclei2d/image.tif \
        --labels ../shared/data/nuclei2d/labels.tif --shift invert --shift illum --shift none \
        --epochs 8 --online docs/results/adapt_125_all.json --out docs/results/ceiling_pi.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

from napari_oaims.bench.adapt import order_targets
from napari_oaims.bench.clicks import load_pair
from napari_oaims.bench.common import ModelMethod, run_targets, target_ids, write_json
from napari_oaims.bench.shifts import SHIFTS, apply_shift
from napari_oaims.engine import Engine
from napari_oaims.metrics import summarise
from napari_oaims.robot import Robot


def _row(curves: list[list[float]]) -> dict:
    return summarise(curves, ks=(1, 5, 10), thresholds=(0.85,))


def _fmt(name: str, r: dict) -> str:
    return f"  {name:<28} {r['dice@1']:.3f} / {r['dice@5']:.3f} / {r['dice@10']:.3f}   NoC@0.85 {r['noc@0.85']:.2f}"


def _frozen_copy(engine: Engine, image) -> ModelMethod:
    return ModelMethod(Engine(copy.deepcopy(engine.model), engine.config, device=engine.device), image)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--shift", action="append", choices=sorted(SHIFTS), required=True)
    p.add_argument("--method", default="pi", help="adaptation used on the first half (name:key=value settings)")
    p.add_argument("--epochs", type=int, default=5, help="passes over the first half")
    p.add_argument("--clicks", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--online", help="bench adapt JSON: its main-run curves on the same second half, for comparison")
    p.add_argument("--weights", help="base weights (default: the shipped ones)")
    p.add_argument("--out")
    a = p.parse_args()
    if a.epochs < 1 or a.clicks < 1:
        raise SystemExit("--epochs and --clicks must be at least 1")
    try:
        image0, labels0 = load_pair(a.image, a.labels)
        online = json.loads(Path(a.online).read_text()) if a.online else None
        Engine.pretrained(adaptation=a.method, weights=a.weights)  # bad settings or weights fail here
    except (OSError, ValueError) as err:
        raise SystemExit(f"ceiling.py: {err}") from None
    out = {"settings": vars(a), "shifts": {}}
    for shift in a.shift:
        image, labels = apply_shift(shift, image0, labels0)
        seq = order_targets(target_ids(labels), "random", a.seed)
        half = len(seq) // 2
        learn, test = seq[:half], seq[half:]
        robot = Robot(strategy="center", seed=a.seed)
        frozen = _frozen_copy(Engine.pretrained(weights=a.weights), image)
        res = {"frozen": _row(run_targets(frozen, labels, test, robot, a.clicks)["curves"])}
        print(f"shift={shift}: learn on {len(learn)} targets, test on {len(test)} (Dice@1 / @5 / @10)")
        print(_fmt("frozen", res["frozen"]))
        if online is not None:
            main_run = online["shifts"].get(shift, {}).get("main")
            if main_run is not None and main_run["targets"] == seq:
                for m, cell in main_run["methods"].items():
                    if m in ("none", "pi", "oaims"):
                        res[f"online {m}, whole"] = _row(cell["curves"])
                        res[f"online {m}, 2nd half"] = _row(cell["curves"][half:])
                        print(_fmt(f"online {m}, 2nd half", res[f"online {m}, 2nd half"]))
            else:
                print(f"  ({a.online} has no main run of {shift} on this order: no online comparison)")
        engine = Engine.pretrained(adaptation=a.method, weights=a.weights)
        learner = ModelMethod(engine, image)
        for epoch in range(1, a.epochs + 1):
            t0 = time.perf_counter()
            run_targets(learner, labels, learn, robot, a.clicks)
            r = _row(run_targets(_frozen_copy(engine, image), labels, test, robot, a.clicks)["curves"])
            res[f"{a.method} x{epoch} on 1st half"] = r
            print(_fmt(f"{a.method} x{epoch} on 1st half", r) + f"   ({time.perf_counter() - t0:.0f} s)")
        out["shifts"][shift] = res
    if a.out:
        write_json(out, a.out)
        print(f"saved {a.out}")


if __name__ == "__main__":
    main()
