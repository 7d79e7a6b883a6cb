"""3D propagation: Session.propagate / suggest_slice, the four methods, stopping at the
object's ends, corrections on propagated slices, undo, cancel, the engine's weights, 4D along t,
lazy reads, the log, and bad input. Tiny procedural volumes, the real shipped model on CPU."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
import torch

from napari_oaims import Engine
from napari_oaims.core.progress import Cancel, Cancelled, Collect, TqdmProgress
from napari_oaims.evaluation.metrics import dice
from napari_oaims.propagate import METHODS, Propagated, PropagateSettings
from napari_oaims.simulate.clicks import click_in_region, largest_error_component
from napari_oaims.training.volumes import KINDS, VolumeSpec, make_volume, suite

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def shared_engine():
    """One engine for tests that never adapt (adaptation "none")."""
    return Engine.pretrained(device="cpu")


@pytest.fixture(scope="module")
def blob():
    """A 12-slice stack with an extruded blob on slices 2..9 (flat ends) and one neighbour."""
    image, labels = make_volume(VolumeSpec(kind="abrupt", shape=(12, 48, 48), seed=3, neighbours=1, blur=0.8))
    target = labels == 1
    zs = np.flatnonzero(target.any((1, 2)))
    assert zs[0] >= 2 and zs[-1] <= 9  # empty slices on both sides
    return image, target


def annotate(session, target, z=None, clicks=3):
    """The robot's anchor: clicks on slice z (default the largest) until Dice 0.9."""
    z = int(np.argmax(target.sum((1, 2)))) if z is None else z
    mask = np.zeros(target.shape, bool)
    for _ in range(clicks):
        err = largest_error_component(mask[z], target[z])
        if err is None:
            break
        y, x = click_in_region(err[0])
        mask = session.click((z, y, x), positive=err[1]).mask
        if dice(mask[z], target[z]) >= 0.9:
            break
    return z


def correct_worst_slice(session, target, below=None):
    """One click at the largest error of the propagated slice (before ``below``) with the most wrong voxels."""
    wrong = (session.mask ^ target).sum((1, 2))
    if below is not None:
        wrong[below:] = 0
    for k, st in session.planes.items():
        if st.prompts:
            wrong[k[0]] = 0
    z = int(np.argmax(wrong))
    assert wrong[z] > 0
    err = largest_error_component(session.plane_mask((z,)), target[z])
    return session.click((z, *click_in_region(err[0])), positive=err[1])


def state(session):
    return (
        session.mask.copy(),
        {k: list(st.prompts) for k, st in session.planes.items()},
        len(session.events),
        session._history.can_undo,
        session._history.can_redo,
    )


def same_state(a, b):
    return (
        np.array_equal(a[0], b[0])
        and a[1].keys() == b[1].keys()
        and all(len(a[1][k]) == len(b[1][k]) for k in a[1])
        and a[2:] == b[2:]
    )


# -- the object through the stack ------------------------------------------------------------------
def test_ema_propagates_and_stops_at_the_ends(blob):
    image, target = blob
    engine = Engine.pretrained(device="cpu", adaptation="oaims")
    before = {k: v.clone() for k, v in engine.model.state_dict().items()}
    h0 = engine.weights_hash
    s = engine.session(image, plane_axes=(1, 2))
    z = annotate(s, target)
    seen, ticks = [], Collect()
    res = s.propagate(
        axis=0,
        method="ema",
        on_slice=lambda k, m: seen.append((k, m.shape)),
        progress=ticks,
    )
    assert isinstance(res, Propagated)
    mask = res.mask
    assert mask.shape == image.shape and mask.dtype == bool
    assert dice(mask, target) > 0.85
    zs = np.flatnonzero(target.any((1, 2)))
    got = np.flatnonzero(mask.any((1, 2)))
    assert got[0] >= zs[0] and got[-1] <= zs[-1], "grew past the object's ends"
    assert ticks.calls and ticks.last[0] == ticks.last[1]
    assert {m for _, _, m in ticks.calls} == {"propagating along axis 0"}  # the message names the work
    assert seen and all(m == image.shape[1:] for _, m in seen)
    # the engine's weights never change through a propagation
    assert engine.weights_hash == h0
    assert all(torch.equal(before[k], v) for k, v in engine.model.state_dict().items())
    # one propagate event with what replay needs
    ev = s.events[-1]
    assert ev["kind"] == "propagate" and ev["weights"] == h0
    extra = ev["extra"]
    assert extra["method"] == "ema" and extra["anchors"] == [[z]] and extra["slices_changed"]
    assert set(extra["call"]) == {"axis", "method", "extent", "settings"}
    assert extra["weights_hash"] == h0 and extra["time_ms"] > 0 and extra["student_steps"] > 0
    # deterministic: the logged call redoes the same masks
    s.undo()
    assert not s.mask[[k for k in range(12) if k != z]].any()
    again = s.propagate(**extra["call"])
    assert np.array_equal(again.mask, mask)
    # accept: the 3D object is done; PI learns from it as for 2D (from its corrected slices)
    correct_worst_slice(s, target)
    corrected = s.mask
    acc = s.accept()
    assert acc.area == int(corrected.sum()) and engine.weights_hash != h0


