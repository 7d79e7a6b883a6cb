"""How much of a method's correction count comes from the anchor the robot leaves: the robot
protocol of ``oaims bench propagate`` with the anchor slice annotated to a stricter slice Dice
(``anchor_target``, up to ``anchor_clicks`` clicks, counted) before the first propagation.

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/propagation/anchor_quality.py SEED METHOD TARGET [CASE ...]
"""

import sys

from napari_oaims import Engine
from napari_oaims.evaluation.propagate import procedural_cases, run_case

seed, method, anchor_target = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
cases = {c["name"]: c for c in procedural_cases(3, (28, 96, 96), seed, failures=True)}
for name in sys.argv[4:] or list(cases):
    c = cases[name]
    r = run_case(
        Engine.pretrained(device="cpu"),
        c["image"],
        c["target"],
        method,
        cap=50,
        anchor_clicks=15,
        anchor_target=anchor_target,
        others=c["others"],
    )
    print(
        f"{name:16s} anchor to {anchor_target}: {r['clicks']:2d} clicks, first Dice {r['first_dice']:.3f}, "
        f"worst drop {r['worst_drop']:.3f}, taken first {r.get('taken_first')}",
        flush=True,
    )
