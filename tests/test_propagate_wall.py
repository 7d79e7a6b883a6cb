"""A mass pressed against a wall of the same intensity: the propagated mask spills onto the wall,
and past the mass's end only the wall is left under it. The plateau rule
(:func:`napari_oaims.propagate.stops.plateau`) on its own and with the real shipped model on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_oaims import Engine
from napari_oaims.evaluation.metrics import dice
from napari_oaims.propagate import PropagateSettings
from napari_oaims.propagate.stops import Track, plateau
from napari_oaims.simulate.clicks import click_in_region
from napari_oaims.training.volumes import failure_suite, make_volume

torch.set_num_threads(1)


def flat_at(areas: list[int], settings: PropagateSettings, anchor: int = 1000) -> int | None:
    """Feed a chain's mask areas (slices 1, 2, ...) to the rule: the first slice of the run that
    made it fire, or None."""
    track = Track(1.0, 0.5, anchor, anchor)
    prev = anchor
    for pos, area in enumerate(areas, start=1):
        track.peak = max(track.peak, area)
        if plateau(track, area, prev, pos, settings):
            return track.flat_from
        prev = area
    return None


def test_the_plateau_rule_sees_a_taper_stop_and_something_else_go_on():
    s = PropagateSettings()
    assert flat_at([900, 700, 400, 240, 230, 232, 235], s) == 5  # tapered, then flat from slice 5
    assert flat_at([900, 700, 400, 240, 150, 60, 10], s) is None  # tapers to its end
    assert flat_at([900, 700, 400, 240, 200, 170, 150], s) is None  # still shrinking by more than a tenth
    assert flat_at([1000, 980, 990, 1000, 990], s) is None  # a tube: never fell below the share
    assert flat_at([900, 700, 400, 240, 230, 232, 235], s.with_(plateau=0.0)) is None  # the rule off
    assert flat_at([900, 700, 400, 240, 230, 232, 235], s.with_(plateau_slices=3)) == 5
    assert flat_at([900, 700, 230, 300, 200, 205, 210], s) == 6  # a run broken by a drop starts again
    for bad in ({"plateau": 1.0}, {"plateau_keep": 0.0}, {"plateau_slices": 0}):
        with pytest.raises(ValueError, match="plateau"):
            PropagateSettings(**bad)


def test_a_mass_against_a_wall_stops_where_only_the_wall_is_left():
    """One click on the mass's fullest slice, one propagation: without the rule both chains run
    on along the wall to the stack's ends; with it they stop where the mask stopped tapering.
    The setting is logged; a log without it replays without it."""
    from napari_oaims.propagate.settings import as_logged

    image, labels = make_volume([sp for sp in failure_suite(3) if sp.kind == "wall"][0])
    target, wall = labels == 1, labels == 2
    z = int(np.argmax(target.sum((1, 2))))
    s = Engine.pretrained(device="cpu").session(image, plane_axes=(1, 2))
    s.click((z, *click_in_region(target[z])))
    off = s.propagate(axis=0, method="frozen", plateau=0.0)
    off_mask = np.asarray(off.mask, bool)
    call = dict(s.events[-1]["extra"]["call"])
    s.undo()
    on = s.propagate(axis=0, method="frozen")
    mask = np.asarray(on.mask, bool)
    assert s.events[-1]["extra"]["call"]["settings"]["plateau"] == PropagateSettings().plateau
    assert [c["stop"] for c in off.info["chains"]] == [None, None]  # ran to both ends of the stack
    assert [c["stop"] for c in on.info["chains"]] == ["plateau", "plateau"]
    assert int((mask & wall).sum()) <= int((off_mask & wall).sum()) - 2000
    assert int((mask & target).sum()) == int((off_mask & target).sum())  # nothing of the mass lost
    assert dice(mask, target) >= dice(off_mask, target) + 0.03
    s.undo()
    call["settings"] = {k: v for k, v in call["settings"].items() if not k.startswith("plateau")}
    assert np.array_equal(s.propagate(**{**call, "settings": as_logged(call["settings"])}).mask, off_mask)
