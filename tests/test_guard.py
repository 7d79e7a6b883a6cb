"""The answer-checking guard with the real model: learning must never wreck the model."""

import numpy as np
import pytest
import torch

from napari_oaims import Engine
from napari_oaims.adapt.guard import MARGIN, RECOVER, Check, GuardedOptimizer, Probe, answer_violation
from napari_oaims.evaluation.common import target_ids
from napari_oaims.evaluation.suites import flooding
from napari_oaims.simulate.clicks import click_in_region
from napari_oaims.simulate.robot import correction_clicks

from conftest import object_centre


def dice(a, b):
    return 2 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1)


def flood_and_correct(session, target, negatives):
    """A centre click on ``target``, then up to ``negatives`` robot corrections; returns the clicks' labels."""
    mask = session.click(click_in_region(target)).mask
    labels = []
    for _ in range(negatives):
        cs = correction_clicks(mask, target, 1, mode="center")
        if not cs:
            break
        mask = session.click((cs[0].y, cs[0].x), positive=cs[0].positive).mask
        labels.append(cs[0].positive)
    session.accept()
    return labels


@pytest.fixture(scope="module")
def flood():
    return flooding(seed=0, tiles=(2, 2))


@pytest.mark.slow
def test_many_negative_clicks_on_flooded_masks_never_empty_a_positive_click(flood):
    """MI at a high rate on flooded masks (the first click spills over the tissue, the robot
    answers with negative clicks): the guard rolls back what would answer a centre click with
    an empty mask, logs it, and every object's centre click still gets a mask afterwards."""
    image, labels = flood
    engine = Engine.pretrained(device="cpu", adaptation="mi:mi_lr=2e-3")
    engine.first_window = 256
    s = engine.session(image)
    ids = target_ids(labels)
    negatives = 0
    for lid in ids:
        negatives += flood_and_correct(s, labels == lid, 6).count(False)
    assert negatives >= 2 * len(ids)  # the masks flooded: mostly negative corrections
    updates = [e["extra"] for e in s.events if e["kind"] == "update"]
    checked = [u for u in updates if u["rolled_back"] and u["reason"].startswith("answer check")]
    assert checked, "the guard never rolled back"
    assert all(u["weights_before"] == u["weights_after"] for u in checked)
    stepped = [u for u in updates[updates.index(checked[0]) + 1 :] if "lr" in u]  # updates that took a step
    assert all(u["lr"] < 2e-3 for u in stepped[:1])  # backed off
    check = engine.session(image)
    for lid in ids:
        assert check.click(object_centre(labels, lid)).mask.any(), f"object {lid}: centre click answered empty"
        check.clear()


def test_uncorrected_accepts_are_not_worse_than_frozen(nuclei):
    """The accept-as-is user (one centre click per nucleus, accept what comes back): with learning
    on, the later objects are answered within the guard's margin of the frozen model."""
    image, labels = nuclei
    ids = target_ids(labels)[::5][:16]
    scores = {}
    for name in ("none", "oaims"):
        engine = Engine.pretrained(device="cpu", adaptation=name)
        s = engine.session(image)
        scores[name] = []
        for lid in ids:
            mask = s.click(object_centre(labels, lid)).mask
            scores[name].append(dice(mask, labels == lid))
            s.accept()
    frozen, learnt = np.mean(scores["none"][8:]), np.mean(scores["oaims"][8:])
    assert learnt >= frozen - MARGIN / 2, (frozen, learnt)
    assert min(scores["oaims"]) > 0  # no empty answer


def test_a_rollback_restores_weights_and_adam_exactly_and_backs_off(engine, nuclei_crop):
    """A step that empties the answer to a positive click is undone bit for bit (weights and Adam
    moments), the rate is halved, and kept steps bring it back by ``RECOVER`` each."""
    from napari_oaims.core.prompts import Prompt

    image, labels = nuclei_crop
    lid = int(np.bincount(labels[labels > 0]).argmax())
    click = Prompt("click", True, np.array([object_centre(labels, lid)]))
    view = engine.session(image).view()
    window = view.window([click])
    x = view.encode([click], window)[None]
    answer = engine.predict(x)[0] > 0
    assert answer.any()
    y, xx = window.to_work(click.points[0])
    probe = Probe(x[0], ((float(y), float(xx), True),), answer)
    opt = GuardedOptimizer(lr=1e-4)
    keep = opt.step(engine, "warm", lambda m: (m(torch.from_numpy(x)) ** 2).mean() * 1e-3)  # Adam state exists now
    assert not keep["rolled_back"] and keep["lr"] == pytest.approx(1e-4)
    weights = {k: v.clone() for k, v in engine.model.state_dict().items()}
    adam = {k: {n: t.clone() for n, t in v.items()} for k, v in opt._opt.state.items()}
    h, updates = engine.weights_hash, engine.updates
    opt.lr = 10.0  # a step that drives every logit negative
    rec = opt.step(engine, "bad", lambda m: m(torch.from_numpy(x)).mean() * 1e3, probes=[probe])
    assert rec["rolled_back"] and rec["reason"].startswith("answer check") and "empty mask" in rec["reason"]
    assert engine.weights_hash == h == rec["weights_after"] and engine.updates == updates
    assert all(torch.equal(v, weights[k]) for k, v in engine.model.state_dict().items())
    assert all(torch.equal(t, adam[k][n]) for k, v in opt._opt.state.items() for n, t in v.items())
    assert opt.scale == 0.5
    opt.lr = 1e-4
    rec = opt.step(engine, "ok", lambda m: (m(torch.from_numpy(x)) ** 2).mean() * 1e-3, probes=[probe])
    assert not rec["rolled_back"] and rec["lr"] == pytest.approx(0.5e-4)
    assert opt.scale == pytest.approx(0.5 * RECOVER)