@pytest.mark.parametrize("method", [m for m in METHODS if m != "ema"])
def test_other_methods(shared_engine, blob, method):
    image, target = blob
    s = shared_engine.session(image, plane_axes=(1, 2))
    annotate(s, target)
    res = s.propagate(method=method)  # axis: the one non-plane axis of a 3D image
    assert res.method == method and res.axis == 0
    assert dice(res.mask, target) > (0.85 if method in ("frozen", "registration") else 0.7)
    zs = np.flatnonzero(target.any((1, 2)))
    got = np.flatnonzero(res.mask.any((1, 2)))
    assert got[0] >= zs[0] - 1 and got[-1] <= zs[-1] + 1


def test_contrast_rule_keeps_the_mask_off_empty_slices(shared_engine, blob):
    """Without the image-contrast stop the model redraws the prior on the empty slices."""
    image, target = blob
    s = shared_engine.session(image, plane_axes=(1, 2))
    annotate(s, target)
    empty = ~target.any((1, 2))
    grown = s.propagate(method="frozen", min_contrast=0.0).mask
    s.undo()
    kept = s.propagate(method="frozen").mask
    assert not kept[empty].any()
    assert grown[empty].any() or dice(grown, target) <= dice(kept, target)


def test_corrections_on_propagated_slices(shared_engine, blob):
    image, target = blob
    s = shared_engine.session(image, plane_axes=(1, 2))
    z = annotate(s, target)
    first = s.propagate(method="frozen").mask
    zc = int(np.flatnonzero(first.any((1, 2)))[-1])  # the last propagated slice
    assert zc != z and not s.prompts((zc,))
    propagated = s.plane_mask((zc,))
    # a negative click near the mask's edge trims it: it starts from the propagated mask
    edge = np.argwhere(propagated & ~np.roll(propagated, 1, 0))[0]
    r = s.click((zc, *edge), positive=False)
    kinds = [p.kind for p in s.prompts((zc,))]
    assert kinds == ["prior", "click"], kinds
    assert dice(r.mask[zc], propagated) > 0.6 and not r.mask[zc][tuple(edge)]
    corrected = s.plane_mask((zc,))
    # re-propagation keeps the corrected slice (now an anchor); the slices between it and the
    # first anchor (the larger mask) are carried from that anchor as before, so nothing else
    # changes and no undo step is added: undo takes back the click
    second = s.propagate(method="frozen")
    assert np.array_equal(second.mask[zc], corrected)
    assert [zc] in second.info["anchors"]
    assert np.array_equal(second.mask, r.mask) and not second.changes
    s.undo()
    assert np.array_equal(s.mask, first) and not s.prompts((zc,))


