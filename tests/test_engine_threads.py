"""torch's intra-op threads around the engine's own passes, the engine's repr and the latency
benchmark's busy-machine option."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_oaims import Engine
from napari_oaims.engine import ONE_THREAD_PIXELS, intra_op_threads, torch_threads
from napari_oaims.simulate.clicks import click_in_region


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _record_threads(engine) -> list[tuple[bool, int]]:
    seen: list[tuple[bool, int]] = []
    engine.model.register_forward_hook(lambda m, i, o: seen.append((m.training, torch.get_num_threads())))
    return seen


def test_clicks_and_updates_run_on_one_thread_and_leave_the_process_alone(two_threads, nuclei):
    image, labels = nuclei
    engine = Engine.pretrained(device="cpu", adaptation="oaims")
    assert torch.get_num_threads() == 2  # making an engine changes nothing
    seen = _record_threads(engine)
    s = engine.session(image)
    y, x = np.argwhere(labels == 7).mean(0).astype(int)
    mask = s.click((y, x)).mask
    extra, missed = mask & (labels != 7), ~mask & (labels == 7)
    wrong = extra if extra.sum() >= missed.sum() else missed
    s.click(click_in_region(wrong), positive=wrong is missed)  # a correction: the guarded MI update runs
    assert engine.updates > 0
    assert torch.get_num_threads() == 2  # restored after each pass
    assert {training for training, _ in seen} == {True, False}  # forward passes of clicks and of the update
    assert {threads for _, threads in seen} == {1}


def test_large_work_keeps_torchs_threads(two_threads):
    engine = Engine.pretrained(device="cpu")
    seen = _record_threads(engine)
    engine.predict(np.zeros((8, 4, 128, 128), np.float32))  # 8 windows: more than a click's work
    assert seen == [(False, 2)]
    assert intra_op_threads(ONE_THREAD_PIXELS) == 1 and intra_op_threads(ONE_THREAD_PIXELS + 1) == 2


def test_torch_threads_restores_after_an_error(two_threads):
    with pytest.raises(RuntimeError), torch_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2


def test_engine_repr_says_what_it_is():
    engine = Engine.pretrained(device="cpu", adaptation="oaims")
    text = repr(engine)
    assert text == (
        f"Engine(device='cpu', adaptation='oaims', weights='{engine.weights_hash}', "
        f"base='{engine.base_hash}', updates=0)"
    )


def test_busy_load_starts_and_stops_its_processes():
    from napari_oaims.evaluation.latency import busy_load

    with busy_load(2) as procs:
        assert len(procs) == 2 and all(p.poll() is None for p in procs)
    assert all(p.poll() is not None for p in procs)


def test_latency_with_load_reports_both(tmp_path, nuclei_crop, capsys):
    import tifffile

    from napari_oaims.cli import main

    image, labels = nuclei_crop
    tifffile.imwrite(tmp_path / "img.tif", image)
    tifffile.imwrite(tmp_path / "lab.tif", labels)
    argv = ["bench", "latency", "--image", str(tmp_path / "img.tif"), "--labels", str(tmp_path / "lab.tif")]
    argv += ["--sizes", "160", "--modes", "none", "--objects", "2", "--clicks", "1", "--device", "cpu", "--load", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "cpu 160px frozen click " in out and "cpu 160px frozen click, 1 busy" in out
    assert main(argv[:-1] + ["-1"]) == 2


def test_ema_propagation_passes_follow_the_engine_rule(two_threads):
    """The EMA adapter's temporary teacher and student run a slice's few windows on one thread
    (larger augmentation batches keep torch's threads) and leave the process's setting alone."""
    from napari_oaims.training.volumes import VolumeSpec, make_volume

    image, labels = make_volume(VolumeSpec(kind="abrupt", shape=(10, 48, 48), seed=3, neighbours=0))
    target = labels == 1
    z = int(np.argmax(target.sum((1, 2))))
    engine = Engine.pretrained(device="cpu")
    seen: list[tuple[int, bool, int]] = []  # the copies of the model carry the hook
    engine.model.register_forward_hook(
        lambda m, i, o: seen.append((int(np.prod(i[0].shape)) // i[0].shape[1], m.training, torch.get_num_threads()))
    )
    s = engine.session(image, plane_axes=(1, 2))
    s.set_mask(target[z], plane=(z,))
    s.propagate(method="ema", adapt_every=1, adapt_min_uncertain=0.0, n_high=16, ratio_cut=0.0)
    assert torch.get_num_threads() == 2  # restored after each pass
    small = {threads for pixels, _, threads in seen if pixels <= ONE_THREAD_PIXELS}
    large = {threads for pixels, _, threads in seen if pixels > ONE_THREAD_PIXELS}
    assert any(training for _, training, _ in seen)  # the student's steps are among them
    assert small == {1} and large == {2}
