import numpy as np
import pytest

from napari_oaims.simulate.clicks import Click, correction_clicks, error_components, largest_error_component
from napari_oaims.simulate.prompts import box_from_mask, scribble_from_region
from napari_oaims.simulate.records import ReplayRobot, load_clicks, save_clicks
from napari_oaims.simulate.robot import STRATEGIES, RealisticNoise, Robot, WrongLabel

H = W = 96
YY, XX = np.mgrid[:H, :W]


def disc(cy, cx, r):
    return np.hypot(YY - cy, XX - cx) < r


@pytest.fixture
def ring():
    """Disc with a hole: the object is the annulus 10 <= r < 30 around (48, 48)."""
    return disc(48, 48, 30) & ~disc(48, 48, 10)


def toy_model(clicks, shape=(H, W)):
    """Deterministic stand-in for a network: disks of radius 9 around positive clicks minus negatives."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    pred = np.zeros(shape, bool)
    for c in clicks:
        d = np.hypot(yy - c.y, xx - c.x) < 9
        pred = pred | d if c.positive else pred & ~d
    return pred


def run_target(robot, target, target_id, n_clicks, image=None):
    robot.reset(target_id)
    clicks = []
    pred = np.zeros_like(target)
    for _ in range(n_clicks):
        c = robot.next_click(pred, target, image=image)
        if c is None:
            break
        clicks.append(c)
        pred = toy_model(clicks, target.shape)
    return clicks


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategies_first_click_in_object_then_errors(strategy, ring):
    robot = Robot(strategy, seed=3)
    first = robot.next_click(np.zeros_like(ring), ring)
    assert ring[first.y, first.x] and first.positive
    # prediction = the filled disc: the only error is the hole (false positive)
    c = robot.next_click(disc(48, 48, 30), ring)
    assert np.hypot(c.y - 48, c.x - 48) < 10 and not c.positive
    # prediction = left half of the ring: the error is the right half (false negative)
    c = robot.next_click(ring & (XX < 48), ring)
    assert ring[c.y, c.x] and c.x >= 48 and c.positive
    assert robot.next_click(ring, ring) is None


def test_center_strategy_uses_distance_transform_max(ring):
    robot = Robot("center")
    first = robot.next_click(np.zeros_like(ring), ring)
    # centre of the annulus is at radius ~20
    assert abs(np.hypot(first.y - 48, first.x - 48) - 20) <= 1.5
    c = robot.next_click(disc(48, 48, 30), ring)
    assert np.hypot(c.y - 48, c.x - 48) <= 1.5  # centre of the hole


def test_largest_error_component_matches_error_components():
    rng = np.random.default_rng(0)
    for _ in range(20):
        target = rng.random((40, 40)) < 0.3
        pred = rng.random((40, 40)) < 0.3
        comps = error_components(pred, target)
        region, positive = largest_error_component(pred, target)
        assert region.sum() == comps[0][0].sum()
        if sum(m.sum() == region.sum() for m, _ in comps) == 1:
            assert positive == comps[0][1] and np.array_equal(region, comps[0][0])
    assert largest_error_component(target, target) is None


@pytest.mark.parametrize("strategy", ["random", "edt", "uniform"])
def test_reproducible_and_seed_dependent(strategy, ring):
    a = run_target(Robot(strategy, seed=5), ring, 0, 6)
    b = run_target(Robot(strategy, seed=5), ring, 0, 6)
    c = run_target(Robot(strategy, seed=6), ring, 0, 6)
    assert a == b
    assert a != c
    # a target's clicks do not depend on earlier targets
    r = Robot(strategy, seed=5)
    run_target(r, ring, 1, 4)
    assert run_target(r, ring, 0, 6) == a


def test_wrong_label_fraction_share():
    small = disc(8, 8, 6)[:16, :16]
    robot = Robot("center", wrong_label=WrongLabel("fraction", p=0.4), seed=1)
    flips = []
    for t in range(200):
        robot.reset(t)
        for _ in range(10):
            c = robot.next_click(np.zeros_like(small), small)
            flips.append(c.positive != bool(small[c.y, c.x]))
    assert abs(np.mean(flips) - 0.4) < 0.04
    rows = [r for seq in robot.sequences.values() for r in seq]
    assert [r["flipped"] for r in rows] == flips


def test_wrong_label_first_n_exact(ring):
    robot = Robot("random", wrong_label=WrongLabel("first_n", n=4), seed=2)
    for t in range(5):
        clicks = run_target(robot, ring, t, 8)
        assert len(clicks) == 8
        flipped = [c.positive != bool(ring[c.y, c.x]) for c in clicks]
        assert flipped == [True] * 4 + [False] * 4
    robot = Robot("center", wrong_label=WrongLabel("first_n", n=4, include_first=False))
    robot.reset(0)
    flipped = []
    for _ in range(7):
        c = robot.next_click(np.zeros_like(ring), ring)
        flipped.append(not c.positive)
    assert flipped == [False, True, True, True, True, False, False]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("where", [(300, 200), (0, 0), (404, 404)])  # inside, at the top-left and bottom-right corners
def test_clicks_do_not_depend_on_the_image_around_the_object(strategy, where, ring):
    """The robot works on the box around prediction and target: the same object in a bigger
    image gets the same clicks, shifted (ties and seeded draws included)."""
    big = np.zeros((500, 500), bool)
    y, x = where
    big[y : y + H, x : x + W] = ring
    robot_small, robot_big = Robot(strategy, seed=3), Robot(strategy, seed=3)
    small_clicks = run_target(robot_small, ring, 0, 6)
    robot_big.reset(0)
    clicks, pred = [], np.zeros_like(big)
    for _ in range(6):
        c = robot_big.next_click(pred, big)
        if c is None:
            break
        clicks.append(Click(c.y - y, c.x - x, c.positive))
        pred = np.zeros_like(big)
        pred[y : y + H, x : x + W] = toy_model(clicks)
    assert clicks == small_clicks and len(clicks) >= 3


def test_robot_avoids_pixels_it_already_clicked(ring):
    """After wrong clicks that changed nothing, the correct click lands on a fresh pixel."""
    robot = Robot("center", wrong_label=WrongLabel("first_n", n=4))
    robot.reset(0)
    clicks = [robot.next_click(np.zeros_like(ring), ring) for _ in range(6)]
    pixels = [(c.y, c.x) for c in clicks]
    assert len(set(pixels)) == 6
    assert all(ring[p] for p in pixels)  # still inside the missed object
    # a one-pixel object has nowhere else to go: the robot clicks it again rather than stop
    dot = np.zeros((9, 9), bool)
    dot[4, 4] = True
    robot.reset(1)
    assert [(c.y, c.x) for c in (robot.next_click(np.zeros_like(dot), dot) for _ in range(2))] == [(4, 4)] * 2


def test_wrong_label_targets_share():
    small = disc(8, 8, 6)[:16, :16]
    robot = Robot("center", wrong_label=WrongLabel("targets", p=0.4), seed=4)
    flipped_targets = []
    for t in range(400):
        robot.reset(t)
        f = [robot.next_click(np.zeros_like(small), small).positive is False for _ in range(3)]
        assert len(set(f)) == 1  # all clicks of a target share the flip
        assert f[0] == robot.target_flipped
        flipped_targets.append(f[0])
    assert abs(np.mean(flipped_targets) - 0.4) < 0.07
    again = Robot("center", wrong_label=WrongLabel("targets", p=0.4), seed=4)
    again.reset(17)
    assert again.target_flipped == flipped_targets[17]


def test_realistic_shift_bounded_and_inside_image():
    target = disc(4, 4, 4)[:40, :40]  # object in the corner of a small image
    noisy = Robot("center", noise=RealisticNoise(p_perturb=1.0, p_system=0.0, max_shift=35), seed=0)
    clean = Robot("center")
    shifts = []
    for t in range(200):
        noisy.reset(t)
        clean.reset(t)
        c = noisy.next_click(np.zeros_like(target), target)
        c0 = clean.next_click(np.zeros_like(target), target)
        assert 0 <= c.y < 40 and 0 <= c.x < 40
        assert abs(c.y - c0.y) <= 35 and abs(c.x - c0.x) <= 35
        assert c.positive == c0.positive
        shifts.append((c.y - c0.y, c.x - c0.x))
    assert len(set(shifts)) > 20  # really random
    assert max(max(abs(a), abs(b)) for a, b in shifts) > 20


def test_realistic_default_probabilities_and_system_clicks(ring):
    small = disc(8, 8, 6)[:16, :16]
    robot = Robot("center", noise="realistic", seed=9)
    kinds = []
    for t in range(800):
        robot.reset(t)
        robot.next_click(np.zeros_like(small), small)
        kinds.append(robot.sequences[t][0]["noise"])
    share_shift = np.mean(["shift" in k for k in kinds])
    share_system = np.mean(["system" in k for k in kinds])
    assert abs(share_shift - 0.134) < 0.035 and abs(share_system - 0.134) < 0.035
    # systematic clicks: positive clicks land outside the object, near it or on bright pixels
    sysrob = Robot("center", noise=RealisticNoise(p_perturb=0.0, p_system=1.0), seed=0)
    for t in range(30):
        sysrob.reset(t)
        c = sysrob.next_click(np.zeros_like(ring), ring)
        assert c.positive and not ring[c.y, c.x]
        inside = ring | disc(48, 48, 10)
        assert np.hypot(c.y - 48, c.x - 48) < 30 + 36 or inside[c.y, c.x]
    image = np.zeros((H, W))
    image[80:, 80:] = 1.0  # a bright distractor outside the object
    sysrob.reset(99)
    c = sysrob.next_click(np.zeros_like(ring), ring, image=image)
    assert c.y >= 80 and c.x >= 80 and c.positive
    # a negative systematic click goes inside the object
    c = sysrob.next_click(disc(48, 48, 30), ring)
    assert ring[c.y, c.x] and not c.positive


def test_boxes(ring):
    y0, x0, y1, x1 = box_from_mask(ring, "perfect")
    assert (y0, x0, y1, x1) == (19, 19, 78, 78)
    assert ring[y0:y1, x0:x1].sum() == ring.sum()
    rng = np.random.default_rng(0)
    ext = y1 - y0
    for _ in range(50):
        b = box_from_mask(ring, "careful", rng)
        grow = np.array([y0 - b[0], x0 - b[1], b[2] - y1, b[3] - x1])
        assert np.all(grow >= np.rint(0.05 * ext)) and np.all(grow <= np.rint(0.10 * ext))
        assert all(isinstance(v, int) for v in b)
    sloppy = [box_from_mask(ring, "sloppy", rng) for _ in range(100)]
    for b in sloppy:
        assert 0 <= b[0] < b[2] <= H and 0 <= b[1] < b[3] <= W
        assert ring[b[0] : b[2], b[1] : b[3]].any()
        assert abs(b[0] - y0) <= round(0.3 * ext) + 1 and abs(b[3] - x1) <= round(0.3 * ext) + 1
    assert len(set(sloppy)) > 50
    assert any(b[0] > y0 for b in sloppy) and any(b[0] < y0 for b in sloppy)
    corner = np.zeros((20, 20), bool)
    corner[:3, :3] = True
    for _ in range(30):
        b = box_from_mask(corner, "sloppy", rng)
        assert b[0] >= 0 and b[1] >= 0 and corner[b[0] : b[2], b[1] : b[3]].any()
    assert box_from_mask(corner, "careful", rng)[:2] == (0, 0)
    with pytest.raises(ValueError):
        box_from_mask(np.zeros((5, 5), bool))
    with pytest.raises(ValueError):
        box_from_mask(ring, "tight")


def test_scribbles(ring):
    rng = np.random.default_rng(0)
    for _ in range(10):
        pts = scribble_from_region(ring, rng, max_len=30)
        assert pts.ndim == 2 and pts.shape[1] == 2 and 2 <= len(pts) <= 30
        assert ring[pts[:, 0], pts[:, 1]].all()
        steps = np.abs(np.diff(pts, axis=0)).max(axis=1)
        assert np.all(steps == 1)  # an 8-connected polyline
    assert len(scribble_from_region(ring, max_len=30)) == 30  # long skeleton: full length
    tiny = np.zeros((10, 10), bool)
    tiny[4, 5] = True
    assert scribble_from_region(tiny, rng).tolist() == [[4, 5]]
    with pytest.raises(ValueError):
        scribble_from_region(np.zeros((5, 5), bool))


def test_json_round_trip_and_replay(tmp_path, ring):
    robot = Robot("edt", noise="realistic", wrong_label=WrongLabel("fraction"), seed=11)
    recorded = {tid: run_target(robot, ring, tid, 6) for tid in (0, 3, "cell-7")}
    seqs = robot.sequences
    assert set(seqs) == {0, 3, "cell-7"}
    assert [Click.from_dict(r) for r in seqs[3]] == recorded[3]
    path = tmp_path / "clicks.json"
    save_clicks(path, seqs)
    loaded = load_clicks(path)
    assert loaded == seqs
    assert list(loaded) == [0, 3, "cell-7"]
    save_clicks(tmp_path / "plain.json", {"a": recorded[0]})
    assert load_clicks(tmp_path / "plain.json") == {"a": [c.to_dict() for c in recorded[0]]}
    replay = ReplayRobot(loaded)
    for tid, clicks in recorded.items():
        assert run_target(replay, ring, tid, 20) == clicks  # stops when the recording ends
    with pytest.raises(KeyError):
        replay.reset("missing")
    with pytest.raises(ValueError):
        save_clicks(tmp_path / "bad.json", {0: [{"y": 1, "x": 2}]})


def test_bad_input_raises(ring):
    robot = Robot()
    with pytest.raises(ValueError, match="empty target"):
        robot.next_click(np.zeros((8, 8), bool), np.zeros((8, 8), bool))
    with pytest.raises(ValueError, match="shape"):
        robot.next_click(np.zeros((8, 9), bool), ring)
    with pytest.raises(ValueError, match="2D"):
        robot.next_click(np.zeros((2, 8, 8), bool), np.zeros((2, 8, 8), bool))
    with pytest.raises(ValueError, match="unknown robot strategy"):
        Robot("smart")
    with pytest.raises(ValueError):
        Robot(noise="loud")
    with pytest.raises(ValueError):
        WrongLabel("sometimes")
    with pytest.raises(ValueError):
        WrongLabel(p=1.5)


def test_correction_clicks_one_per_error_component_largest_first(ring):
    pred = disc(48, 48, 30)  # the hole (a false positive, 314 px) and nothing missed
    pred[40:56, 70:80] = False  # a missed piece of the ring (false negative, 160 px)
    clicks = correction_clicks(pred, ring, 5, mode="center")
    assert [c.positive for c in clicks] == [False, True]
    assert np.hypot(clicks[0].y - 48, clicks[0].x - 48) <= 1.5 and ring[clicks[1].y, clicks[1].x]
    assert correction_clicks(pred, ring, 1, mode="center") == clicks[:1]
    assert correction_clicks(pred, ring, 5, mode="center", min_size=200) == clicks[:1]
    assert correction_clicks(ring, ring, 5) == []


def test_one_click_generator_for_pretraining_and_adaptation():
    """Pretraining and Post-Interaction adaptation simulate clicks with the same function."""
    from napari_oaims.adapt import oaims
    from napari_oaims.simulate import clicks, robot
    from napari_oaims.training import pretrain

    assert pretrain.correction_clicks is clicks.correction_clicks
    assert oaims.correction_clicks is clicks.correction_clicks and robot.correction_clicks is clicks.correction_clicks