def test_answer_rules():
    """Fewer of the object's clicks right, an empty answer to a positive click, or an accepted
    object's Dice more than the margin below its accepted Dice: each is a violation."""
    full = np.zeros((128, 128), bool)
    full[40:90, 40:90] = True
    empty = np.zeros_like(full)
    clicks = ((64.0, 64.0, True), (20.0, 20.0, False))
    current = Probe(None, clicks, full)
    assert answer_violation(full[None], [current]) is None
    why = answer_violation(empty[None], [current])
    assert why.check is Check.ANSWER and why.undone and "empty mask" in why.message
    shifted = np.roll(full, 40, axis=0)  # keeps the negative click outside, loses the positive one
    assert "clicks answered worse" in answer_violation(shifted[None], [current]).message
    accepted = Probe(None, clicks[:1], full, target=full, dice=1.0)
    smaller = np.zeros_like(full)
    smaller[45:85, 45:85] = True  # Dice 0.78
    assert answer_violation(smaller[None], [accepted]) is not None
    nearly = np.zeros_like(full)
    nearly[41:89, 41:89] = True  # Dice 0.96
    assert answer_violation(nearly[None], [accepted]) is None


@pytest.mark.gui
def test_the_status_line_shows_rollbacks(make_napari_viewer, qtbot, monkeypatch, nuclei_crop):
    """A rollback by the guard on the widget's engine shows in the annotator's status line, with
    why; resetting the model clears it."""
    pytest.importorskip("napari")
    from napari import settings

    from napari_oaims.core.prompts import Prompt
    from napari_oaims.plugin.widget import AnnotatorWidget

    monkeypatch.setattr(settings, "_SETTINGS", settings.NapariSettings(config_path=None))
    image, labels = nuclei_crop
    engine = Engine.pretrained(device="cpu", adaptation="oaims")
    viewer = make_napari_viewer()
    w = AnnotatorWidget(viewer, engine=engine)
    w.set_image(viewer.add_image(image))
    qtbot.waitUntil(lambda: not w.jobs.busy, timeout=30_000)
    assert "rolled back" not in w.status.text()
    lid = int(np.bincount(labels[labels > 0]).argmax())
    click = Prompt("click", True, np.array([object_centre(labels, lid)]))
    view = engine.session(image).view()
    window = view.window([click])
    x = view.encode([click], window)[None]
    y, xx = window.to_work(click.points[0])
    probe = Probe(x[0], ((float(y), float(xx), True),), engine.predict(x)[0] > 0)
    rec = GuardedOptimizer(lr=10.0).step(
        engine, "pi_stage2", lambda m: m(torch.from_numpy(x)).mean() * 1e3, probes=[probe]
    )
    assert rec["rolled_back"]
    w.update_status()
    assert "rolled back 1 (last: pi_stage2: a positive click" in w.status.text()
    engine.reset()
    w.update_status()
    assert "rolled back" not in w.status.text()


def test_failure_suites_of_bench_adapt(nuclei_crop, tmp_path):
    """``--suite flooding`` runs on the procedural flooding image with its wide first window (the
    frozen first click spills far beyond the object); ``--suite accept`` gives each target one
    centre click, and learning from those accepts changes nothing."""
    import json

    import tifffile

    from napari_oaims.cli.main import main
    from napari_oaims.evaluation.adapt import FLOOD_WINDOW, run_suite
    from napari_oaims.evaluation.common import Protocol

    protocol = Protocol(clicks=2, max_targets=2, device="cpu")
    flood = run_suite(None, None, ["none"], suite="flooding", protocol=protocol)
    assert flood["settings"]["first_window"] == str(FLOOD_WINDOW) and flood["settings"]["suite"] == "flooding"
    frozen = flood["shifts"]["flooding"]["main"]["methods"]["none"]
    assert frozen["summary"]["dice@1"] < 0.3 and frozen["summary"]["empty+"] == 0
    image, labels = nuclei_crop
    tifffile.imwrite(tmp_path / "i.tif", image)
    tifffile.imwrite(tmp_path / "l.tif", labels)
    args = ["bench", "adapt", "--suite", "accept", "--image", str(tmp_path / "i.tif"), "--labels"]
    args += [str(tmp_path / "l.tif"), "--shift", "none", "--methods", "none,oaims", "--max-targets", "4"]
    assert main([*args, "--device", "cpu", "--out", str(tmp_path / "a.json")]) == 0
    per = json.loads((tmp_path / "a.json").read_text())["shifts"]["none"]["main"]["methods"]
    assert all(len(c) == 1 for c in per["oaims"]["curves"]) and per["oaims"]["curves"] == per["none"]["curves"]
    assert per["oaims"]["summary"]["updates"] == 0
    with pytest.raises(SystemExit, match="needs --image"):
        main(["bench", "adapt", "--suite", "accept"])
