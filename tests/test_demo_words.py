"""The headless demo says how long it will take, and its plot reads at a glance."""

from __future__ import annotations

import numpy as np

from napari_oaims.cli import main
from napari_oaims.evaluation.demo import NAMES, demo_figure, expected_seconds


def test_demo_says_how_long_it_takes_before_it_starts(tmp_path, capsys):
    argv = ["demo", "--headless", "--out", str(tmp_path), "--objects", "2", "--clicks", "2", "--device", "cpu"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("expected duration: about ") and " min " in out[0]
    assert (tmp_path / "demo_dice_vs_clicks.png").stat().st_size > 10_000


def test_expected_duration_grows_with_the_work():
    one = expected_seconds(30, 5, 20.0)
    assert 0 < one < expected_seconds(60, 5, 20.0) and one < expected_seconds(30, 10, 20.0)
    assert expected_seconds(30, 5, 40.0) == 2 * one


def test_demo_plot_reads_at_a_glance():
    import matplotlib.pyplot as plt

    curves = {NAMES["none"]: [[0.8, 0.9, 0.92], [0.85, 0.9, 0.9]], NAMES["oaims"]: [[0.82, 0.93, 0.95], [0.9, 0.95]]}
    fig = demo_figure(curves, 2)
    ax = fig.axes[0]
    assert ax.get_ylim() == (0, 1)  # the y axis starts at 0
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)  # whole clicks only
    assert ax.get_ylabel() == "mean Dice" and "clicks" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["frozen model", "learning"]
    assert "simulated user" in ax.get_title()
    captions = [t.get_text() for t in fig.texts]
    assert len(captions) == 1 and "Dice" in captions[0] and "\n" not in captions[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.825, 0.9, 0.91])
    plt.close(fig)
