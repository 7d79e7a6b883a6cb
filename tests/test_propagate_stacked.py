"""The end of an object along the axis on a stack blurred along it: nuclei stacked in columns,
where the slice past a nucleus's end is as bright as its end slice. The waist rule
(:func:`napari_oaims.propagate.stops.waist`) and the earliest of several ends
(:func:`napari_oaims.propagate.stops.stop_reason`), on their own and with the real shipped model
on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_oaims import Engine
from napari_oaims.evaluation.metrics import dice
from napari_oaims.propagate import PropagateSettings
from napari_oaims.propagate.masks import Sparse
from napari_oaims.propagate.stops import Track, earliest, stop_reason, waist
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


class Measured:
    """What :func:`stop_reason` reads of the image, given per plane: the contrast of the mask
    against a ring around it and the mean inside it."""

    def __init__(self, settings: PropagateSettings, table: dict[tuple, tuple[float, float]]):
        self.settings, self.table = settings, table

    def contrast_of(self, key, mask):
        return self.table[key]


def chain_end(settings: PropagateSettings, slices: list[tuple[int, float, float]]):
    """Walk a chain of rectangular masks ``(area in rows of 10 px, contrast, mean)`` from an
    anchor of 100 px (contrast 1, mean 1): where it stops, why, and the track."""
    track = Track(1.0, 1.0, 100, 100)
    prev = Sparse.of_mask(np.ones((10, 10), bool))
    ctx = Measured(settings, {(pos,): (c, m) for pos, (_, c, m) in enumerate(slices, start=1)})
    for pos, (rows, _, _) in enumerate(slices, start=1):
        mask = Sparse.of_mask(np.ones((rows, 10), bool))
        reason = stop_reason(ctx, (pos,), mask, prev, track, pos)
        if reason is not None:
            return pos, reason, track
        prev = mask
    return None, None, track


def test_where_two_rules_find_an_end_on_one_slice_the_earliest_wins():
    """The mean inside the mask dips on slice 2 and the signal (area x contrast) is lowest on
    slice 3; on slice 4 both rise again, so the dip and the waist both fire there: the object
    ended at slice 2 (the dip's cut), not at slice 3."""
    slices = [(10, 1.0, 1.0), (9, 0.9, 0.55), (8, 0.55, 0.6), (9, 0.7, 0.8)]
    at, reason, track = chain_end(PropagateSettings(), slices)
    assert (at, reason, track.cut) == (4, "dip", 2)
    assert track.ends == [("waist", 3), ("dip", 2)]
    at, reason, track = chain_end(PropagateSettings(earliest_end=False), slices)
    assert (at, reason, track.cut) == (4, "waist", 3)  # the first rule asked
    at, reason, track = chain_end(PropagateSettings(dip=0.0), slices)
    assert (at, reason, track.cut) == (4, "waist", 3)  # one rule alone
    # a rule that ends the object on the slice itself never overrules an earlier cut, and
    # among equal ends the first rule asked names it
    assert earliest([("contrast", None), ("dip", 7)], 9) == ("dip", 7)
    assert earliest([("neck", 9), ("contrast", None)], 9) == ("neck", 9)
    assert earliest([("neck", 13), ("waist", 12)], 10) == ("neck", 13)


def test_a_chain_that_a_neck_and_a_waist_stop_keeps_only_its_own_nucleus():
    """A procedural ``stacked`` nucleus whose chain into the nucleus below narrows (a neck) one
    slice after its signal's lowest point (a waist): the neck's cut keeps a slice of the nucleus
    below, the earliest end does not. The setting is logged; a log without it replays without it."""
    from napari_oaims.propagate.settings import as_logged

    image, labels = make_volume([sp for sp in failure_suite(20) if sp.kind == "stacked"][1])
    target = labels == 9
    z = int(np.argmax(target.sum((1, 2))))
    s = Engine.pretrained(device="cpu").session(image, plane_axes=(1, 2))
    s.click((z, *click_in_region(target[z])))
    first = s.propagate(axis=0, method="frozen", earliest_end=False)
    first_mask = np.asarray(first.mask, bool)
    call = dict(s.events[-1]["extra"]["call"])
    s.undo()
    r = s.propagate(axis=0, method="frozen")
    mask = np.asarray(r.mask, bool)
    assert s.events[-1]["extra"]["call"]["settings"]["earliest_end"] is True
    assert "neck" in [c["stop"] for c in first.info["chains"]] and "waist" in [c["stop"] for c in r.info["chains"]]
    others = (labels > 0) & ~target
    assert int((first_mask & others).sum()) >= 20 and int((mask & others).sum()) == 0
    assert dice(mask, target) >= dice(first_mask, target) + 0.03
    s.undo()
    call["settings"] = {k: v for k, v in call["settings"].items() if k != "earliest_end"}
    assert np.array_equal(s.propagate(**{**call, "settings": as_logged(call["settings"])}).mask, first_mask)
