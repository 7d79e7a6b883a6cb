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


def rewinds(session) -> list[dict]:
    return [e["extra"] for e in session.events if e["kind"] == "update" and e["extra"]["method"] == "mi_rewind"]


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
        assert rewinds(s) == [] and engine.weights_hash != start
        return
    (record,) = rewinds(s)
    assert "accepted objects' first answers were worse" in record["reason"]
    assert record["weights_before"] == harmed and record["weights_after"] == start
    if spec == "mi":
        assert engine.weights_hash == start  # no PI after it: back to the weights before the steps


def test_mi_steps_that_do_not_answer_worse_are_kept(nuclei_crop):
    """The same objects with ordinary MI steps, which answer the accepted objects no worse here:
    they are kept, and asking the questions leaves the weights exactly as they were."""
    image, labels = nuclei_crop
    engine = Engine.pretrained(device="cpu", adaptation="mi")
    s = engine.session(image)
    ids = largest_ids(labels, 3)
    for lid in ids[:2]:
        annotate(s, labels, lid)
        s.accept()
    annotate(s, labels, ids[2])
    learnt = engine.weights_hash
    adapter = engine.adapter
    x = np.stack([p.x for p in adapter.held])
    before = engine.predict(x)
    s.accept()
    assert rewinds(s) == []
    assert engine.weights_hash == learnt
    np.testing.assert_array_equal(engine.predict(x), before)


def test_logs_without_the_check_replay_without_it():
    from napari_oaims.adapt import adapter_from_settings, make_adapter

    logged = {k: v for k, v in make_adapter("oaims").settings().items() if k != "mi_check"}
    assert adapter_from_settings(logged).config.mi_check is False
    assert make_adapter("oaims").config.mi_check is True
