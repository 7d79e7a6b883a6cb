import json

import numpy as np
import pytest
import torch

from napari_oaims.model import load_weights, weights_hash
from napari_oaims.training import pretrain as train
from napari_oaims.training import synth


def test_synth_is_deterministic_and_varied():
    a = synth.sample(np.random.default_rng(3))
    b = synth.sample(np.random.default_rng(3))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[0].shape == (128, 128) and a[1].dtype == np.int32
    kinds = [synth.object_mask(np.random.default_rng(i), 64, k, (4, 12)).any() for i, k in enumerate(synth.KINDS)]
    assert all(kinds)


def test_train_resume_is_exact_and_export_records_recipe(tmp_path):
    cfg = train.TrainConfig(steps=4, batch_size=2, channels=(8, 16), checkpoint_every=2, threads=1)
    full = train.train(cfg, tmp_path / "a")
    train.train(cfg, tmp_path / "b", stop_after=2)
    resumed = train.train(cfg, tmp_path / "b")
    assert weights_hash(full) == weights_hash(resumed)
    logs = (tmp_path / "a" / "log.jsonl").read_text().splitlines()
    assert len(logs) == 4 and all(np.isfinite(json.loads(r)["loss"]) for r in logs)
    path = train.export(full, tmp_path / "a", cfg, tmp_path / "w", command="oaims train --steps 4")
    model, config = load_weights(path)
    t = config["training"]
    assert t["command"] == "oaims train --steps 4" and t["steps_done"] == 4 and t["config"]["seed"] == 0
    assert t["alpha"] == 0.7 and t["beta"] == 200 and t["ccg_sigma"] == 3
    assert config["window"] == {"min_size": 64, "context": 2.0, "first_size": "auto"}
    assert torch.equal(model.head.weight, full.head.weight)


def test_batch_has_iterative_clicks():
    cfg = train.TrainConfig(batch_size=4, channels=(8, 16), p_second_round=1.0)
    model = train.ClickUNet(4, cfg.channels).eval()
    batch = train.make_batch(model, np.random.default_rng(0), cfg)
    assert len(batch) == 4
    for s in batch:
        n = len(s.pos) + len(s.neg) + (s.scribble is not None)
        assert 1 <= n <= cfg.max_clicks and s.channels().shape == (4, 128, 128)


def test_fine_tuning_stage_records_every_stage(tmp_path):
    cfg = train.TrainConfig(steps=2, batch_size=2, channels=(8, 16), threads=1)
    first = train.export(train.train(cfg, tmp_path / "a"), tmp_path / "a", cfg, tmp_path / "w1", command="stage one")
    cfg2 = train.TrainConfig(steps=2, batch_size=2, channels=(8, 16), threads=1, init=str(first), seed=1)
    second = train.train(cfg2, tmp_path / "b")
    _, config = load_weights(train.export(second, tmp_path / "b", cfg2, tmp_path / "w2", command="stage two"))
    assert [s["command"] for s in config["training"]["stages"]] == ["stage one", "stage two"]
    assert config["training"]["init_weights_hash"] == load_weights(first)[1]["weights_hash"]


def test_lowres_rendering_coarsens_the_noise_and_keeps_the_default_recipe():
    """``p_lowres`` renders an image at a lower resolution and upsamples it (as inference does for
    small objects): labels keep their grid, pixel noise becomes spatially correlated. The default
    settings draw no extra random numbers, so the shipped recipe is unchanged."""
    plain = synth.SynthSettings()
    a = synth.sample(np.random.default_rng(5), plain)
    b = synth.sample(np.random.default_rng(5), synth.SynthSettings(p_lowres=0.0, lowres_factor=2.5))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])

    def roughness(settings):
        out = []
        for seed in range(12):
            img, lab = synth.sample(np.random.default_rng(seed), settings)
            assert img.shape == lab.shape == (settings.size, settings.size)
            z = (img - img.mean()) / (img.std() + 1e-9)
            out.append(np.mean(np.abs(np.diff(z, axis=1))))
        return float(np.median(out))

    assert roughness(synth.SynthSettings(p_lowres=1.0, lowres_factor=3.0)) < 0.8 * roughness(plain)
    with pytest.raises(ValueError, match="p_lowres"):
        synth.SynthSettings(p_lowres=1.5)


