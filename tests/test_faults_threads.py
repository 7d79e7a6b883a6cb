"""A session used from several threads: every prompt is kept, and accept waits for a propagation."""

import threading
import time

import numpy as np
import pytest

from conftest import largest_ids


def _points_inside(labels: np.ndarray, label_id: int, n: int) -> list[tuple[int, int]]:
    """``n`` different pixels well inside object ``label_id``."""
    from scipy import ndimage

    inner = ndimage.binary_erosion(labels == label_id, iterations=2)
    ys, xs = np.nonzero(inner)
    pick = np.linspace(0, len(ys) - 1, n).astype(int)
    return [(int(ys[i]), int(xs[i])) for i in pick]


def test_two_threads_clicking_one_session_keep_every_prompt(engine, nuclei_crop):
    image, labels = nuclei_crop
    s = engine.session(image)
    points = _points_inside(labels, largest_ids(labels, 1)[0], 10)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def clicker(mine):
        try:
            start.wait()
            for p in mine:
                s.click(p)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=clicker, args=(points[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    kept = sorted(tuple(int(v) for v in p.points[0]) for p in s.prompts(()))
    assert kept == sorted(points)
    assert [e["seq"] for e in s.events] == list(range(len(s.events)))
    assert sum(e["kind"] == "click" for e in s.events) == 10
    assert s.undo() is not None and len(s.prompts(())) == 9  # the history holds each click as one step


def test_accept_during_a_propagation_waits_for_it(engine):
    from napari_oaims.training.volumes import VolumeSpec, make_volume

    image, labels = make_volume(VolumeSpec(kind="abrupt", shape=(12, 48, 48), seed=3, neighbours=1, blur=0.8))
    target = labels == 1
    z = int(np.argmax(target.sum((1, 2))))
    s = engine.session(image, plane_axes=(1, 2))
    s.click((z, *_points_inside(target[z].astype(int), 1, 1)[0]))
    running = threading.Event()
    out: dict = {}

    def slow_progress(done, total, message=""):
        running.set()
        time.sleep(0.05)  # the accept below arrives while slices are still being made

    def work():
        try:
            out["result"] = s.propagate(method="frozen", progress=slow_progress)
        except BaseException as err:  # noqa: BLE001 - reported below
            out["error"] = err

    worker = threading.Thread(target=work)
    worker.start()
    assert running.wait(timeout=120)
    accepted = s.accept()
    worker.join(timeout=120)
    assert "error" not in out and out["result"].changes
    kinds = [e["kind"] for e in s.events]
    assert kinds.index("propagate") < kinds.index("accept")  # the accept came after the propagation
    assert len(accepted.planes) > 1  # the object it accepted holds the propagated slices
    assert s.planes == {} and s.object_id == accepted.object_id + 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.click(None), "coordinates must be real numbers"),
        (lambda s: s.click((True, True)), "coordinates must be real numbers"),
        (lambda s: s.click(("10", "12")), "coordinates must be real numbers"),
        (lambda s: s.click((10, 12), positive="no"), "positive must be True"),
        (lambda s: s.click((10, 12), positive=None), "positive must be True"),
        (lambda s: s.scribble([(10, 12), (11, 13)], positive="yes"), "positive must be True"),
        (lambda s: s.scribble([(True, 12), (11, 13)]), "scribble points must be real numbers"),
    ],
)
def test_bad_prompts_are_refused_clearly(engine, nuclei_crop, call, message):
    s = engine.session(nuclei_crop[0])
    with pytest.raises(ValueError, match=message):
        call(s)
    assert [e["kind"] for e in s.events] == ["session"]  # nothing was recorded


@pytest.mark.parametrize("axis", [0.5, "0", True, np.float64(0.0)])
def test_propagate_refuses_an_axis_that_is_not_an_integer(engine, axis):
    from napari_oaims.training.volumes import VolumeSpec, make_volume

    image, labels = make_volume(VolumeSpec(kind="abrupt", shape=(6, 32, 32), seed=3, blur=0.8))
    target = labels == 1
    z = int(np.argmax(target.sum((1, 2))))
    s = engine.session(image, plane_axes=(1, 2))
    s.click((z, *_points_inside(target[z].astype(int), 1, 1)[0]))  # with axis=0 it would run
    with pytest.raises(ValueError, match="axis must be an integer"):
        s.propagate(axis=axis, method="copy")
