"""The first two flooding targets, click by click: the area of the first prediction after the
click (MI's pseudo label P_init = f(I, C_t) when MI steps; working pixels), the area shown after
the click (plane pixels) and the update the click made.

    OMP_NUM_THREADS=1 python research/adaptation-safety/flooding_steps.py SPEC
"""

import json
import sys

import torch

from napari_oaims.evaluation.adapt import order_targets
from napari_oaims.evaluation.common import ModelMethod, Protocol, run_targets, target_ids
from napari_oaims.evaluation.suites import flooding

torch.set_num_threads(1)
image, labels = flooding(0, tiles=(3, 5))
ids = order_targets(target_ids(labels), "random", 0)[:2]
engine = Protocol(first_window=256, device="cpu").make_engine(sys.argv[1])
answers = []
predict = engine.predict


def watched(x):  # the adapter's P_init is its first single-image prediction of each MI step
    out = predict(x)
    answers.append(int((out[0] > 0).sum()))
    return out


engine.predict = watched


class Watched(ModelMethod):
    """Records, per click, the first prediction made after it: MI's pseudo label when MI steps."""

    rows: list = []

    def click(self, c):
        start = len(answers)
        mask = super().click(c)
        ev = [e for e in self.session.events if e["kind"] == "update"]
        step = ev[-1]["extra"] if ev and ev[-1]["seq"] > self.session.events[-3]["seq"] - 3 else None
        self.rows.append(
            {
                "label": int(c.positive),
                "pseudo_area": answers[start],
                "shown_area": int(mask.sum()),
                "step": None if step is None else step["method"],
                "rolled_back": None if step is None else step["rolled_back"],
            }
        )
        return mask


method = Watched(engine, image)
res = run_targets(method, labels, ids, Protocol().make_robot(), 10)
print(
    json.dumps({"spec": sys.argv[1], "dice": [[round(v, 2) for v in c] for c in res["curves"]], "clicks": method.rows})
)
