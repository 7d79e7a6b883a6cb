"""An object's Mid-Interaction steps are kept at accept only if the recently accepted objects are
answered at least as well with them (``mi_check``)."""

import numpy as np
import pytest
import torch

from napari_oaims import Engine
from napari_oaims.simulate.robot import correction_clicks

from conftest import largest_ids, object_centre


def annotate(session, labels, lid, clicks=3):
    """Click the object's centre, then correct its largest error ``clicks - 1`` times; returns the
    weights hash after the first click."""
    target = labels == lid
    mask = session.click(object_centre(labels, lid)).mask
    first = session.engine.weights_hash
    for _ in range(clicks - 1):
        cs = correction_clicks(mask, target, 1, mode="center")
        if not cs:
            break
        mask = session.click((cs[0].y, cs[0].x), positive=cs[0].positive).mask
    return first


def harm(engine: Engine, seed: int = 0) -> None:
    """Weights that answer worse: noise of half each tensor's spread added to every parameter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in engine.model.parameters():
            if p.numel() > 1:
                p.add_(torch.randn(p.shape, generator=gen) * 0.5 * float(p.std()))
    engine.weights_changed()


def rewinds(session, first: bool = False) -> list[dict]:
    """The ``mi_rewind`` records, without the first object's (``first``: with it)."""
    out = [e["extra"] for e in session.events if e["kind"] == "update" and e["extra"]["method"] == "mi_rewind"]
    return out if first else [r for r in out if not r["reason"].startswith(UNCHECKED)]


UNCHECKED = "no accepted object to check them on"


@pytest.mark.parametrize("spec", ["mi", "oaims"])
@pytest.mark.parametrize("check", [True, False])
def test_mi_steps_that_answer_accepted_objects_worse_are_undone_at_accept(nuclei_crop, spec, check):
    image, labels = nuclei_crop
    engine = Engine.pretrained(device="cpu", adaptation=f"{spec}:mi_check={int(check)}:pi_ignore=0")
    s = engine.session(image)
    ids = largest_ids(labels, 3)
    for lid in ids[:2]:
        annotate(s, labels, lid)
        s.accept()
    start = annotate(s, labels, ids[2])
    assert any(e["kind"] == "update" and e["extra"]["method"] == "mi" for e in s.events[-6:])
    harm(engine)  # this object's MI steps, made harmful
    harmed = engine.weights_hash
    s.accept()
    if not check:
        assert rewinds(s, first=True) == [] and engine.weights_hash != start
        return
    record = rewinds(s)[-1]
    assert "accepted objects' first answers were not better" in record["reason"]
    assert record["weights_before"] == harmed and record["weights_after"] == start
    if spec == "mi":
        assert engine.weights_hash == start  # no PI after it: back to the weights before the steps


@pytest.mark.parametrize("se", [0.0, 1.0])
def test_mi_steps_are_kept_only_when_the_accepted_objects_say_better(nuclei_crop, se):
    """The same objects with ordinary MI steps. With ``mi_check_se=0`` steps that answer the
    accepted objects no worse on average are kept, and asking the questions leaves the weights
    exactly as they were; with the default they are kept only when the per-object gains are
    surely above zero, else the weights go back to those before the steps."""
    from napari_oaims.adapt.guard import better, dice_with

    image, labels = nuclei_crop
    engine = Engine.pretrained(device="cpu", adaptation=f"mi:mi_check_se={se}")
    s = engine.session(image)
    ids = largest_ids(labels, 5)
    for lid in ids[:4]:
        annotate(s, labels, lid)
        s.accept()
    earlier = len(rewinds(s))
    start = annotate(s, labels, ids[4])
    learnt = engine.weights_hash
    adapter = engine.adapter
    after, before = dice_with(engine, list(adapter.held), adapter._object_start[1])
    assert engine.weights_hash == learnt  # asking leaves the weights as they were
    keep = better(after - before, se)
    x = np.stack([p.x for p in adapter.held])
    answers = engine.predict(x)
    s.accept()
    assert len(adapter.held) >= 3  # enough accepted objects to be sure (SURE_FROM)
    if keep:
        assert len(rewinds(s)) == earlier and engine.weights_hash == learnt
        np.testing.assert_array_equal(engine.predict(x), answers)
    else:
        (record,) = rewinds(s)[earlier:]
        assert "were not better with them" in record["reason"] and engine.weights_hash == start
    if se == 0.0:
        assert keep == (after.mean() >= before.mean())


