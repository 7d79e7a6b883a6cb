"""npe2 reader and writer for .oaims.zarr sessions, called directly or through napari's
``ViewerModel.open`` (no Qt)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from napari.layers import Layer

from napari_oaims import Engine
from napari_oaims.evaluation.store import object_centres
from napari_oaims.plugin.reader import FOLDER_PATTERN, PLUGIN_NAME, get_reader, prefer_session_reader
from napari_oaims.plugin.writer import write_session
from napari_oaims.store.session_store import SessionStore, file_digest

DATA = Path("/work/shared/data/nuclei2d")


@pytest.fixture(scope="module")
def nuclei():
    return tifffile.imread(DATA / "image.tif"), tifffile.imread(DATA / "labels.tif")


@pytest.fixture(scope="module")
def autosaved(tmp_path_factory, nuclei):
    image, labels = nuclei
    c = [yx for _, yx in object_centres(labels)]
    engine = Engine.pretrained(device="cpu")
    s = engine.session(image)
    path = tmp_path_factory.mktemp("rw") / "cells.oaims.zarr"
    SessionStore.create(path, image, engine=engine, session=s)  # autosaves every event from now on
    s.click(c[0])
    s.click((c[0][0] + 10, c[0][1]), positive=False)
    s.accept()
    s.box((c[1][0] - 8, c[1][1] - 8, c[1][0] + 8, c[1][1] + 8))
    s.accept()
    return path


def test_get_reader_only_takes_sessions(tmp_path, autosaved):
    foreign = tmp_path / "theirs.oaims.zarr"
    zarr.open_group(foreign, mode="w").create_array("x", data=np.arange(3))
    tif = tmp_path / "img.tif"
    tifffile.imwrite(tif, np.zeros((8, 8), np.uint8))
    assert get_reader(str(foreign)) is None
    assert get_reader(str(tmp_path / "missing.oaims.zarr")) is None
    assert get_reader(str(tif)) is None
    assert get_reader([str(autosaved), str(autosaved)]) is None
    assert get_reader(str(autosaved) + "/") is not None
    assert get_reader([str(autosaved)]) is not None


def test_reader_layers(autosaved, nuclei):
    image, _ = nuclei
    layers = get_reader(str(autosaved))(str(autosaved))
    assert [t for _, _, t in layers] == ["image", "labels", "points", "shapes"]
    (img, img_meta, _), (lab, lab_meta, _), (pts, pts_meta, _), (shp, shp_meta, _) = layers
    np.testing.assert_array_equal(np.asarray(img), image)
    assert img_meta["name"] == "cells"
    assert sorted(np.unique(lab).tolist()) == [0, 1, 2]
    assert [o["id"] for o in lab_meta["metadata"]["objects"]] == [1, 2]
    assert pts.shape == (2, 2) and pts_meta["features"]["positive"].tolist() == [True, False]
    assert shp_meta["shape_type"] == ["rectangle"] and shp[0].shape == (4, 2)
    built = [Layer.create(d, m, t) for d, m, t in layers]  # napari accepts every tuple (no Qt needed)
    assert built[2].features["positive"].tolist() == [True, False]


def test_writer_round_trip(tmp_path, nuclei):
    image, labels = nuclei
    points = np.array([[10.0, 12.0], [30.0, 40.0]])
    shapes = [np.array([[1.0, 1.0], [1.0, 9.0], [9.0, 9.0], [9.0, 1.0]]), np.array([[3.0, 3.0], [6.0, 7.0]])]
    layers = [
        Layer.create(image, {"name": "cells"}, "image"),
        Layer.create(labels, {"name": "objects"}, "labels"),
        Layer.create(points, {"features": {"positive": [True, False]}}, "points"),
        Layer.create(shapes, {"shape_type": ["rectangle", "path"]}, "shapes"),
    ]
    out = write_session(str(tmp_path / "saved"), [layer.as_layer_data_tuple() for layer in layers])
    assert out == [str(tmp_path / "saved.oaims.zarr")]
    back = get_reader(out[0])(out[0])
    np.testing.assert_array_equal(np.asarray(back[0][0]), image)
    np.testing.assert_array_equal(back[1][0], labels)
    np.testing.assert_array_equal(back[2][0], points)
    assert back[2][1]["features"]["positive"].tolist() == [True, False]
    assert back[3][1]["shape_type"] == ["rectangle", "path"]
    np.testing.assert_array_equal(back[3][0][1], shapes[1])
    store = SessionStore.open(out[0])
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    assert [(o["id"], o["area"]) for o in store.objects()] == list(zip(ids.tolist(), counts.tolist()))
    # NGFF tools see an OME-Zarr image with an "objects" label image
    root = zarr.open_group(out[0], mode="r")
    assert root.attrs["ome"]["multiscales"][0]["datasets"][0]["path"] == "s0"
    assert root["labels"].attrs["ome"]["labels"] == ["objects"]


def test_writer_updates_an_existing_session_and_keeps_its_log(tmp_path, autosaved):
    import shutil

    path = tmp_path / "cells.oaims.zarr"
    shutil.copytree(autosaved, path)
    events = SessionStore.open(path).events()
    layers = [Layer.create(d, m, t) for d, m, t in get_reader(str(path))(str(path))]
    layers[1].data = np.where(layers[1].data == 2, 0, layers[1].data)  # the user erased object 2
    write_session(str(path), [layer.as_layer_data_tuple() for layer in layers])
    store = SessionStore.open(path)
    assert store.events() == events
    assert [o["id"] for o in store.objects()] == [1]
    assert 2 not in np.unique(store.labels()[...])


def test_writer_bad_input(tmp_path, nuclei):
    image, labels = nuclei
    img = (image, {"name": "a"}, "image")
    with pytest.raises(ValueError, match="exactly one image layer; 2 were selected"):
        write_session(str(tmp_path / "x.oaims.zarr"), [img, img])
    with pytest.raises(ValueError, match="exactly one image layer; 0 were selected"):
        write_session(str(tmp_path / "x.oaims.zarr"), [(labels, {}, "labels")])
    with pytest.raises(ValueError, match="cannot hold vectors layers"):
        write_session(str(tmp_path / "x.oaims.zarr"), [img, (np.zeros((1, 2, 2)), {}, "vectors")])
    foreign = tmp_path / "theirs.oaims.zarr"
    zarr.open_group(foreign, mode="w").create_array("x", data=np.arange(3))
    before = file_digest(foreign)  # paths, sizes and metadata of every file
    with pytest.raises(FileExistsError, match="theirs.oaims.zarr already exists"):
        write_session(str(foreign), [img])
    assert file_digest(foreign) == before
    with pytest.raises(ValueError, match="does not fit the image layer"):
        write_session(str(tmp_path / "y.oaims.zarr"), [img, (labels[:10], {}, "labels")])
    assert not (tmp_path / "x.oaims.zarr").exists() and not (tmp_path / "y.oaims.zarr").exists()


@pytest.fixture
def settings(monkeypatch):
    """napari's settings, in memory: the user's settings file is neither read nor written."""
    from napari import settings as napari_settings

    fresh = napari_settings.NapariSettings(config_path=None)
    monkeypatch.setattr(napari_settings, "_SETTINGS", fresh)
    return fresh


def test_a_session_folder_opens_without_a_choice_of_readers(settings, autosaved):
    import importlib

    import npe2
    from napari.components import ViewerModel
    from napari.errors import MultipleReaderError

    pm = npe2.PluginManager.instance()
    pm.discover()
    viewer = ViewerModel()
    # plugin=None: the reader is chosen as File > Open and drag and drop choose it (viewer.open's
    # default, plugin="napari", always reads with napari's own reader)
    with pytest.raises(MultipleReaderError):  # napari's own reader takes every folder too
        viewer.open(str(autosaved), plugin=None)
    assert not viewer.layers
    # the manifest's activation hook (run on the plugin's first use) makes this reader the choice
    module, name = pm.get_manifest(PLUGIN_NAME).on_activate.split(":")
    getattr(importlib.import_module(module), name)(None)
    assert settings.plugins.extension2reader == {FOLDER_PATTERN: PLUGIN_NAME}
    for path in (str(autosaved), str(autosaved) + "/", autosaved):
        viewer.layers.clear()
        viewer.open(path, plugin=None)
        assert [layer.name for layer in viewer.layers] == [
            "cells",
            "cells objects",
            "cells clicks",
            "cells boxes and scribbles",
        ]
    assert viewer.layers["cells"].metadata["oaims_session"] == str(autosaved)
    assert prefer_session_reader()  # idempotent


def test_a_users_own_reader_choice_is_kept(settings):
    settings.plugins.extension2reader = {FOLDER_PATTERN: "napari", "*.tif": "napari"}
    assert not prefer_session_reader()
    assert settings.plugins.extension2reader == {FOLDER_PATTERN: "napari", "*.tif": "napari"}


def test_a_broad_zarr_choice_does_not_cover_sessions_and_the_preference_is_written_once(settings, tmp_path):
    from napari.plugins.utils import get_preferred_reader

    settings.plugins.extension2reader = {"*.zarr/": "napari"}  # chosen for zarr folders in general
    writes = []
    settings.plugins.events.extension2reader.connect(lambda event: writes.append(dict(event.value)))
    assert prefer_session_reader()
    assert list(settings.plugins.extension2reader.items()) == [(FOLDER_PATTERN, PLUGIN_NAME), ("*.zarr/", "napari")]
    session, other = tmp_path / "cells.oaims.zarr", tmp_path / "image.zarr"
    session.mkdir(), other.mkdir()
    assert get_preferred_reader(str(session)) == PLUGIN_NAME and get_preferred_reader(str(other)) == "napari"
    assert prefer_session_reader()  # the annotator opened again: nothing more is written
    assert writes == [{FOLDER_PATTERN: PLUGIN_NAME, "*.zarr/": "napari"}]
