"""The notebook annotator without a browser: the browser's messages (clicks, boxes, scribbles,
actions) go through the widget's handler to a real Session on the real model, and what would
travel back (PNG overlay regions) is decoded and checked."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("anywidget")

from napari_oaims import Engine, Session  # noqa: E402
from napari_oaims.notebook import Annotator, transport  # noqa: E402
from napari_oaims.training.volumes import VolumeSpec, make_volume  # noqa: E402

from conftest import largest_ids, object_centre  # noqa: E402


@pytest.fixture(scope="module")
def shared_engine():
    return Engine.pretrained(device="cpu")


class Browser:
    """What the kernel sends to the browser, decoded: the image, the overlays and their regions."""

    def __init__(self, annotator: Annotator):
        self.messages: list[tuple[dict, list[bytes]]] = []
        annotator.send = lambda content, buffers=None: self.messages.append((content, list(buffers or [])))
        self.a = annotator
        h, w = transport.display_shape(annotator.plane_shape, annotator.factor)
        self.layers = {"preview": np.zeros((h, w, 4), np.uint8), "objects": np.zeros((h, w, 4), np.uint8)}
        self.image = None
        self._seen = 0

    def say(self, **content) -> list[dict]:
        self.a.handle_message(content)
        return self.sync()

    def sync(self) -> list[dict]:
        new = self.messages[self._seen :]
        self._seen = len(self.messages)
        for content, buffers in new:
            if content["type"] == "image":  # a new plane: the overlays that follow fill the layers again
                self.image = np.asarray(Image.open(io.BytesIO(buffers[0])))
                for layer in self.layers.values():
                    layer[:] = 0
            elif content["type"] == "overlay" and content["box"] is not None:
                y0, x0, y1, x1 = content["box"]
                region = np.asarray(Image.open(io.BytesIO(buffers[0])))
                assert region.shape == (y1 - y0, x1 - x0, 4)
                self.layers[content["layer"]][y0:y1, x0:x1] = region
        return [c for c, _ in new]

    def shown(self, layer: str) -> np.ndarray:
        return self.layers[layer][..., 3] > 0


def test_click_accept_undo_redo_travel_as_regions(shared_engine, nuclei):
    image, labels = nuclei
    a = Annotator(image, engine=shared_engine)
    b = Browser(a)
    sent = b.say(type="ready")
    assert [m["type"] for m in sent] == ["image", "overlay", "overlay"] and b.image.shape == image.shape
    assert b.image.dtype == np.uint8 and b.image.std() > 5
    target = largest_ids(labels, 1)[0]
    y, x = object_centre(labels, target)
    sent = b.say(type="click", y=y + 0.5, x=x + 0.5, positive=True, id=7)
    reply = [m for m in sent if m.get("reply_to") == 7]
    assert len(reply) == 1 and reply[0]["layer"] == "preview"
    y0, x0, y1, x1 = reply[0]["box"]
    assert (y1 - y0) * (x1 - x0) < image.size / 4, "only the changed region travels"
    assert np.array_equal(b.shown("preview"), a.session.mask), "the overlay the browser holds is the session's mask"
    assert reply[0]["prompts"] == [{"kind": "click", "positive": True, "points": [[y, x]]}]
    kinds = [e["kind"] for e in a.session.events]
    assert kinds[-2:] == ["click", "predict"] and a.last_latency_ms > 0

    b.say(type="action", name="accept")
    assert a.labels.max() == 1 and not b.shown("preview").any()
    assert np.array_equal(b.shown("objects"), a.labels > 0) and a.session.events[-1]["kind"] in ("accept", "update")
    assert a.object_classes == {1: (1, "object")} and "1 accepted" in a.status
    b.say(type="action", name="undo")  # right after accept: the object goes back
    assert a.labels.max() == 0 and not b.shown("objects").any()
    assert a.session.events[-1]["kind"] == "withdraw"
    b.say(type="action", name="redo")
    assert np.array_equal(b.shown("objects"), a.labels > 0) and a.labels.max() == 1


def test_negative_click_box_scribble_clear_undo(shared_engine, nuclei_crop):
    image, labels = nuclei_crop
    a = Annotator(image, engine=shared_engine)
    b = Browser(a)
    b.say(type="ready")
    target = largest_ids(labels, 1)[0]
    ys, xs = np.nonzero(labels == target)
    b.say(type="box", y0=ys.min() - 2, x0=xs.min() - 2, y1=ys.max() + 3, x1=xs.max() + 3, id=1)
    assert a.session.events[-2]["kind"] == "box" and b.shown("preview").any()
    area = int(a.session.mask.sum())
    y, x = object_centre(labels, target)
    b.say(type="click", y=y + 0.5, x=x + 0.5, positive=False, id=2)
    assert a.session.events[-2]["kind"] == "click" and a.session.events[-2]["label"] == 0
    assert a.session.mask.sum() < area and np.array_equal(b.shown("preview"), a.session.mask)
    b.say(type="action", name="undo")
    assert a.session.mask.sum() == area and np.array_equal(b.shown("preview"), a.session.mask)
    b.say(type="action", name="clear")
    assert not a.session.mask.any() and not b.shown("preview").any()
    b.say(type="scribble", points=[[y + 0.5, x - 1.5], [y + 0.5, x + 2.5]], positive=True, id=3)
    assert a.session.events[-2]["kind"] == "scribble" and np.array_equal(b.shown("preview"), a.session.mask)


def test_errors_are_shown_not_raised(shared_engine, nuclei_crop):
    image, _ = nuclei_crop
    a = Annotator(image, engine=shared_engine)
    b = Browser(a)
    sent = b.say(type="click", y=500, x=3, id=9)
    assert a.error and "outside the image" in a.message
    assert sent[-1] == {"type": "overlay", "layer": "preview", "box": None, "reply_to": 9, "failed": True}
    b.say(type="action", name="accept")
    assert a.error and "nothing to accept" in a.message
    b.say(type="action", name="propagate")
    assert a.error and "not a stack" in a.message
    b.say(type="action", name="fly")
    assert a.error and "unknown action" in a.message
    b.say(type="click", id=3)
    assert a.error and "coordinates" in a.message
    assert b.say(type="ping", t=5) == [{"type": "pong", "t": 5}]
    with pytest.raises(ValueError, match="needs an image"):
        Annotator(None, engine=shared_engine)


def test_large_image_is_downsampled_and_maps_back(shared_engine):
    rng = np.random.default_rng(0)
    image = rng.normal(0, 0.05, (4100, 2050)).astype(np.float32)
    yy, xx = np.mgrid[:4100, :2050]
    image[(yy - 3001) ** 2 + (xx - 1001) ** 2 < 24**2] += 1.0
    a = Annotator(image, engine=shared_engine, max_side=2048)
    b = Browser(a)
    b.say(type="ready")
    assert a.factor == 3 and b.image.shape == (1367, 684)
    b.say(type="click", y=(3001 + 0.5) / 3, x=(1001 + 0.5) / 3, id=1)  # pixel p spans [p, p + 1) / 3
    assert a.session.events[-2]["coords"] == [3001, 1001], "display coordinates map back to the plane pixel"
    mask = a.session.mask
    assert mask[3001, 1001] and 1000 < mask.sum() < 3000
    pooled = transport.pool(mask, 3)[: b.layers["preview"].shape[0], : b.layers["preview"].shape[1]]
    assert np.array_equal(b.shown("preview"), pooled)


def test_stack_slider_propagate_suggest_cancel(shared_engine):
    image, lab = make_volume(VolumeSpec(kind="abrupt", shape=(12, 48, 48), seed=3, neighbours=1, blur=0.8))
    target = lab == 1
    z = int(np.argmax(target.sum((1, 2))))
    a = Annotator(image, engine=shared_engine)
    b = Browser(a)
    assert a.stack_shape == [12] and "propagate" in a.stack_actions and "suggest" in a.stack_actions
    a.key = [z]
    sent = b.sync()
    assert [m["type"] for m in sent][:1] == ["image"] and sent[0]["key"] == [z]
    y, x = object_centre(target[z].astype(int), 1)
    b.say(type="click", y=y + 0.5, x=x + 0.5, id=1)
    assert a.session.events[-2]["coords"] == [z, y, x] or a.session.events[-2]["plane"] == [z]
    a.key = [z + 1]  # the slice on screen follows the propagation as it is made
    b.sync()
    b.say(type="action", name="propagate")
    assert a.jobs.wait(120) and not a.busy
    assert a.session.events[-1]["kind"] == "propagate" and a.session.mask.sum(axis=(1, 2)).astype(bool).sum() > 3
    live = [m for m in b.sync() if m["type"] == "overlay" and m["key"] == [z + 1] and m["box"] is not None]
    assert len(live) >= 2, "the slice's masks arrive as they are made, then the result"
    assert np.array_equal(b.shown("preview"), a.session.mask[z + 1])
    b.say(type="action", name="suggest")
    assert a.jobs.wait(60)
    assert a.message.startswith("check slice") or a.message.startswith("no slice")
    b.sync()
    assert np.array_equal(b.shown("preview"), a.session.mask[a.key[0]])
    # Cancel: a cancelled propagation changes nothing, and the widget says so
    b.say(type="action", name="undo")
    before = a.session.mask.copy()
    b.say(type="action", name="propagate")
    assert a.busy == "propagating"
    a.key = [z + 1]  # the slider moves while it runs: the new slice is shown without waiting for it
    assert a.jobs.current is not None and b.sync()[0]["type"] == "image"
    b.say(type="click", y=y + 0.5, x=x + 0.5, id=2)
    assert a.error and "busy: propagating" in a.message, "prompts wait for no propagation"
    b.say(type="action", name="cancel")
    assert a.jobs.wait(60) and not a.busy
    assert np.array_equal(before, a.session.mask) and "cancelled" in a.message
    b.sync()
    assert np.array_equal(b.shown("preview"), a.session.mask[a.key[0]]), "the live masks are taken back"


def test_propagate_keeps_off_the_accepted_objects(shared_engine):
    from napari_oaims.plugin.sample_data import volume_3d
    from napari_oaims.simulate.clicks import click_in_region

    (image, _, _), (labels, _, _) = volume_3d()
    a = Annotator(image, engine=shared_engine)
    b = Browser(a)
    for lab in (4, 6):  # nucleus 6 touches nucleus 4, accepted first
        truth = labels == lab
        zs = np.flatnonzero(truth.any((1, 2)))
        z = int((zs[0] + zs[-1]) // 2)
        a.key = [z]
        b.sync()
        y, x = click_in_region(truth[z])
        b.say(type="click", y=y + 0.5, x=x + 0.5, id=lab)
        b.say(type="action", name="propagate")
        assert a.jobs.wait(120) and not a.error, a.message
        event = a.session.events[-1]
        assert event["kind"] == "propagate" and event["extra"]["call"]["method"] == "frozen"
        assert event["extra"]["barrier"] is (lab == 6)
        propagated = a.session.mask.copy()
        propagated[z] = False
        assert propagated.sum() > truth.sum() // 2
        assert not (propagated & (a.labels > 0)).any(), "a propagated slice took an accepted object's voxels"
        b.say(type="action", name="accept")
        assert a.jobs.wait(60) and not a.error, a.message
        if lab == 4:
            first = a.labels == 1
    assert np.array_equal(a.labels == 1, first), "accepting the second object took none of the first"
    # "accept over other objects" (the checkbox's trait): propagate and accept may take them
    a.overwrite = True  # what the checkbox sets
    b.say(type="click", y=y + 0.5, x=x + 0.5, id=7)  # nucleus 6 again, on its middle slice
    b.say(type="action", name="propagate")
    assert a.jobs.wait(120) and not a.error, a.message
    assert a.session.events[-1]["extra"]["barrier"] is False
    b.say(type="action", name="accept")
    assert a.jobs.wait(60) and not a.error, a.message
    assert [e for e in a.session.events if e["kind"] == "accept"][-1]["extra"]["overwrite"] is True
    assert ((a.labels == 3) & first).sum() > 100, "the third object took pixels of the first"


@pytest.mark.skipif(
    not hasattr(Session, "propagate_objects"), reason="Session.propagate_objects is not in this napari-oaims"
)
def test_propagate_all_accepts_every_object_of_the_slice_and_undoes_them_together(shared_engine):
    image, lab = make_volume(VolumeSpec(kind="abrupt", shape=(12, 48, 48), seed=3, neighbours=1, blur=0.8))
    z = int(np.argmax((lab == 1).sum((1, 2))))
    ids = [i for i in (1, 2) if (lab[z] == i).sum() > 20]
    a = Annotator(image, engine=shared_engine)
    b = Browser(a)
    assert "propagate_all" in a.stack_actions
    a.key = [z]
    for i in ids:
        y, x = object_centre(lab[z], i)
        b.say(type="click", y=y + 0.5, x=x + 0.5, id=i)
        b.say(type="action", name="accept")
    a.jobs.wait(60)
    before = a.labels.copy()
    b.say(type="action", name="propagate_all")
    assert a.jobs.wait(300) and not a.error, a.message
    assert a.labels.max() > before.max() and (a.labels[z + 1] > 0).any()
    b.sync()
    assert np.array_equal(b.shown("objects"), a.labels[z] > 0)
    b.say(type="action", name="undo")
    assert np.array_equal(a.labels, before), "one undo takes every propagated object back"


def test_autosave_and_resume(shared_engine, nuclei_crop, tmp_path):
    from napari_oaims.store import SessionStore

    image, labels = nuclei_crop
    path = tmp_path / "cells.oaims.zarr"
    a = Annotator(image, engine=shared_engine, session_path=path)
    b = Browser(a)
    target = largest_ids(labels, 1)[0]
    y, x = object_centre(labels, target)
    a.class_name = "nucleus"
    b.say(type="click", y=y + 0.5, x=x + 0.5, id=1)
    b.say(type="action", name="accept")
    saved = a.labels.copy()
    a.close_session()
    with SessionStore.open(path, read_only=True) as store:
        assert np.array_equal(np.asarray(store.labels()[...]) > 0, saved > 0)
        assert [(o["id"], o["class_name"]) for o in store.objects()] == [(1, "nucleus")]
    again = Annotator(engine=shared_engine, session_path=path)
    assert np.array_equal(again.labels, saved) and again.session.object_id == 2
    assert "nucleus" in again.classes and again.message.startswith("resumed cells.oaims.zarr: 1 objects")
    again.close_session()


def test_import_needs_neither_napari_nor_qt():
    code = "import sys, napari_oaims.notebook; assert not {'napari', 'PyQt6', 'qtpy'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_example_notebook_runs(tmp_path):
    """examples/annotate_in_jupyter.ipynb runs top to bottom in a kernel (no browser: the widget's
    Python side, its session and its autosave)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from pathlib import Path

    from napari_oaims.store import SessionStore

    path = Path(__file__).resolve().parents[1] / "examples" / "annotate_in_jupyter.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "objects so far: 0" in text and "not saved" in text.splitlines()[-1]
    views = [
        o
        for c in nb.cells
        for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(views) == 2
    with SessionStore.open(tmp_path / "nuclei.oaims.zarr", read_only=True) as store:
        assert store.events()[0]["kind"] == "session"


def test_the_notebook_says_when_answers_start_to_follow_edges(shared_engine):
    """Thin dark cavities accepted as they are: after the third, answers follow the image's edges,
    and the status message says so."""
    from napari_oaims.evaluation.suites import suite

    image, labels = suite("cavities", seed=0, tiles=(1, 2))
    a = Annotator(image, engine=shared_engine)
    Browser(a).say(type="ready")
    messages = []
    for i in largest_ids(labels, 3):
        a.click(object_centre(labels, i))
        a.session.set_mask(labels == i)  # the user corrected the object to what it is
        a.accept()
        messages.append(a.message)
    assert ["now grow along the image's edges" in m for m in messages] == [False, False, True]
    assert not a.error