def test_single_click_share_and_kind_weights():
    """``p_single_click=1`` trains every click sample on the localisation click alone; the
    default draws no extra random numbers (the shipped recipe is unchanged)."""
    model = train.ClickUNet(4, (8, 16)).eval()
    cfg = train.TrainConfig(batch_size=6, channels=(8, 16), p_single_click=1.0, p_scribble=0.0)
    for s in train.make_batch(model, np.random.default_rng(1), cfg):
        assert len(s.pos) == 1 and not s.neg
    a = train.make_batch(model, np.random.default_rng(2), train.TrainConfig(batch_size=3, channels=(8, 16)))
    b = train.make_batch(
        model, np.random.default_rng(2), train.TrainConfig(batch_size=3, channels=(8, 16), p_single_click=0.0)
    )
    assert [s.pos for s in a] == [s.pos for s in b]
    with pytest.raises(ValueError, match="p_single_click"):
        train.TrainConfig(p_single_click=2.0)
    only_ellipses = synth.SynthSettings(kind_weights=(1, 0, 0, 0, 0))
    _, lab = synth.sample(np.random.default_rng(0), only_ellipses)
    assert lab.max() >= 1
    for bad in ((1, 0), (0, 0, 0, 0, 0), (1, -1, 0, 0, 0)):
        with pytest.raises(ValueError, match="kind_weights"):
            synth.SynthSettings(kind_weights=bad)


def test_train_cli_rejects_bad_kind_weights(capsys):
    from napari_oaims.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--kind-weights", "a,b", "--steps", "1"])
    assert "comma-separated numbers" in capsys.readouterr().err


def test_blob_scenes_are_cell_like_and_off_by_default():
    """``p_blob_scene=1`` draws only non-overlapping ellipses and star-convex blobs of the blob
    radius range; the default draws no extra random numbers."""
    a = synth.sample(np.random.default_rng(7))
    b = synth.sample(np.random.default_rng(7), synth.SynthSettings(p_blob_scene=0.0))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    settings = synth.SynthSettings(p_blob_scene=1.0)
    for seed in range(6):
        _, lab = synth.sample(np.random.default_rng(seed), settings)
        for i in range(1, lab.max() + 1):
            area = np.count_nonzero(lab == i)
            assert 12 <= area <= np.pi * (2 * settings.blob_radius[1]) ** 2  # no tubes or huge shapes
    image, labels = synth.mosaic(np.random.default_rng(0), 2, settings)
    assert image.shape == labels.shape == (256, 256) and labels.max() >= 2
    assert len(np.unique(labels)) - 1 == labels.max()  # ids stay unique across tiles
    with pytest.raises(ValueError, match="p_blob_scene"):
        synth.SynthSettings(p_blob_scene=-0.1)
    with pytest.raises(ValueError, match="blob_blur_sigma"):
        synth.SynthSettings(blob_blur_sigma=(3.0, 1.0))


def _edge_rise(image: np.ndarray, labels: np.ndarray) -> float:
    """Mean absolute intensity step across label boundaries, relative to the object contrast."""
    from scipy import ndimage

    fg = labels > 0
    inner = fg & ~ndimage.binary_erosion(fg)
    outer = ndimage.binary_dilation(fg) & ~fg
    core = np.median(image[ndimage.binary_erosion(fg, iterations=4)])
    bg = np.median(image[~ndimage.binary_dilation(fg, iterations=4)])
    return float(abs(image[inner].mean() - image[outer].mean()) / max(abs(core - bg), 1e-6))


