"""The rules that turn the model's mask into the object's answer: one connected object, the scale
of an object's first window, never an empty answer to a positive click, a correction corrects near
the click (napari_oaims.answer)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from napari_oaims import answer, session_windows
from napari_oaims.core import guidance, regions
from napari_oaims.core.prompts import Prompt
from napari_oaims.evaluation.suites import SUITES, suite

from conftest import blind_engine


def _click(y, x, positive=True):
    return Prompt("click", positive, np.array([[y, x]]))


def _two_blobs(window: guidance.Window) -> np.ndarray:
    """Logits on ``window`` (native size) holding two separate discs."""
    yy, xx = np.mgrid[: window.size, : window.size]
    inside = (np.hypot(yy - 20, xx - 20) < 8) | (np.hypot(yy - 45, xx - 45) < 8)
    return np.where(inside, 4.0, -4.0).astype(np.float32)


def test_only_prompted_components_are_kept(engine, nuclei_crop):
    image, _ = nuclei_crop
    s = engine.session(image)
    window = guidance.Window(0, 0, 64)
    logits = _two_blobs(window)
    one, _ = answer.window_answer(s, (), [_click(20, 20)], window, logits)
    assert one[20, 20] and not one[45, 45] and one.sum() == (logits > 0).sum() // 2
    both, _ = answer.window_answer(s, (), [_click(20, 20), _click(45, 45)], window, logits)
    assert both.sum() == (logits > 0).sum()  # a positive click on the dropped part brings it back
    near, _ = answer.window_answer(s, (), [_click(20, 29)], window, logits)  # just outside the edge
    assert near[20, 20] and not near[45, 45]
    box = Prompt("box", True, np.zeros((0, 2)), box=(38, 38, 53, 53))
    boxed, _ = answer.window_answer(s, (), [box], window, logits)
    assert boxed[45, 45] and not boxed[20, 20]


def test_keep_prompted_follows_a_prior():
    mask = np.zeros((30, 30), bool)
    mask[2:8, 2:8] = mask[20:26, 20:26] = True
    prior = np.zeros_like(mask)
    prior[21, 21] = True
    kept = regions.keep_prompted(mask, np.zeros((0, 2)), prior)
    assert kept[22, 22] and not kept[4, 4]
    assert regions.keep_prompted(mask, np.array([[15, 15]])).sum() == 0  # far from both: nothing


def test_a_session_answers_one_connected_object(engine):
    """Two bright discs 6 px apart: a click on one gives one connected object."""
    image = np.full((200, 200), 10.0, np.float32)
    yy, xx = np.mgrid[:200, :200]
    image[np.hypot(yy - 100, xx - 88) < 9] = 200.0
    image[np.hypot(yy - 100, xx - 112) < 9] = 200.0
    image += np.random.default_rng(0).normal(0, 2, image.shape).astype(np.float32)
    result = engine.session(image).click((100, 88))
    from scipy import ndimage

    assert result.mask[100, 88] and ndimage.label(result.mask)[1] == 1


def test_a_positive_click_is_never_answered_empty(engine, nuclei_crop):
    image, labels = nuclei_crop
    s = blind_engine(engine).session(image)
    ys, xs = np.nonzero(labels == np.bincount(labels.ravel())[1:].argmax() + 1)
    y, x = int(np.median(ys)), int(np.median(xs))
    result = s.click((y, x))
    assert result.fallback == "region" and result.mask[y, x] and not s.found_nothing()
    assert s.events[-1]["extra"]["fallback"] == "region"
    assert result.area < image.size / 4  # the region of similar values, not the whole window
    result = s.click((2, 2), positive=False)  # a negative click may leave what is there
    assert result.fallback is None


def test_the_smaller_window_is_tried_before_the_region(engine, nuclei_crop):
    image, labels = nuclei_crop
    s = engine.session(image)
    tid = np.bincount(labels.ravel())[1:].argmax() + 1
    ys, xs = np.nonzero(labels == tid)
    y, x = int(np.median(ys)), int(np.median(xs))
    window = guidance.choose_window(np.array([[y, x]]), s.source.plane_shape, min_size=120)
    used, inside, _, how = answer.no_empty(s, (), [_click(y, x)], window)
    assert how == "smaller window" and used.size == 60 and inside.any()


def test_a_first_window_too_wide_for_the_object_is_halved(engine):
    """A small faint lesion inside a large organ: the blob filter at the click sees the organ, the
    model is unsure on that window, and the half-size window's surer answer wins."""
    image, labels = suite("lesions", seed=0, tiles=(1, 1))
    s = engine.session(image)
    tid = 1
    ys, xs = np.nonzero(labels == tid)
    y, x = int(np.median(ys)), int(np.median(xs))
    first = session_windows.first_window(s, (), np.array([[y, x]]))
    s.click((y, x))
    used = s.events[-1]["extra"]["window"][2]
    assert first == guidance.AUTO_MAX_WINDOW and used <= first // 2


