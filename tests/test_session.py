import numpy as np
import pytest

from napari_oaims.evaluation.metrics import dice

from conftest import blind_engine, largest_ids, object_centre

EVENT_KEYS = {"seq", "time", "kind", "object", "plane", "coords", "label", "latency_ms", "weights", "extra"}


def test_click_segments_a_real_nucleus(engine, nuclei_crop):
    image, labels = nuclei_crop
    s = engine.session(image)
    scores = []
    for lid in largest_ids(labels, 4):
        mask = s.click(object_centre(labels, lid)).mask
        assert mask.shape == image.shape and mask.dtype == bool
        scores.append(dice(mask, labels == lid))
        s.clear()
    assert np.mean(scores) > 0.7


def test_found_nothing_says_when_a_prompt_that_asks_for_an_object_got_background(engine, nuclei_crop):
    image, labels = nuclei_crop
    y, x = object_centre(labels, largest_ids(labels, 1)[0])
    s = engine.session(image)
    assert not s.found_nothing()  # no prompt yet
    assert s.click((y, x)).area > 0 and not s.found_nothing()
    blind = blind_engine(engine).session(image)
    prior = np.zeros(image.shape, bool)
    prior[y - 3 : y + 3, x - 3 : x + 3] = True
    assert blind.prior(prior).area == 0 and blind.found_nothing()
    blind.undo()
    assert not blind.found_nothing()
    blind.click((y, x), positive=False)  # background is the right answer to a negative click
    assert not blind.found_nothing()
    result = blind.click((y, x))  # a positive click or a box is never answered with nothing
    assert result.area > 0 and result.fallback == "region" and not blind.found_nothing()
    blind.clear()
    result = blind.box((y - 8, x - 8, y + 8, x + 8))
    assert result.area > 0 and result.fallback == "region" and not blind.found_nothing()


def test_negative_click_removes_and_undo_redo(engine, nuclei_crop):
    image, labels = nuclei_crop
    s = engine.session(image)
    lid = largest_ids(labels, 1)[0]
    y, x = object_centre(labels, lid)
    m1 = s.click((y, x)).mask
    assert m1[y, x]
    m2 = s.click((y, x), positive=False).mask  # the later click replaces the earlier one at its pixel
    assert not m2[y, x]
    assert [p.positive for p in s.prompts(())] == [False]
    assert np.array_equal(s.undo().mask, m1)
    assert [p.positive for p in s.prompts(())] == [True]
    assert np.array_equal(s.redo().mask, m2)
    s.undo()
    s.undo()
    assert not s.mask.any()
    assert s.undo().mask.sum() == 0  # nothing left to undo: no-op


def test_event_log_schema(engine, nuclei_crop):
    image, labels = nuclei_crop
    s = engine.session(image)
    y, x = object_centre(labels, largest_ids(labels, 1)[0])
    s.click((y, x))
    s.undo()
    s.redo()
    s.accept()
    kinds = [e["kind"] for e in s.events]
    assert kinds == ["session", "click", "predict", "undo", "redo", "accept"]
    for i, e in enumerate(s.events):
        assert set(e) == EVENT_KEYS and e["seq"] == i and e["weights"] == engine.weights_hash
    click, predict = s.events[1], s.events[2]
    assert click["coords"] == [y, x] and click["label"] == 1 and click["plane"] == []
    assert predict["latency_ms"] > 0 and predict["extra"]["area"] > 0
    assert s.object_id == 2


def test_box_and_scribble_and_prior(engine, nuclei_crop):
    image, labels = nuclei_crop
    lid = largest_ids(labels, 1)[0]
    target = labels == lid
    ys, xs = np.nonzero(target)
    s = engine.session(image)
    m = s.box((ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)).mask
    assert dice(m, target) > 0.6
    s.clear()
    cy, cx = object_centre(labels, lid)
    m = s.scribble([[cy, cx - 2], [cy, cx + 2]]).mask
    assert m[cy, cx]
    s.clear()
    m = s.prior(target).mask
    assert dice(m, target) > 0.6
    assert s.events[-2]["kind"] == "prior" and s.events[-2]["seq"] in s.prior_masks


def test_clear_is_undoable(engine, nuclei_crop):
    image, labels = nuclei_crop
    s = engine.session(image)
    m = s.click(object_centre(labels, largest_ids(labels, 1)[0])).mask
    assert not s.clear().mask.any()
    assert np.array_equal(s.undo().mask, m)


