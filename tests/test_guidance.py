import numpy as np
import pytest

from napari_oaims.core import guidance


def test_window_covers_points_and_bbox_with_context():
    w = guidance.choose_window(np.array([[100, 100]]), (512, 512), (90, 80, 130, 140))
    assert w.size >= 2 * 60  # context 2 x the 60 px extent
    assert w.contains((90, 80)) and w.contains((129, 139))


def test_window_minimum_size_and_cap():
    w = guidance.choose_window(np.array([[5, 5]]), (512, 512))
    assert w.size == guidance.MIN_WINDOW
    big = guidance.choose_window(np.zeros((0, 2)), (100, 100), (0, 0, 100, 100))
    assert big.size <= 110 + 2


def test_window_needs_something():
    with pytest.raises(ValueError):
        guidance.choose_window(np.zeros((0, 2)), (64, 64))


def test_guidance_map_peak_and_outside_points_ignored():
    m = guidance.guidance_map(np.array([[10, 20], [500, 500]]))
    assert m.shape == (guidance.WORK_SIZE, guidance.WORK_SIZE)
    assert m[10, 20] == pytest.approx(1.0)
    assert m[10, 20 + 3] == pytest.approx(np.exp(-0.5), rel=1e-4)  # sigma 3
    assert guidance.guidance_map(np.zeros((0, 2))).max() == 0


def test_normalise_handles_nan_and_inf():
    out = guidance.normalise(np.array([np.nan, np.inf, -np.inf, 5.0]), 0.0, 10.0)
    assert np.all(np.isfinite(out)) and out[0] == 0 and out[3] == pytest.approx(0.5)


def test_robust_range_ignores_nan():
    a = np.linspace(0, 100, 1000)
    a[::7] = np.nan
    lo, hi = guidance.robust_range(a)
    assert 0 <= lo < 5 and 95 < hi <= 100
    with pytest.raises(ValueError):
        guidance.robust_range(np.full(5, np.nan))


def test_rasterise_path_is_connected():
    px = guidance.rasterise_path(np.array([[0, 0], [0, 10], [5, 10]]))
    assert len(px) == 16
    assert {tuple(p) for p in px} >= {(0, 0), (0, 10), (5, 10)}


def test_crop_plane_pads_outside():
    plane = np.arange(16, dtype=np.float32).reshape(4, 4)
    crop = guidance.crop_plane(plane, guidance.Window(-2, -2, 4))
    assert crop[2, 2] == 0 and crop[3, 3] == 5 and crop[0, 0] == 0


@pytest.mark.parametrize("diameter", [6, 12, 24, 48, 80])
def test_estimate_diameter_finds_bright_and_dark_discs(diameter):
    from scipy import ndimage

    r = guidance.diameter_patch_radius()
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disc = ndimage.gaussian_filter((np.hypot(yy, xx) <= diameter / 2).astype(float), 1.0)
    rng = np.random.default_rng(diameter)
    for patch in (disc, 1 - disc, 500 + 200 * disc + rng.normal(0, 10, disc.shape)):
        assert abs(guidance.estimate_diameter(patch) / diameter - 1) < 0.15


def test_the_smallest_strong_peak_is_a_cell_not_its_cluster():
    """A cell of 14 px among six cells of one intensity touching it (a blurred seam between them):
    the strongest blob response is the cluster's; the smallest strong peak is the cell's. A lone
    disc answers at its own scale either way."""
    from scipy import ndimage

    r = guidance.diameter_patch_radius()
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    cells = np.hypot(yy, xx) <= 7
    for a in np.linspace(0, 2 * np.pi, 7)[:-1]:
        cells |= np.hypot(yy - 16 * np.sin(a), xx - 16 * np.cos(a)) <= 7
    image = ndimage.gaussian_filter(cells.astype(float), 1.0)
    strongest = guidance.estimate_diameter(image)
    smallest = guidance.estimate_diameter(image, peak_share=guidance.BLOB_PEAK_SHARE)
    assert strongest > 30 and 8 < smallest < 20, (strongest, smallest)
    disc = ndimage.gaussian_filter((np.hypot(yy, xx) <= 12).astype(float), 1.0)
    assert abs(guidance.estimate_diameter(disc, peak_share=guidance.BLOB_PEAK_SHARE) / 24 - 1) < 0.15


def test_estimate_diameter_rejects_a_small_patch():
    with pytest.raises(ValueError, match="odd side"):
        guidance.estimate_diameter(np.zeros((64, 64)))
    r = guidance.diameter_patch_radius()
    patch = np.zeros((2 * r + 1, 2 * r + 1))
    patch[r, r] = np.nan
    with pytest.raises(ValueError, match="finite"):
        guidance.estimate_diameter(patch)
