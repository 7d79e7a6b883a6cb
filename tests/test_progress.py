"""The progress and cancel protocol, and the long calls that use it (PI updates, training, benchmarks)."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest

from napari_oaims.core.progress import (
    Cancel,
    Cancelled,
    Collect,
    Progress,
    TqdmProgress,
    cancel_requested,
    check_cancel,
    emit,
    scoped,
)
from napari_oaims.simulate.robot import Robot

from conftest import largest_ids


def test_cancel_accepts_events_functions_and_none():
    assert not cancel_requested(None)
    ev = threading.Event()
    assert not cancel_requested(ev)
    ev.set()
    assert cancel_requested(ev)
    assert cancel_requested(lambda: True) and not cancel_requested(lambda: False)
    token = Cancel()
    token.check()
    token.set()
    with pytest.raises(Cancelled):
        token.check()
    with pytest.raises(Cancelled):
        check_cancel(ev)
    with pytest.raises(TypeError, match="cancel must be"):
        cancel_requested(3)


def test_progress_adapters():
    seen = Collect()
    assert isinstance(seen, Progress) and seen.last is None
    emit(seen, 1, 4, "a")
    emit(None, 1, 4, "ignored")
    scoped(seen, "outer")(2, 4, "inner")
    assert scoped(None, "x") is None
    assert seen.calls == [(1, 4, "a"), (2, 4, "outer")] and seen.last == (2, 4, "outer")
    out = io.StringIO()
    with TqdmProgress(unit="obj", file=out, mininterval=0) as bars:
        bars(1, 2, "first")
        bars(2, 2, "first")
        bars(1, 3, "second")  # a new message: a new bar
    text = out.getvalue()
    assert "first" in text and "second" in text and "2/2" in text and "1/3" in text
    out = io.StringIO()
    with TqdmProgress(unit="step", desc="train", file=out, mininterval=0) as bar:
        bar(1, 5, "loss 0.500")
        bar(2, 5, "loss 0.400")  # one bar; the message is its postfix
    text = out.getvalue()
    assert "train" in text and "loss 0.400" in text and "2/5" in text


def _annotate_with_corrections(session, labels, oid: int, clicks: int = 3) -> None:
    robot = Robot(seed=0)
    robot.reset(oid)
    target = labels == oid
    pred = np.zeros_like(target)
    for _ in range(clicks):
        c = robot.next_click(pred, target)
        if c is None:
            break
        pred = session.click((c.y, c.x), c.positive).mask


def test_cancelled_pi_update_puts_everything_back_and_stays_pending(nuclei_crop):
    from napari_oaims import Engine

    image, labels = nuclei_crop
    oid = largest_ids(labels, 1)[0]

    def annotated():
        engine = Engine.pretrained(device="cpu", adaptation="pi")
        session = engine.session(image)
        _annotate_with_corrections(session, labels, oid)
        session.accept(defer_update=True)
        return engine, session

    ref_engine, ref = annotated()
    ref.run_pending_updates()
    ref_methods = [e["extra"]["method"] for e in ref.events if e["kind"] == "update"]
    assert "pi_stage1" in ref_methods and "pi_stage2" in ref_methods  # PI did run on this object

    engine, session = annotated()
    before, updates = engine.weights_hash, engine.updates
    calls = []

    def cancel() -> bool:  # asked before the object, before its plane, then between stage 1 and 2
        calls.append(1)
        return len(calls) >= 3

    with pytest.raises(Cancelled):
        session.run_pending_updates(cancel=cancel)
    assert len(calls) == 3  # stage 1 ran and was put back
    assert engine.weights_hash == before and engine.updates == updates
    assert session.pending_updates == 1
    assert not [e for e in session.events if e["kind"] == "update"]
    seen = Collect()
    assert session.run_pending_updates(progress=seen, cancel=Cancel()) == 1
    assert seen.calls == [(1, 1, "learning")]
    assert engine.weights_hash == ref_engine.weights_hash  # the rerun learns exactly what an uncancelled one does


def test_cancelled_training_keeps_a_checkpoint_that_resumes(tmp_path):
    from napari_oaims.model import weights_hash
    from napari_oaims.training import pretrain as train

    cfg = train.TrainConfig(steps=3, batch_size=2, channels=(8, 16), checkpoint_every=10, threads=1)
    full = train.train(cfg, tmp_path / "a")
    seen = Collect()
    token = Cancel()

    def progress(done, total, message=""):
        seen(done, total, message)
        if done == 1:
            token.set()

    with pytest.raises(Cancelled, match="step 1"):
        train.train(cfg, tmp_path / "b", progress=progress, cancel=token)
    assert seen.calls[0][:2] == (1, 3) and seen.calls[0][2].startswith("loss ")
    resumed = train.train(cfg, tmp_path / "b")
    assert weights_hash(resumed) == weights_hash(full)


def test_benchmark_loop_reports_and_cancels(nuclei_crop, engine):
    from napari_oaims.evaluation.common import ModelMethod, run_targets

    image, labels = nuclei_crop
    ids = largest_ids(labels, 3)
    method = ModelMethod(engine, image)
    seen = Collect()
    token = Cancel()

    def progress(done, total, message=""):
        seen(done, total, message)
        token.set()

    with pytest.raises(Cancelled):
        run_targets(method, labels, ids, Robot(seed=0), 1, progress=progress, cancel=token)
    assert seen.calls == [(1, 3, "targets")]
