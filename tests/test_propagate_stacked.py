"""The end of an object along the axis on a stack blurred along it: nuclei stacked in columns,
where the slice past a nucleus's end is as bright as its end slice. The waist rule
(:func:`napari_oaims.propagate.stops.waist`) on its own and with the real shipped model on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_oaims import Engine
from napari_oaims.evaluation.metrics import dice
from napari_oaims.propagate import PropagateSettings
from napari_oaims.propagate.stops import Track, waist
from napari_oaims.simulate.clicks import click_in_region
from napari_oaims.training.volumes import failure_suite, make_volume

torch.set_num_threads(1)


def stacked_volume(index: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """One of the benchmark's ``stacked`` failure volumes (28 x 96 x 96)."""
    return make_volume([s for s in failure_suite(3) if s.kind == "stacked"][index])


def walk(signals: list[float], settings: PropagateSettings, anchor: float = 100.0) -> int | None:
    """Feed a chain's signals to the rule; the position where it fires, or None."""
    track = Track(1.0, 0.5, int(anchor), int(anchor))
    for pos, sig in enumerate(signals, start=1):
        if waist(track, sig, pos, settings):
            return pos
    return None


def test_the_waist_rule_sees_an_object_fade_and_another_begin():
    s = PropagateSettings()
    track = Track(1.0, 0.5, 100, 100)
    fade_then_next = [80.0, 60.0, 42.0, 45.0, 56.0, 70.0]
    assert walk(fade_then_next, s) == 5  # 42 -> 56: grew again by more than waist_regrow
    for sig in fade_then_next[:4]:
        waist(track, sig, 0, s)
    assert track.signal_low == 42.0 and track.signal_peak == 100.0
    assert walk(fade_then_next, s.with_(waist=0.0)) is None  # the rule off
    assert walk([80.0, 60.0, 40.0, 25.0, 12.0, 5.0], s) is None  # an object that only fades
    assert walk([90.0, 70.0, 62.0, 75.0, 90.0], s) is None  # a tube's wobble: never halved
    assert walk([60.0, 40.0, 20.0, 16.0, 20.0, 19.0], s) is None  # a faint rise under waist_rise: noise
    assert walk([60.0, 40.0, 20.0, 16.0, 20.0, 19.0], s.with_(waist_rise=0.0)) == 5
    assert walk([120.0, 60.0, 50.0, 70.0], s) == 4  # the highest value, not the anchor's, is the peak
    with pytest.raises(ValueError, match="waist"):
        PropagateSettings(waist=1.0)
    with pytest.raises(ValueError, match="waist"):
        PropagateSettings(waist_regrow=0.9)


def test_a_nucleus_stacked_on_others_stops_at_its_end():
    """One click on the nucleus's fullest slice, one propagation: without the rule the chain runs
    on through its blurred end into the nucleus stacked above it; with it, it stops at the waist."""
    image, labels = stacked_volume()
    target = labels == 1
    z = int(np.argmax(target.sum((1, 2))))
    engine = Engine.pretrained(device="cpu")
    took, got = {}, {}
    for w in (0.0, PropagateSettings().waist):
        s = engine.session(image, plane_axes=(1, 2))
        s.click((z, *click_in_region(target[z])))
        r = s.propagate(axis=0, method="frozen", waist=w)
        mask = np.asarray(r.mask, bool)
        took[w], got[w] = int((mask & (labels > 1)).sum()), dice(mask, target)
        if w > 0:
            assert "waist" in [c["stop"] for c in r.info["chains"]]
            assert s.events[-1]["extra"]["call"]["settings"]["waist"] == w  # logged: replay redoes it
    on = PropagateSettings().waist
    assert took[0.0] >= 200  # the rule off: it enters the nucleus above
    assert took[on] <= 0.2 * took[0.0] and got[on] >= got[0.0] + 0.1


def test_a_logged_call_without_the_waist_replays_without_it():
    """A logged propagation whose settings do not name ``waist`` was made without the rule: replay
    (:func:`napari_oaims.propagate.settings.as_logged`) leaves it out and redoes the recorded masks."""
    from napari_oaims.propagate.settings import as_logged

    image, labels = stacked_volume()
    target = labels == 1
    z = int(np.argmax(target.sum((1, 2))))
    s = Engine.pretrained(device="cpu").session(image, plane_axes=(1, 2))
    s.click((z, *click_in_region(target[z])))
    recorded = s.propagate(axis=0, method="frozen", waist=0.0).mask
    call = dict(s.events[-1]["extra"]["call"])
    call["settings"] = {k: v for k, v in call["settings"].items() if not k.startswith("waist")}
    s.undo()
    assert not np.array_equal(s.propagate(axis=0, method="frozen").mask, recorded)  # the default differs
    s.undo()
    assert np.array_equal(s.propagate(**{**call, "settings": as_logged(call["settings"])}).mask, recorded)