def test_negative_click_in_the_middle_marks_the_end(blob):
    image, target = blob
    engine = Engine.pretrained(device="cpu", adaptation="oaims")
    s = engine.session(image, plane_axes=(1, 2))
    z = annotate(s, target)
    s.propagate(method="frozen")
    zs = [k for k in range(12) if s.plane_mask((k,)).any() and k > z]
    end = zs[len(zs) // 2]
    r = s.click((end, *click_in_region(s.plane_mask((end,)))), positive=False)
    assert not r.mask[end].any() and s.prompts((end,))  # an empty anchor
    res = s.propagate(method="frozen")
    assert not res.mask[end:].any(), "propagation went past the end marker"
    assert res.mask[z + 1 : end].any()
    # accept: PI learns from the anchors (the empty end marker and propagated planes are skipped)
    correct_worst_slice(s, target, below=end)
    corrected = s.mask
    assert not corrected[end:].any()
    h0 = engine.weights_hash
    acc = s.accept()
    assert acc.area == int(corrected.sum()) and engine.weights_hash != h0
    assert {e["kind"] for e in s.events} >= {"propagate", "accept", "update"}


def test_between_two_anchors_fills_from_both_ends(shared_engine):
    image, labels = make_volume(VolumeSpec(kind="tube", shape=(14, 48, 48), seed=5, neighbours=1))
    target = labels == 1
    zs = np.flatnonzero(target.any((1, 2)))
    s = shared_engine.session(image, plane_axes=(1, 2))
    a, b = int(zs[1]), int(zs[-2])
    annotate(s, target, a)
    annotate(s, target, b)
    res = s.propagate(method="frozen")
    inside = list(range(a + 1, b))
    assert all(res.mask[k].any() for k in inside)
    assert np.mean([dice(res.mask[k], target[k]) for k in inside]) > 0.6
    assert {c["from"] for c in res.info["chains"]} == {a, b}


def test_set_mask_makes_an_exact_anchor(shared_engine, blob):
    """``set_mask``: the given mask is the anchor's mask exactly (``prior`` re-predicts it), the
    propagation carries that mask, later prompts edit it, and it is one undoable, logged step."""
    image, target = blob
    z = int(np.argmax(target.sum((1, 2))))
    seed = target[z].copy()
    predicted = shared_engine.session(image, plane_axes=(1, 2)).prior(seed, plane=(z,)).mask[z]
    assert not np.array_equal(predicted, seed)  # the model's redraw of a prior is not the prior
    s = shared_engine.session(image, plane_axes=(1, 2))
    r = s.set_mask(seed, plane=(z,))
    assert np.array_equal(r.mask[z], seed) and not r.mask[np.arange(12) != z].any()
    assert [p.kind for p in s.prompts((z,))] == ["prior"]
    assert [e["kind"] for e in s.events[-2:]] == ["prior", "predict"] and s.events[-2]["extra"]["exact"] is True
    assert np.array_equal(s.prior_masks[s.events[-2]["seq"]], seed)
    res = s.propagate(method="copy")
    assert np.array_equal(res.mask[z], seed)
    assert np.array_equal(res.mask[z + 1], seed)  # "copy" carries the exact anchor mask
    s.undo()
    assert np.array_equal(s.mask[z], seed) and not s.mask[z + 1].any()
    s.undo()
    assert not s.mask.any() and not s.prompts((z,))
    s.redo()
    edge = np.argwhere(seed & ~np.roll(seed, 1, 0))[0]
    edited = s.click((z, *edge), positive=False).mask[z]
    assert [p.kind for p in s.prompts((z,))] == ["prior", "click"] and dice(edited, seed) > 0.8
    with pytest.raises(ValueError, match="empty"):
        s.set_mask(np.zeros_like(seed), plane=(z,))
    with pytest.raises(ValueError, match="plane shape"):
        s.set_mask(seed[:-1], plane=(z,))


# -- cancel, undo, determinism ------------------------------------------------------------------------
def test_cancel_leaves_the_session_as_it_was(shared_engine, blob):
    image, target = blob
    s = shared_engine.session(image, plane_axes=(1, 2))
    annotate(s, target)
    before = state(s)
    ev = threading.Event()
    ev.set()
    with pytest.raises(Cancelled):
        s.propagate(method="frozen", cancel=ev)
    assert same_state(before, state(s))
    token = Cancel()  # set midway, from the progress callback
    with pytest.raises(Cancelled):
        s.propagate(method="ema", cancel=token, progress=lambda d, t, m: token.set() if d >= 2 else None)
    assert same_state(before, state(s))
    stop = []  # a function returning True stops it too
    with pytest.raises(Cancelled):
        s.propagate(method="frozen", cancel=lambda: bool(stop), progress=lambda d, t, m: stop.append(d))
    assert same_state(before, state(s))


def test_a_tqdm_progress_names_the_propagation(shared_engine, blob):
    image, target = blob
    s = shared_engine.session(image, plane_axes=(1, 2))
    annotate(s, target)
    out = io.StringIO()  # not a terminal: one plain line at each quarter
    with TqdmProgress(unit="slice", file=out) as bars:
        s.propagate(method="copy", progress=bars)
    lines = out.getvalue().splitlines()
    assert lines and all(line.startswith("propagating along axis 0: ") for line in lines)
    assert lines[-1].split(": ")[1].split()[0] == f"{image.shape[0] - 1}/{image.shape[0] - 1}"


def test_undo_redo_whole_propagation(shared_engine, blob):
    image, target = blob
    s = shared_engine.session(image, plane_axes=(1, 2))
    annotate(s, target)
    anchor_only = s.mask.copy()
    res = s.propagate(method="registration")
    assert s.undo() is not None and np.array_equal(s.mask, anchor_only)
    assert np.array_equal(s.redo().mask, res.mask)


# -- other layouts --------------------------------------------------------------------------------------
def test_4d_along_time_and_axis_choice(shared_engine):
    image, labels = make_volume(VolumeSpec(kind="abrupt", shape=(8, 40, 40), seed=2, neighbours=0))
    target = labels == 1
    # a time-lapse of one z-slice: (t, z, y, x) with 2 z planes; the object sits on z = 1
    vol = np.stack([image, image[::-1]], axis=1)
    tgt = np.stack([target, np.zeros_like(target)], axis=1)
    s = shared_engine.session(vol, plane_axes=(2, 3))
    t0 = int(np.argmax(target.sum((1, 2))))
    s.click((t0, 0, *click_in_region(target[t0])))
    with pytest.raises(ValueError, match=r"axis= one of \[0, 1\]"):
        s.propagate()
    res = s.propagate(axis=0, method="frozen")
    assert res.mask.shape == vol.shape
    assert dice(res.mask[:, 0], target) > 0.8 and not res.mask[:, 1].any()
    assert s.suggest_slice(axis=0) in (None, *range(8))
    del tgt


def test_other_plane_axes(shared_engine, blob):
    image, target = blob
    vol, tgt = np.moveaxis(image, 0, 1), np.moveaxis(target, 0, 1)  # (y, z, x): planes (0, 2)
    s = shared_engine.session(vol, plane_axes=(0, 2))
    z = int(np.argmax(target.sum((1, 2))))
    s.click((*click_in_region(target[z])[:1], z, click_in_region(target[z])[1]))
    res = s.propagate(method="frozen")
    assert res.axis == 1 and dice(res.mask, tgt) > 0.8


def test_reads_only_windows(shared_engine, blob):
    image, target = blob

    class Lazy:
        """An array that records the size of every read (as a lazily read Zarr would be read)."""

        def __init__(self, a):
            self.a, self.shape, self.dtype, self.reads = a, a.shape, a.dtype, []

        def __getitem__(self, idx):
            out = self.a[idx]
            self.reads.append(np.asarray(out).size)
            return out

    lazy = Lazy(image)
    s = shared_engine.session(lazy, plane_axes=(1, 2))
    annotate(s, target)
    lazy.reads.clear()
    s.propagate(method="ema")
    assert lazy.reads and max(lazy.reads) <= image.shape[1] * image.shape[2]  # one plane at most, never the volume


# -- suggestion --------------------------------------------------------------------------------------------
def test_suggest_slice(shared_engine, blob):
    image, target = blob
    s = shared_engine.session(image, plane_axes=(1, 2))
    assert s.suggest_slice() is None  # nothing prompted
    z = annotate(s, target)
    assert s.suggest_slice() is None  # nothing propagated yet
    s.propagate(method="copy")
    zs = s.suggest_slice(axis=0)
    assert zs is None or (zs != z and s.plane_mask((zs,)).any() and not s.prompts((zs,)))
    from napari_oaims.propagate.suggest import scores

    rows = scores(s)
    assert rows and all(r["distance"] >= 1 for r in rows)


# -- bad input ----------------------------------------------------------------------------------------------
def test_bad_input(shared_engine, blob):
    image, target = blob
    s2d = shared_engine.session(image[5])
    s2d.click(click_in_region(target[5]))
    with pytest.raises(ValueError, match="3D or 4D"):
        s2d.propagate()
    s = shared_engine.session(image, plane_axes=(1, 2))
    with pytest.raises(ValueError, match="prompt the object"):
        s.propagate()
    # an anchor whose mask is empty (a negative click only) is not enough
    s.click((5, *click_in_region(target[5])), positive=False)
    with pytest.raises(ValueError, match="empty masks"):
        s.propagate()
    s.undo()
    z = annotate(s, target)
    before = state(s)
    for bad, match in [
        ({"axis": 3}, "out of range"),
        ({"axis": 1}, "plane axis"),
        ({"axis": "z"}, "integer"),
        ({"extent": (5, 40)}, "outside"),
        ({"extent": (6, 6)}, "outside"),
        ({"extent": (0, 2)}, "no prompted slice"),
        ({"method": "magic"}, "unknown propagation method"),
        ({"flow": "magic"}, "unknown flow"),
        ({"brighter": -0.1}, "brighter must be >= 0"),
    ]:
        with pytest.raises(ValueError, match=match):
            s.propagate(**bad)
        assert same_state(before, state(s))
    with pytest.raises(TypeError, match="unknown settings"):
        s.propagate(not_a_setting=1)
    # an extent limits what is redone
    res = s.propagate(method="frozen", extent=(z - 1, z + 2))
    assert not res.mask[: z - 1].any() and not res.mask[z + 2 :].any()


def test_nan_slices_and_one_slice_volume(shared_engine, blob):
    image, target = blob
    img = image.copy()
    img[8:] = np.nan  # the end of the stack cannot be read
    s = shared_engine.session(img, plane_axes=(1, 2))
    annotate(s, target)
    res = s.propagate(method="frozen")
    assert not res.mask[8:].any() and res.mask[:8].any()
    one = shared_engine.session(image[4:5], plane_axes=(1, 2))
    one.click((0, *click_in_region(target[4])))
    before = state(one)
    res = one.propagate()
    assert not res.changes and same_state(before, state(one))


def test_settings_roundtrip_and_volumes():
    st = PropagateSettings(lr=3e-4, band=(0.3, 0.7))
    assert PropagateSettings.from_dict(st.to_dict()) == st
    with pytest.raises(ValueError, match="unknown propagation settings"):
        PropagateSettings.from_dict({"nope": 1})
    specs = suite(1, shape=(12, 32, 32))
    assert [sp.kind for sp in specs] == list(KINDS)
    for sp in specs:
        image, labels = make_volume(sp)
        assert image.shape == labels.shape == (12, 32, 32) and (labels == 1).any()
        assert np.array_equal(make_volume(sp)[0], image)  # seeded


def test_benchmark_functions(tmp_path):
    from napari_oaims.evaluation.propagate import bench_propagate, stack_cases

    res = bench_propagate(("copy", "registration"), n_per_kind=1, shape=(12, 40, 40), cap=4, out=tmp_path)
    assert {r["method"] for r in res["rows"]} == {"copy", "registration"} and len(res["rows"]) == 10
    for r in res["rows"]:
        assert 1 <= r["clicks_used"] <= 4 and 0 <= r["first_dice"] <= 1 and r["drift"]
    assert set(res["summary"]) == {"copy", "registration"} and "| copy |" in res["table"]
    assert (tmp_path / "propagate_procedural.json").is_file() and (tmp_path / "propagate_procedural.png").is_file()
    import tifffile

    image, labels = make_volume(VolumeSpec(kind="ellipsoid", shape=(10, 40, 40), seed=1, neighbours=2))
    tifffile.imwrite(tmp_path / "im.tif", image)
    tifffile.imwrite(tmp_path / "lb.tif", labels)
    cases = stack_cases(tmp_path / "im.tif", tmp_path / "lb.tif", max_objects=2)
    assert 1 <= len(cases) <= 2 and all(c["target"].any() for c in cases)