def test_soft_blob_blur_softens_cell_edges_only():
    """``blob_blur_sigma`` blurs only the cell-like scenes: the intensity jump across their label
    boundaries shrinks, the general scenes are drawn exactly as before."""
    soft = synth.SynthSettings(p_blob_scene=1.0, blob_blur_sigma=(5.0, 6.0))
    sharp = synth.SynthSettings(p_blob_scene=1.0, blob_blur_sigma=(0.0, 0.5))
    rises = {
        name: np.median([_edge_rise(*synth.sample(np.random.default_rng(seed), st)) for seed in range(8)])
        for name, st in (("soft", soft), ("sharp", sharp))
    }
    assert rises["soft"] < 0.6 * rises["sharp"]
    general = synth.SynthSettings(p_blob_scene=0.0, blob_blur_sigma=(5.0, 6.0))
    a, b = synth.sample(np.random.default_rng(4), general), synth.sample(np.random.default_rng(4))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="tiles"):
        synth.mosaic(np.random.default_rng(0), 0)


def test_synth_cli_writes_a_validation_pair(tmp_path):
    import tifffile

    from napari_oaims.cli import main

    assert main(["synth", "--out", str(tmp_path / "val"), "--tiles", "2", "--blob-p", "1"]) == 0
    image, labels = tifffile.imread(tmp_path / "val" / "image.tif"), tifffile.imread(tmp_path / "val" / "labels.tif")
    assert image.shape == labels.shape == (256, 256) and labels.max() >= 2
    assert main(["synth", "--out", str(tmp_path / "bad"), "--blob-p", "3"]) == 2  # clear error, no traceback


def test_weight_average_resumes_exactly_and_is_what_export_writes(tmp_path):
    """``ema`` keeps a moving average of the weights in the checkpoint; resuming gives the same
    average as an unbroken run, and the returned (exported) model is the average, not the last step."""
    cfg = train.TrainConfig(steps=4, batch_size=2, channels=(8, 16), checkpoint_every=2, threads=1, ema=0.5)
    full = train.train(cfg, tmp_path / "a")
    train.train(cfg, tmp_path / "b", stop_after=2)
    resumed = train.train(cfg, tmp_path / "b")
    assert weights_hash(full) == weights_hash(resumed)
    state = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    assert "ema" in state
    raw = train.ClickUNet(4, cfg.channels)
    raw.load_state_dict(state["model"])
    assert weights_hash(raw) != weights_hash(full)
    plain = train.TrainConfig(steps=4, batch_size=2, channels=(8, 16), checkpoint_every=2, threads=1)
    last = train.train(plain, tmp_path / "c")
    assert "ema" not in torch.load(tmp_path / "c" / "last.pt", weights_only=True)
    assert weights_hash(last) == weights_hash(raw)  # the average draws no random numbers
    with pytest.raises(ValueError, match="ema"):
        train.TrainConfig(ema=1.0)


@pytest.mark.parametrize("kind", synth.SCENES)
def test_each_scene_kind_draws_valid_images_and_labels(kind):
    """Every scene kind gives a finite float image and consecutive instance labels of the frame's
    size, with objects of at least 12 px; two draws of one seed are identical."""
    shares = tuple(1.0 if k == kind else 0.0 for k in synth.SCENES)
    settings = synth.SynthSettings(scene_p=shares)
    counts = []
    for seed in range(3):
        img, lab = synth.sample(np.random.default_rng(seed), settings)
        again = synth.sample(np.random.default_rng(seed), settings)
        assert np.array_equal(img, again[0]) and np.array_equal(lab, again[1])
        assert img.shape == lab.shape == (128, 128) and img.dtype == np.float32 and lab.dtype == np.int32
        assert np.isfinite(img).all() and img.std() > 0
        ids = np.unique(lab[lab > 0])
        assert np.array_equal(ids, np.arange(1, lab.max() + 1))
        assert all(np.count_nonzero(lab == i) >= 12 for i in ids)
        counts.append(lab.max())
    assert max(counts) >= 1