def _organ(size: int = 1536, radius: float = 90.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured organ (radius px, an ellipse 1.0 x 0.8) brighter than the textured tissue
    around it, in the middle of a ``size`` px plane, and its mask."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)

    def field(sigma: float) -> np.ndarray:
        f = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma)
        return (f - f.mean()) / f.std()

    yy, xx = np.mgrid[:size, :size]
    organ = np.hypot(yy - size / 2, (xx - size / 2) / 0.8) < radius
    image = 0.4 + 0.04 * field(3.0)
    image[organ] += 0.3 + 0.04 * field(4.0)[organ]
    image = ndimage.gaussian_filter(image, 1.0) + rng.normal(0, 0.03, (size, size))
    return image.astype(np.float32), organ


def test_outline_contrast_tells_a_framed_object_from_a_blob_inside_one():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    disc = np.hypot(yy - 32, xx - 32) < 10
    framed = np.where(disc, 0.8, 0.2) + rng.normal(0, 0.05, (64, 64))
    inside = np.full((64, 64), 0.8) + rng.normal(0, 0.05, (64, 64))
    assert regions.outline_contrast(framed, disc) > 5 > regions.FLAT_OUTLINE > regions.outline_contrast(inside, disc)
    assert regions.outline_contrast(framed, np.zeros((64, 64), bool)) == 0.0
    assert regions.outline_contrast(framed, np.ones((64, 64), bool)) == 0.0  # no ring around it


def test_a_click_inside_an_organ_larger_than_the_first_window_gets_the_organ(engine):
    """The blob at the click is the organ's texture: its first window lies inside the organ, the
    model's answer there follows no edge, and the larger window's answer (the organ) wins."""
    from napari_oaims.evaluation.metrics import dice

    image, organ = _organ()
    got = {}
    for on in (False, True):
        s = engine.session(image)
        s.larger_windows = on
        s.click((768, 768))
        got[on] = (dice(s.mask, organ), s.events[-1]["extra"]["window"][2])
    assert got[False][0] < 0.2 and got[True][0] > 0.85, got
    assert got[True][1] > 2 * got[False][1]


def test_framed_objects_keep_their_first_window(engine, nuclei_crop):
    """Nuclei's first answers follow their edges: the larger-window rule changes none of them."""
    image, labels = nuclei_crop
    for tid in [int(i) for i in np.unique(labels) if i][:6]:
        ys, xs = np.nonzero(labels == tid)
        got = []
        for on in (False, True):
            s = engine.session(image)
            s.larger_windows = on
            s.click((int(np.median(ys)), int(np.median(xs))))
            got.append((s.mask, s.events[-1]["extra"]["window"]))
        assert np.array_equal(got[0][0], got[1][0]) and got[0][1] == got[1][1]


@pytest.mark.parametrize("name", sorted(SUITES))
def test_suites_are_seeded_mosaics_of_labelled_scenes(name):
    from napari_oaims.evaluation.suites import SUITE_TILE, SUITE_TILES

    image, labels = suite(name, seed=3, tiles=(1, 2))
    again, _ = suite(name, seed=3, tiles=(1, 2))
    t = SUITE_TILES.get(name, SUITE_TILE)
    assert image.shape == labels.shape == (t, 2 * t) and np.array_equal(image, again)
    assert labels.max() >= 2 and np.isfinite(image).all()
    if name == "uniform":
        assert (image[labels == 0] == 0).all()
    with pytest.raises(ValueError, match="unknown suite"):
        suite("nothing")


