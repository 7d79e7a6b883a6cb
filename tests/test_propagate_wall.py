"""A mass pressed against a wall of the same intensity: the propagated mask spills onto the wall,
and past the mass's end only the wall is left under it. The plateau rule
(:func:`napari_oaims.propagate.stops.plateau`) and the wall that runs through the stack
(:mod:`napari_oaims.propagate.through`), on their own and with the real shipped model on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_oaims import Engine
from napari_oaims.evaluation.metrics import dice
from napari_oaims.propagate import PropagateSettings
from napari_oaims.propagate.masks import Sparse
from napari_oaims.propagate.stops import Track, plateau
from napari_oaims.propagate.through import BLOCKED, OWN, cut_through, map_window, merge_through
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
    off = s.propagate(axis=0, method="frozen", plateau=0.0, through=0.0)
    off_mask = np.asarray(off.mask, bool)
    call = dict(s.events[-1]["extra"]["call"])
    s.undo()
    on = s.propagate(axis=0, method="frozen", through=0.0)
    mask = np.asarray(on.mask, bool)
    assert s.events[-1]["extra"]["call"]["settings"]["plateau"] == PropagateSettings().plateau
    assert [c["stop"] for c in off.info["chains"]] == [None, None]  # ran to both ends of the stack
    assert [c["stop"] for c in on.info["chains"]] == ["plateau", "plateau"]
    assert int((mask & wall).sum()) <= int((off_mask & wall).sum()) - 2000
    assert int((mask & target).sum()) == int((off_mask & target).sum())  # nothing of the mass lost
    assert dice(mask, target) >= dice(off_mask, target) + 0.03
    s.undo()
    call["settings"] = {k: v for k, v in call["settings"].items() if not k.startswith(("plateau", "through"))}
    assert np.array_equal(s.propagate(**{**call, "settings": as_logged(call["settings"])}).mask, off_mask)


def test_cut_through_drops_what_runs_through_outside_the_anchor_and_ends_a_chain_left_with_it():
    codes = np.zeros((10, 10), np.uint8)
    codes[:3] = BLOCKED  # a wall along the top, left out of the anchor's mask
    codes[3:5, 2:8] = OWN  # where the anchor's own mask ran through
    through = (Sparse((0, 0, 10, 10), codes), 40)
    mask = np.zeros((10, 10), bool)
    mask[1:9, 2:8] = True
    cut = cut_through(Sparse.of_mask(mask), through, 4).plane((10, 10))
    assert not cut[:3].any() and cut[3:9, 2:8].all()  # the wall goes, the object's own part stays
    only_wall = np.zeros((10, 10), bool)
    only_wall[1:5, 2:8] = True  # the wall and the anchor's own part: nothing else of the object
    assert cut_through(Sparse.of_mask(only_wall), through, 4).box is None
    kept = cut_through(Sparse.of_mask(only_wall), through, 0).plane((10, 10))  # in a gap: never empty
    assert kept.sum() == 12 and kept[3:5, 2:8].all()
    assert cut_through(Sparse.of_mask(mask), None, 4).plane((10, 10)).sum() == mask.sum()  # rule off
    for bad in (1.5, -0.1, float("nan"), "half", None, True):
        with pytest.raises(ValueError, match="through must be a share"):
            PropagateSettings(through=bad)


def wall_session(seed: int = 0):
    """The first wall volume of the failure suite with the mass's fullest slice set to its truth."""
    image, labels = make_volume([sp for sp in failure_suite(3, seed=seed) if sp.kind == "wall"][0])
    target = labels == 1
    z = int(np.argmax(target.sum((1, 2))))
    s = Engine.pretrained(device="cpu").session(image, plane_axes=(1, 2))
    s.set_mask(target[z], plane=(z,))
    return s, target, labels == 2