def test_scene_kinds_have_their_layout():
    """Nested scenes hold objects inside others; dark-in-texture objects are darker than the
    tissue around them; thin objects are thin; touching cells share borders; lesions differ a
    little from the tissue around them; cavities are elongated and dark."""
    from scipy import ndimage

    from napari_oaims.training import scenes

    s = synth.SynthSettings()
    inside = 0
    for seed in range(6):
        _, lab, _, _ = scenes.nested(np.random.default_rng(seed), s)
        for i in range(1, lab.max() + 1):
            ring = ndimage.binary_dilation(lab == i, iterations=2) & ~(lab == i)
            around = np.unique(lab[ring])
            inside += len(around) == 1 and around[0] > 0  # wholly surrounded by one other object
    assert inside >= 2
    img, lab, _, _ = scenes.dark_in_texture(np.random.default_rng(0), s)
    assert lab.max() >= 2 and img[lab > 0].mean() < img[lab == 0].mean() - 0.2
    widths = []
    for seed in range(4):
        _, lab, _, _ = scenes.thin(np.random.default_rng(seed), s)
        for i in range(1, lab.max() + 1):
            widths.append(ndimage.distance_transform_edt(lab == i).max())
    assert np.median(widths) <= 4
    _, lab, _, _ = scenes.touching(np.random.default_rng(1), s)
    shared = (ndimage.maximum_filter(lab, 3) != ndimage.minimum_filter(lab, 3)) & (ndimage.minimum_filter(lab, 3) > 0)
    assert lab.max() >= 2 and shared.any()
    steps, elongation = [], []
    for seed in range(6):
        img, lab, _, _ = scenes.lesion(np.random.default_rng(seed), s)
        for i in range(1, lab.max() + 1):  # a lesion differs from the tissue around it, but little
            m = lab == i
            ring = ndimage.binary_dilation(m, iterations=4) & ~ndimage.binary_dilation(m, iterations=2) & (lab == 0)
            if ring.any():
                steps.append(abs(img[m].mean() - img[ring].mean()))
        img, lab, _, _ = scenes.cavity(np.random.default_rng(seed), s)
        for i in range(1, lab.max() + 1):  # cavities are long, thin and darker than the tissue
            m = lab == i
            ring = ndimage.binary_dilation(m, iterations=3) & ~m & (lab == 0)
            elongation.append(m.sum() / (2 * ndimage.distance_transform_edt(m).max()) ** 2)
            assert img[m].mean() < img[ring].mean() - 0.1
    assert len(steps) >= 6 and 0.02 < np.median(steps) < 0.15
    assert len(elongation) >= 6 and np.median(elongation) > 2
    with pytest.raises(ValueError, match="unknown scene kind"):
        scenes.draw("clouds", np.random.default_rng(0), s)


def test_scene_shares_are_checked_and_off_by_default():
    """Zero shares draw no random numbers (the shipped recipe is unchanged); bad shares are refused."""
    a = synth.sample(np.random.default_rng(9), synth.SynthSettings(p_blob_scene=0.3))
    b = synth.sample(
        np.random.default_rng(9), synth.SynthSettings(p_blob_scene=0.3, scene_p=(0.0,) * len(synth.SCENES))
    )
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    n = len(synth.SCENES)
    for bad in ((0.5,) * n, (0.1,) * (n - 1), (-0.1,) + (0.0,) * (n - 1)):
        with pytest.raises(ValueError, match="scene_p"):
            synth.SynthSettings(scene_p=bad)


def test_scene_flags_reach_the_generator(tmp_path):
    """``--thin-p`` etc. of ``oaims synth``/``oaims train`` set ``scene_p`` in ``SCENES`` order,
    and the written mosaic is the one of those settings."""
    import argparse

    import tifffile

    from napari_oaims.cli import main
    from napari_oaims.cli import train as cli_train

    assert list(cli_train.SCENE_HELP) == list(synth.SCENES)
    parser = argparse.ArgumentParser()
    cli_train.register(parser.add_subparsers())
    args = parser.parse_args(["train", "--thin-p", "0.25", "--dark-in-texture-p", "0.5"])
    assert cli_train._synth_settings(args).scene_p == (0.0, 0.5, 0.25) + (0.0,) * (len(synth.SCENES) - 3)
    assert main(["synth", "--out", str(tmp_path / "v"), "--tiles", "1", "--seed", "3", "--touching-p", "1"]) == 0
    expected = synth.mosaic(
        np.random.default_rng(3), 1, synth.SynthSettings(scene_p=tuple(float(k == "touching") for k in synth.SCENES))
    )
    assert np.array_equal(tifffile.imread(tmp_path / "v" / "labels.tif"), expected[1])
    assert main(["synth", "--out", str(tmp_path / "bad"), "--nested-p", "0.7", "--thin-p", "0.7"]) == 2