def test_synth_refuses_zero_tiles(tmp_path, capsys):
    from napari_oaims.cli import main

    for bad in ("0", "-2", "two"):
        with pytest.raises(SystemExit):
            main(["synth", "--suite", "organs", "--tiles", bad, "--out", str(tmp_path / "o")])
        assert "at least 1" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_synth_writes_a_suite_that_bench_clicks_runs(tmp_path, capsys):
    import json

    from napari_oaims.cli import main

    assert main(["synth", "--suite", "uniform", "--tiles", "1", "--seed", "0", "--out", str(tmp_path / "u")]) == 0
    assert "image.tif" in capsys.readouterr().out
    out = tmp_path / "clicks.json"
    args = ["--image", str(tmp_path / "u" / "image.tif"), "--labels", str(tmp_path / "u" / "labels.tif")]
    opts = ["--methods", "model,watershed", "--clicks", "2", "--max-targets", "2", "--out", str(out)]
    assert main(["bench", "clicks", *args, *opts]) == 0
    table = capsys.readouterr().out
    assert "refused" in table and "empty" in table and "dice@2" in table
    summary = json.loads(out.read_text())["methods"]["model"]["summary"]
    assert summary["refused"] == 0 and summary["empty"] == 0 and summary["dice@1"] > 0.5


def _disc(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.hypot(yy - cy, xx - cx) <= r


def test_a_correction_click_corrects_near_itself():
    """A negative click on the rim of a mask changes it only within CORRECTION_REACH times its
    depth; a click deep inside a wrong region, or a positive click far from the mask, takes the
    new answer everywhere; first clicks and clicks that correct nothing take it as it is."""
    before = _disc((60, 60), 30, 30, 12)
    shrunk = _disc((60, 60), 30, 30, 9)  # the model redraws the whole edge 3 px further in
    rim = np.argwhere(before & ~np.roll(before, 1, axis=1))[0]  # on the mask, next to its outside
    click = Prompt("click", False, rim[None].astype(float), corrected=True)
    out = answer.correct_near(before, shrunk, click, (0, 0))
    far = ~_disc((60, 60), *rim, answer.CORRECTION_REACH * 1.0)
    assert np.array_equal(out[far], before[far]) and not out[tuple(rim)]
    assert out.sum() > shrunk.sum() + 0.5 * (before.sum() - shrunk.sum())
    deep = Prompt("click", False, np.array([[30.0, 30.0]]), corrected=True)  # depth 12: reach 48
    assert np.array_equal(answer.correct_near(before, shrunk, deep, (0, 0)), shrunk)
    grown = _disc((60, 60), 30, 30, 28)
    far_click = Prompt("click", True, np.array([[30.0, 56.0]]), corrected=True)  # 14 px out: reach 56
    assert np.array_equal(answer.correct_near(before, grown, far_click, (0, 0)), grown)
    offset = (100, 200)  # region values: the click is in plane coordinates
    moved = Prompt("click", False, rim[None] + np.array([offset], float), corrected=True)
    assert np.array_equal(answer.correct_near(before, shrunk, moved, offset), out)
    for quiet in (replace(click, corrected=None), replace(click, corrected=False)):
        assert np.array_equal(answer.correct_near(before, shrunk, quiet, (0, 0)), shrunk)


def test_a_negative_click_on_the_rim_keeps_the_rest_of_the_edge(engine, nuclei_crop):
    """The shipped model after a negative click on its first mask's rim: the mask is unchanged
    beyond CORRECTION_REACH times the click's depth, and the click's pixel is background."""
    from scipy import ndimage

    image, labels = nuclei_crop
    s = engine.session(image)
    tid = np.bincount(labels.ravel())[1:].argmax() + 1
    ys, xs = np.nonzero(labels == tid)
    first = s.click((int(np.median(ys)), int(np.median(xs)))).mask.copy()
    depth = ndimage.distance_transform_edt(first)
    y, x = np.argwhere(depth == 1)[0]
    second = s.click((int(y), int(x)), positive=False).mask
    far = ~_disc(first.shape, y, x, answer.CORRECTION_REACH * 1.0)
    assert not second[y, x] and np.array_equal(second[far], first[far])
    assert s.prompts()[-1].corrected