def test_better_asks_for_a_gain_beyond_the_spread():
    from napari_oaims.adapt.guard import better

    assert better(np.zeros(8), 0.0) and not better(np.zeros(8), 1.0)  # ties: kept only at 0
    assert better(np.full(8, 0.01), 1.0)  # every object a little better
    noisy = np.array([0.2, -0.18, 0.15, -0.15, 0.01, 0.0, 0.0, 0.0])  # mean +0.004, spread 0.04
    assert better(noisy, 0.0) and not better(noisy, 1.0)
    assert not better(np.array([-0.01] * 8), 0.0)
    assert better(np.array([0.3, 0.2]), 0.0) and not better(np.array([0.3, 0.2]), 1.0)  # too few to be sure


@pytest.mark.parametrize("first", [True, False])
def test_the_first_objects_mi_steps_are_not_kept(nuclei_crop, first):
    """No accepted object can check the session's first object's MI steps: they are undone at its
    accept (``mi_check_first``), and the next object starts from the shipped weights."""
    image, labels = nuclei_crop
    engine = Engine.pretrained(device="cpu", adaptation=f"mi:mi_check_first={int(first)}")
    shipped = engine.weights_hash
    s = engine.session(image)
    annotate(s, labels, largest_ids(labels, 1)[0])
    assert any(e["kind"] == "update" and e["extra"]["method"] == "mi" for e in s.events)
    assert engine.weights_hash != shipped
    s.accept()
    if first:
        (record,) = rewinds(s, first=True)
        assert record["reason"].startswith(UNCHECKED) and record["weights_after"] == shipped
        assert engine.weights_hash == shipped
    else:
        assert rewinds(s, first=True) == [] and engine.weights_hash != shipped


@pytest.mark.parametrize(
    ("name", "unlogged", "default"),
    [("mi_check", False, True), ("mi_check_first", False, None), ("mi_check_se", 0.0, None)],
)
def test_logs_without_the_check_replay_without_it(name, unlogged, default):
    from napari_oaims.adapt import adapter_from_settings, make_adapter

    logged = {k: v for k, v in make_adapter("oaims").settings().items() if k != name}
    assert getattr(adapter_from_settings(logged).config, name) == unlogged
    assert getattr(make_adapter("oaims").config, name) == default


def test_mi_alone_asks_more_of_its_steps_than_with_pi():
    from napari_oaims.adapt import make_adapter
    from napari_oaims.adapt.settings import MI_ALONE_SE

    assert make_adapter("mi").config.check_se == MI_ALONE_SE > 0
    assert make_adapter("oaims").config.check_se == 0.0
    assert make_adapter("mi").config.check_first and not make_adapter("oaims").config.check_first
    assert make_adapter("oaims", mi_check_first=True).config.check_first
    assert make_adapter("oaims:mi_check_se=none").config.mi_check_se is None
    assert make_adapter("oaims", mi_check_se=1.5).config.check_se == 1.5
    assert make_adapter("mi:mi_check_se=0").config.check_se == 0.0
    for bad in ("mi:mi_check_se=-1", "mi:mi_check_se=nan", "mi:mi_check_se=abc"):
        with pytest.raises(ValueError, match="mi_check_se"):
            make_adapter(bad)
    with pytest.raises(ValueError, match="or none"):
        make_adapter("mi:mi_check_first=maybe")
    with pytest.raises(ValueError, match="True, False or None"):
        make_adapter("mi", mi_check_first=2)