@pytest.mark.parametrize(
    "coords, match",
    [
        ((-1, 5), "outside"),
        ((5, 160), "outside"),
        ((1, 2, 3), "expected 2 coordinates"),
        ((np.nan, 3), "finite"),
        (("a", 3), "numbers"),
    ],
)
def test_bad_clicks_change_nothing(engine, nuclei_crop, coords, match):
    s = engine.session(nuclei_crop[0])
    n = len(s.events)
    with pytest.raises(ValueError, match=match):
        s.click(coords)
    assert len(s.events) == n and not s.planes


@pytest.mark.parametrize("box", [(50, 50, 40, 60), (10, 10, 10, 20), (500, 500, 600, 600), (1, 2, 3)])
def test_bad_boxes(engine, nuclei_crop, box):
    s = engine.session(nuclei_crop[0])
    with pytest.raises(ValueError):
        s.box(box)
    assert len(s.events) == 1


def test_bad_prior_and_scribble(engine, nuclei_crop):
    s = engine.session(nuclei_crop[0])
    with pytest.raises(ValueError, match="plane shape"):
        s.prior(np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="empty"):
        s.prior(np.zeros((160, 160), bool))
    with pytest.raises(ValueError):
        s.scribble(np.zeros((0, 2)))


def test_accept_empty_is_an_error(engine, nuclei_crop):
    s = engine.session(nuclei_crop[0])
    with pytest.raises(ValueError, match="nothing to accept"):
        s.accept()
    s.click((5, 5), positive=False)  # only a negative click: empty mask
    with pytest.raises(ValueError, match="nothing to accept"):
        s.accept()


@pytest.mark.parametrize(
    "image, error, match",
    [
        (np.zeros((0, 10)), ValueError, "empty"),
        (np.ones((1, 50)), ValueError, "too small"),
        (np.full((32, 32), 7.0), ValueError, "constant"),
        (np.ones((32, 32), complex), TypeError, "dtype"),
        (np.empty((32, 32), object), TypeError, "dtype"),
        (np.arange(10.0), ValueError, "2 spatial axes"),
        (np.full((32, 32), np.nan), ValueError, "finite"),
    ],
)
def test_bad_images(engine, image, error, match):
    with pytest.raises(error, match=match):
        engine.session(image)


def test_nan_pixels_are_handled(engine, nuclei_crop):
    image, labels = nuclei_crop
    img = image.astype(np.float32)
    img[::5, ::5] = np.nan
    img[1, 1] = np.inf
    s = engine.session(img)
    lid = largest_ids(labels, 1)[0]
    mask = s.click(object_centre(labels, lid)).mask
    assert dice(mask, labels == lid) > 0.5


def test_nd_click_segments_its_plane(engine):
    from napari_oaims.training.synth import volume

    vol, lab = volume(np.random.default_rng(0), shape=(8, 64, 64), n_objects=3)
    s = engine.session(vol)
    z = 4
    ids = [i for i in np.unique(lab[z]) if i]
    y, x = object_centre(lab[z], ids[0])
    mask = s.click((z, y, x)).mask
    assert mask.shape == vol.shape and mask[z].any() and not np.delete(mask, z, axis=0).any()
    assert s.events[-1]["plane"] == [z]
    # Another plane of the same object, then a different orientation.
    s.click((z + 1, y, x))
    assert s.mask[z + 1].any() and s.mask[z].any()
    s2 = engine.session(vol, plane_axes=(0, 2))
    m2 = s2.click((z, y, x)).mask
    assert m2[:, y, :].any() and not np.delete(m2, y, axis=1).any()
    assert s2.full_coords([y], (z, x)) == (z, y, x)