def test_robot_rounds_click_like_the_benchmark_robot():
    """``p_robot_rounds=1``: after the localisation click, each further click is the benchmark
    robot's (centre of the largest error component of the prediction at that point), one per
    round; the default draws no extra random numbers."""
    from napari_oaims.simulate.clicks import largest_error_component

    model = train.ClickUNet(4, (8, 16)).eval()
    cfg = train.TrainConfig(batch_size=4, channels=(8, 16), p_robot_rounds=1.0, robot_rounds=3, p_scribble=0.0)
    batch = train.make_batch(model, np.random.default_rng(4), cfg)
    assert any(len(s.pos) + len(s.neg) > 1 for s in batch)
    for s in batch:
        assert 1 <= len(s.pos) + len(s.neg) <= 1 + cfg.robot_rounds
        if len(s.pos) + len(s.neg) > 1:  # replay the first correction: the robot's centre click
            first = train._Sample(s.image, s.target, s.prior, pos=s.pos[:1])
            pred = train._predict(model, [first])[0]
            region, positive = largest_error_component(pred, s.target)
            second = (s.pos[1:2] if positive else s.neg[:1])[0]
            assert region[second] and second == train.click_in_region(region, mode="center")
    a = train.make_batch(model, np.random.default_rng(2), train.TrainConfig(batch_size=3, channels=(8, 16)))
    b = train.make_batch(
        model, np.random.default_rng(2), train.TrainConfig(batch_size=3, channels=(8, 16), p_robot_rounds=0.0)
    )
    assert [s.pos for s in a] == [s.pos for s in b] and [s.neg for s in a] == [s.neg for s in b]
    with pytest.raises(ValueError, match="p_robot_rounds"):
        train.TrainConfig(p_robot_rounds=1.5)
    with pytest.raises(ValueError, match="robot_rounds"):
        train.TrainConfig(robot_rounds=0)


def test_rim_clicks_move_the_boundary_and_are_off_by_default():
    """``p_rim_click=1``: every sample with room for a correction gets a click on a thin rim
    (within 3 px of the object's boundary, inside or outside); 0 draws no extra numbers."""
    from scipy import ndimage

    model = train.ClickUNet(4, (8, 16)).eval()
    cfg = train.TrainConfig(batch_size=8, channels=(8, 16), p_rim_click=1.0, max_clicks=2, p_scribble=0.0)
    batch = train.make_batch(model, np.random.default_rng(5), cfg)
    near = seconds = 0
    for s in batch:
        edt_in = ndimage.distance_transform_edt(s.target)
        edt_out = ndimage.distance_transform_edt(~s.target)
        for y, x in s.pos[1:] + s.neg:  # with at most 2 clicks, the second is the rim click
            seconds += 1
            near += bool(edt_in[y, x] <= 3 if s.target[y, x] else edt_out[y, x] <= 3)
    assert seconds >= 3 and near == seconds
    a = train.make_batch(model, np.random.default_rng(2), train.TrainConfig(batch_size=3, channels=(8, 16)))
    b = train.make_batch(
        model, np.random.default_rng(2), train.TrainConfig(batch_size=3, channels=(8, 16), p_rim_click=0.0)
    )
    assert [s.pos for s in a] == [s.pos for s in b] and [s.neg for s in a] == [s.neg for s in b]
    with pytest.raises(ValueError, match="p_rim_click"):
        train.TrainConfig(p_rim_click=-0.1)