def test_a_wall_that_runs_through_the_stack_is_kept_out_of_the_propagated_mass():
    """From a fullest slice annotated exactly, the model's chain takes in the wall beside the mass
    on every slice and runs on along it past the mass's ends; the wall runs through the whole
    stack and the anchor left it out, so with the rule the slices leave most of it out and the
    chain ends with the mass. The setting is logged; a log without it replays without it."""
    from napari_oaims.propagate.run import prepare
    from napari_oaims.propagate.settings import as_logged

    s, target, wall = wall_session()
    off = np.asarray(s.propagate(axis=0, method="frozen", through=0.0).mask, bool)
    call = dict(s.events[-1]["extra"]["call"])
    s.undo()
    r = s.propagate(axis=0, method="frozen")
    on = np.asarray(r.mask, bool)
    assert s.events[-1]["extra"]["call"]["settings"]["through"] == PropagateSettings().through > 0
    assert "through" in [c["stop"] for c in r.info["chains"]]  # ran past the mass along the wall
    assert int((on & wall).sum()) <= 0.5 * int((off & wall).sum())
    assert dice(on, target) >= dice(off, target) + 0.04
    assert np.ptp(np.flatnonzero(on.any((1, 2)))) < np.ptp(np.flatnonzero(off.any((1, 2))))  # ends sooner
    s.undo()
    settings = {k: v for k, v in call["settings"].items() if k != "through"}
    assert np.array_equal(s.propagate(**{**call, "settings": as_logged(settings)}).mask, off)
    s.undo()
    z = int(np.argmax(target.sum((1, 2))))
    assert all(w.through is not None for w in prepare(s, 0, "frozen").walks)
    short = prepare(s, 0, "frozen", extent=(z - 3, z + 4))  # the mass itself runs through 7 slices
    assert short.walks and all(w.through is None for w in short.walks)
    assert all(w.through is None for w in prepare(s, 0, "copy").walks)  # the model's slices only


def test_an_object_that_runs_through_the_stack_is_not_cut_by_the_rule():
    """A bright rod along the whole axis beside a slab of its own intensity: most of the rod's own
    anchor mask runs through the stack, so the rule stands aside and the rod is carried whole."""
    rng = np.random.default_rng(3)
    image = 0.1 + 0.02 * rng.standard_normal((16, 64, 64)).astype(np.float32)
    yy, xx = np.mgrid[:64, :64]
    rod = (yy - 32) ** 2 + (xx - 30) ** 2 <= 8**2
    image[:, rod] += 0.7
    image[:, :6, :] += 0.7  # a slab along the top, also through the stack
    s = Engine.pretrained(device="cpu").session(image, plane_axes=(1, 2))
    s.set_mask(rod, plane=(8,))
    on = np.asarray(s.propagate(axis=0, method="frozen").mask, bool)
    s.undo()
    off = np.asarray(s.propagate(axis=0, method="frozen", through=0.0).mask, bool)
    assert np.array_equal(on, off)
    assert on.any((1, 2)).all()  # carried through every slice


def test_a_gap_nearer_its_other_anchor_also_leaves_out_what_that_anchor_left_out():
    start = np.zeros((6, 6), np.uint8)
    start[:2] = BLOCKED
    start[2:4] = OWN  # the start anchor's mask holds these columns
    end = np.zeros((6, 8), np.uint8)
    end[2:3, :] = BLOCKED  # the end anchor left one of those rows out ...
    end[3:4, :] = OWN  # ... and holds the other
    merged, free = merge_through((Sparse((0, 0, 6, 6), start), 7), (Sparse((0, 0, 6, 8), end), 3))
    codes = merged.in_box((0, 0, 6, 8), np.uint8)
    assert free == 7 and merged.box == (0, 0, 6, 8)
    assert (codes[:3, :6] == BLOCKED).all() and (codes[3, :] == OWN).all() and not codes[4:].any()

    s, target, _ = wall_session()
    from napari_oaims.propagate.run import prepare

    z = int(np.argmax(target.sum((1, 2))))
    z1 = int(np.flatnonzero(target.any((1, 2)))[-1]) - 3
    s.set_mask(target[z1], plane=(z1,))  # a smaller anchor nearer the mass's end
    walks = prepare(s, 0, "frozen").walks
    gap = [w for w in walks if not w.chain.open]
    assert len(gap) == 1 and gap[0].chain.anchor == z and gap[0].end == z1  # from the larger anchor
    assert gap[0].through_end is not None
    assert all(w.end is None for w in walks if w.chain.open)  # outward chains have no other end


def test_the_map_window_holds_the_anchor_and_reads_no_more_than_the_plane():
    w = map_window((10, 10, 20, 30), (96, 96))  # near a corner: shifted onto the plane
    assert (w.y0, w.x0) == (0, 0) and w.size >= 20 + 2 * 20
    big = map_window((0, 0, 2000, 2000), (2048, 2048))  # a large anchor: the plane, no more
    assert (big.y0, big.x0, big.size) == (0, 0, 2048)
    for box, shape in (((90, 40, 96, 50), (96, 200)), ((0, 150, 40, 200), (96, 200)), ((30, 30, 34, 35), (64, 64))):
        w = map_window(box, shape)
        assert w.y0 <= box[0] and w.x0 <= box[1] and box[2] <= w.y0 + w.size and box[3] <= w.x0 + w.size