def test_rgb_and_multichannel(engine, nuclei_crop):
    image, labels = nuclei_crop
    lid = largest_ids(labels, 1)[0]
    u8 = (image / image.max() * 255).astype(np.uint8)
    rgb = np.stack([u8, u8 // 2, np.zeros_like(u8)], axis=-1)
    s = engine.session(rgb)
    assert s.source.rgb and s.spatial_shape == image.shape
    assert dice(s.click(object_centre(labels, lid)).mask, labels == lid) > 0.5
    multi = np.stack([image, np.random.default_rng(0).random(image.shape)], axis=0)
    s = engine.session(multi, channel_axis=0, channel=0)
    assert dice(s.click(object_centre(labels, lid)).mask, labels == lid) > 0.5
    with pytest.raises(ValueError, match="channel 5 out of range"):
        engine.session(multi, channel_axis=0, channel=5)


def test_lazy_zarr_image(engine, nuclei_crop, tmp_path):
    import zarr

    image, labels = nuclei_crop
    z = zarr.create_array(str(tmp_path / "img.zarr"), shape=image.shape, chunks=(64, 64), dtype=image.dtype)
    z[:] = image
    s = engine.session(zarr.open_array(str(tmp_path / "img.zarr"), mode="r"))
    lid = largest_ids(labels, 1)[0]
    assert dice(s.click(object_centre(labels, lid)).mask, labels == lid) > 0.6


def test_large_image_click_touches_only_a_window(engine, nuclei):
    image, labels = nuclei
    big = np.tile(image, (4, 4))
    s = engine.session(big)
    lid = largest_ids(labels, 1)[0]
    y, x = object_centre(labels, lid)
    result = s.click((y + 1024, x + 1024))
    assert result.mask.shape == big.shape
    win = s.events[-1]["extra"]["window"]
    assert win[2] < 300  # local inference: the window is object-sized, not image-sized
    (change,) = result.changes
    region = change.region
    assert change.plane == () and change.values.shape == (
        region[0].stop - region[0].start,
        region[1].stop - region[1].start,
    )
    assert (region[0].stop - region[0].start) * (region[1].stop - region[1].start) < 300 * 300
    assert np.array_equal(result.mask[region], change.values)  # the change is the mask there


def test_2d_with_swapped_plane_axes_keeps_the_image_shape(engine, nuclei_crop):
    image, labels = nuclei_crop
    img = image[:, :120]
    s = engine.session(img, plane_axes=(1, 0))
    lid = largest_ids(labels[:, :120], 1)[0]
    y, x = object_centre(labels[:, :120], lid)
    mask = s.click((y, x)).mask
    assert mask.shape == img.shape and mask[y, x]


def _with_window(engine, **window):
    from napari_oaims import Engine

    config = {**engine.config, "window": {"min_size": 64, "context": 2.0, **window}}
    return Engine(engine.model, config, device="cpu")


def test_first_window_comes_from_the_weights_and_only_for_a_new_object(engine, nuclei, tmp_path):
    """An object's first click is predicted on a ``window.first_size`` window (weights without it
    keep 64 px); once the object has a mask, later clicks use the usual mask-sized window."""
    from napari_oaims import Engine

    assert engine.first_window == "auto"  # the shipped weights' JSON asks for object-sized windows
    image, labels = nuclei
    lid = largest_ids(labels, 1)[0]
    y, x = object_centre(labels, lid)
    wide = _with_window(engine, first_size=96)
    s = wide.session(image)
    s.click((y, x))
    first = s.events[-1]["extra"]
    assert first["window"][2] == 96 and first["passes"] == 1
    ys, xs = np.nonzero(s.mask)
    s.click((int(ys.max()), int(xs.max())), positive=False)  # a correction: the mask now sets the window
    extent = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
    assert s.events[-1]["extra"]["window"][2] == max(96, int(np.ceil(2 * extent)))  # at least the first
    s.clear()
    s.click((y, x))
    assert s.events[-1]["extra"]["window"][2] == 96  # a new object starts with the first window again
    # Without first_size the first click keeps the 64-px window of earlier weights.
    old_config = {**engine.config, "window": {"min_size": 64, "context": 2.0}}
    old = Engine(engine.model, old_config, device="cpu").session(image)
    old.click((y, x))
    assert old.events[-1]["extra"]["window"][2] == 64
    # A box or a prior sets its own window like a later click (at least first_size).
    s.clear()
    s.box((y - 5, x - 5, y + 6, x + 6))
    assert s.events[-1]["extra"]["window"][2] == 96
    # Adapted weights keep the setting, and a per-engine override is saved with them.
    path = wide.save(tmp_path / "adapted")
    assert Engine.load(path, device="cpu").first_window == 96
    engine.first_window = 160  # e.g. objects about 40 px across
    big = engine.session(image)
    big.click((y, x))
    assert big.events[-1]["extra"]["window"][2] == 160
    assert Engine.load(engine.save(tmp_path / "override"), device="cpu").first_window == 160
    with pytest.raises(ValueError, match="first_size"):
        engine.first_window = 3
    assert engine.first_window == 160  # a rejected value changes nothing
    engine.first_window = None  # back to the weights' own
    assert engine.first_window == "auto"


@pytest.mark.parametrize("bad", [0, -5, 12.5, "96", "Auto", True, 10**6, None])
def test_bad_first_window_in_the_weights_is_a_clear_error(engine, bad):
    with pytest.raises(ValueError, match="first_size"):
        _with_window(engine, first_size=bad)


def test_auto_first_window_follows_the_object_size(engine, nuclei):
    """``first_window="auto"`` sizes the first window from the blob under the click, so a
    nucleus shown twice as large gets a window about twice as large and is still segmented;
    a fixed 64-px window then answers with a fragment."""
    from skimage.transform import rescale

    image, labels = nuclei
    big = rescale(image.astype(np.float32), 2, order=1, preserve_range=True)
    big_labels = rescale(labels, 2, order=0, preserve_range=True, anti_aliasing=False).astype(labels.dtype)
    ids = largest_ids(labels, 4)
    engine.first_window = 64
    fixed = [dice(engine.session(big).click(object_centre(big_labels, i)), big_labels == i) for i in ids]
    engine.first_window = "auto"
    sizes, auto = [], []
    for img, lab, out in ((image, labels, None), (big, big_labels, auto)):
        s = engine.session(img)
        for i in ids:
            mask = s.click(object_centre(lab, i)).mask
            sizes.append(s.events[-1]["extra"]["window"][2])
            if out is not None:
                out.append(dice(mask, lab == i))
            s.clear()
    small, large = np.array(sizes[:4]), np.array(sizes[4:])
    assert np.all((small >= 48) & (small <= 200)) and 1.5 < np.median(large / small) < 2.5
    assert np.mean(auto) > 0.75 and np.mean(auto) > np.mean(fixed) + 0.2
    # Before any object is accepted, a correction keeps the window the click measured.
    s = engine.session(big)
    s.click(object_centre(big_labels, ids[0]))
    measured = s.events[-1]["extra"]["window"][2]
    ys, xs = np.nonzero(s.mask)
    s.click((int(ys.max()), int(xs.max())), positive=False)
    assert measured > 64 and s.events[-1]["extra"]["window"][2] >= measured
    # Once objects are accepted, their median diameter sizes the first window, and later windows
    # are at least as large.
    s = engine.session(big)
    for i in ids[:3]:
        s.click(object_centre(big_labels, i))
        s.accept()
    d = np.median([2 * np.sqrt(np.count_nonzero(m) / np.pi) for m in (big_labels == i for i in ids[:3])])
    sizes = dict(s.accepted_diameters)
    assert sorted(sizes) == [1, 2, 3] and np.allclose(np.median(list(sizes.values())), d, rtol=0.3)
    # an object taken back no longer counts, and comes back with reinstate()
    gone = s.withdraw(1)
    assert gone == pytest.approx(2 * np.sqrt(np.count_nonzero(big_labels == ids[0]) / np.pi), rel=0.3)
    assert sorted(s.accepted_diameters) == [2, 3] and s.withdraw(1) is None
    for bad in (float("nan"), -3.0, 0.0):
        with pytest.raises(ValueError, match="diameter"):
            s.reinstate(1, bad)
    s.reinstate(1, gone)
    assert s.accepted_diameters == sizes
    y, x = object_centre(big_labels, ids[3])
    s.click((y, x))
    first = s.events[-1]["extra"]["window"][2]
    assert first == max(32, round(4 * np.median(list(s.accepted_diameters.values()))))
    s.click((y, x + 3), positive=True)
    assert s.events[-1]["extra"]["window"][2] >= first


def test_auto_first_window_at_the_border_and_on_a_tiny_image(engine, nuclei):
    image, _ = nuclei
    engine.first_window = "auto"
    s = engine.session(image)
    mask = s.click((0, 511)).mask  # the patch around a corner click is mirrored, not zero-filled
    assert mask.shape == image.shape and s.events[-1]["extra"]["window"][2] >= 32
    tiny = image[200:220, 200:220]
    s = engine.session(tiny)
    assert s.click((10, 10)).mask.shape == tiny.shape


def test_a_short_last_axis_is_read_as_channels(engine, nuclei_crop):
    from napari_oaims.core.source import NO_CHANNELS, ImageSource, looks_like_channels

    image, labels = nuclei_crop
    lid = largest_ids(labels, 1)[0]
    rng = np.random.default_rng(0)
    four = np.stack([image, image / 2, image[::-1], rng.random(image.shape)], axis=-1).astype(np.float32)
    s = engine.session(four)  # (160, 160, 4) float: four channels, not 160 planes of 160 x 4
    assert s.source.channel_axis == 2 and s.spatial_shape == image.shape and not s.source.rgb
    assert dice(s.click(object_centre(labels, lid)).mask, labels == lid) > 0.5
    stack = np.stack([np.stack([image, image], axis=-1)] * 3)  # (3, 160, 160, 2): a stack of 2 channels
    assert ImageSource(stack).spatial_shape == (3, 160, 160)
    assert ImageSource(np.stack([image] * 3, axis=-1).astype(np.uint8)).rgb  # uint8 RGB stays RGB
    for shape, guess in (
        ((160, 160, 4), True),
        ((64, 64, 8), True),
        ((64, 64, 9), False),
        ((40, 160, 6), False),
        ((160, 160), False),
        ((160, 160, 1), False),
    ):
        assert looks_like_channels(shape) is guess, shape
    # forcing a spatial last axis, explicitly
    planes = ImageSource(four, channel_axis=NO_CHANNELS)
    assert planes.channel_axis is None and planes.spatial_shape == four.shape and not planes.rgb
    assert ImageSource(four, rgb=False).spatial_shape == four.shape  # an explicit rgb turns the guess off too
    assert ImageSource(four, channel_axis=-1).channel_axis == 2
    for bad in ("nothing", True, 1.5):
        with pytest.raises(ValueError, match="channel_axis must be an axis index, None"):
            ImageSource(four, channel_axis=bad)
    with pytest.raises(ValueError, match="rgb=True"):
        ImageSource(four, channel_axis=NO_CHANNELS, rgb=True)


def test_a_click_without_signal_is_refused(engine, nuclei_crop):
    image, labels = nuclei_crop
    holes = image.astype(np.float32)
    holes[40:110, 40:110] = np.nan
    s = engine.session(holes)
    for where in ((75, 75), (41, 41)):  # inside the NaN block, and on its edge
        with pytest.raises(ValueError, match=rf"no signal at \({where[0]}, {where[1]}\): the pixel is NaN"):
            s.click(where)
    assert [e["kind"] for e in s.events] == ["session"] and not s.planes  # nothing logged, nothing kept
    outside = [lid for lid in largest_ids(labels, 20) if not (labels[35:115, 35:115] == lid).any()][0]
    assert s.click(object_centre(labels, outside)).area > 0

    vol = np.zeros((3, 64, 64), np.float32)
    vol[2, 10:20, 10:20] = 1.0
    vol[0, 10, 10] = np.nan
    with pytest.raises(ValueError, match=r"no signal at \(10, 10\) of plane \(0,\)"):
        engine.session(vol).click((0, 10, 10))


def test_clicks_on_flat_spots_are_answered(engine):
    """A click where the image is one value all around carries information: a positive click
    answers the connected region of that value, a negative one is taken as it is."""
    image = np.zeros((300, 300), np.float32)  # the outside of a scan, a large uniform object, a small one
    yy, xx = np.mgrid[:300, :300]
    big = np.hypot(yy - 120, xx - 130) < 90
    image[big] = 500.0
    image[250:270, 250:270] = 900.0
    s = engine.session(image)
    result = s.click((120, 130))
    assert result.fallback == "uniform" and np.array_equal(result.mask, big)
    assert s.events[-1]["extra"]["fallback"] == "uniform"
    result = s.click((5, 5), positive=False)  # the all-zero background
    assert result.fallback == "uniform" and np.array_equal(result.mask, big)
    s.clear()
    result = s.click((5, 5), positive=False)
    assert not result.mask.any() and s.events[-2]["kind"] == "click"
    s.clear()
    assert s.click((260, 260)).area > 0  # the small object: the model answers it
    vol = np.zeros((3, 64, 64), np.float32)
    vol[2, 10:20, 10:20] = 1.0
    assert engine.session(vol).click((0, 40, 40)).area == 64 * 64  # the whole flat plane
