import math

import numpy as np
import pytest

from napari_oaims.evaluation.metrics import auc, dice, dice_at, dice_curve, final_dice, improving_share, noc, summarise


def test_dice_edge_cases():
    a = np.zeros((8, 8), bool)
    assert dice(a, a) == 1.0
    b = a.copy()
    b[2:4, 2:4] = True
    assert dice(a, b) == 0.0
    assert dice(b, b) == 1.0
    c = np.zeros_like(b)
    c[2:4, 2:6] = True  # 8 px, 4 shared with b's 4 px -> 2*4/12
    assert dice(c, b) == pytest.approx(8 / 12)
    with pytest.raises(ValueError):
        dice(a, np.zeros((8, 9), bool))


def test_dice_curve_and_dice_at():
    t = np.zeros((4, 4), bool)
    t[:2] = True
    masks = [np.zeros_like(t), t.copy()]
    assert dice_curve(masks, t) == [0.0, 1.0]
    curve = [0.2, 0.5, 0.9]
    assert dice_at(curve, 1) == 0.2
    assert dice_at(curve, 3) == 0.9
    assert dice_at(curve, 10) == 0.9  # shorter curve: last value
    with pytest.raises(ValueError):
        dice_at(curve, 0)
    with pytest.raises(ValueError):
        dice_at([], 1)


def test_noc_reached_and_capped():
    curve = [0.5, 0.79, 0.84, 0.91]
    assert noc(curve, 0.80) == 3.0
    assert noc(curve, 0.85) == 4.0
    assert noc(curve, 0.90) == 4.0
    assert noc(curve, 0.95) == 20.0
    assert noc(curve, 0.95, cap=7) == 7.0
    assert noc([0.95], 0.9) == 1.0
    # reached only after the cap counts as not reached
    assert noc([0.1] * 5 + [0.99], 0.9, cap=5) == 5.0


def test_auc_constant_linear_and_single():
    assert auc([1.0] * 10) == pytest.approx(1.0)
    assert auc([0.3] * 4) == pytest.approx(0.3)
    assert auc(np.linspace(0.0, 1.0, 11)) == pytest.approx(0.5)
    assert auc([0.0, 1.0, 1.0]) == pytest.approx(0.75)
    assert auc([0.42]) == pytest.approx(0.42)


def test_final_dice_and_improving_share():
    curve = [0.1, 0.3, 0.3, 0.2, 0.6]
    assert final_dice(curve) == 0.6
    assert improving_share(curve) == pytest.approx(2 / 4)
    assert math.isnan(improving_share([0.5]))


def test_summarise_keys_and_values():
    curves = [[0.5, 0.8, 0.9], [0.2, 0.4, 0.6, 0.86, 0.95], [0.7]]
    s = summarise(curves)
    expected = {
        "dice@1",
        "dice@3",
        "dice@5",
        "dice@10",
        "noc@0.80",
        "noc@0.85",
        "noc@0.90",
        "auc",
        "final_dice",
        "improving_share",
        "n_targets",
    }
    assert set(s) == expected
    assert s["n_targets"] == 3
    assert s["dice@1"] == pytest.approx((0.5 + 0.2 + 0.7) / 3)
    assert s["dice@5"] == pytest.approx((0.9 + 0.95 + 0.7) / 3)
    assert s["noc@0.80"] == pytest.approx((2 + 4 + 20) / 3)
    assert s["noc@0.90"] == pytest.approx((3 + 5 + 20) / 3)
    assert s["final_dice"] == pytest.approx((0.9 + 0.95 + 0.7) / 3)
    assert s["improving_share"] == pytest.approx(1.0)  # the 1-click curve is left out
    s2 = summarise(curves, ks=(2,), thresholds=(0.5,), cap=10)
    assert set(s2) == {"dice@2", "noc@0.50", "auc", "final_dice", "improving_share", "n_targets"}
    assert s2["noc@0.50"] == pytest.approx((1 + 3 + 1) / 3)
    with pytest.raises(ValueError):
        summarise([])
