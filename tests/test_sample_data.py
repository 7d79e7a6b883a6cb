"""Sample data, the shipped nuclei copy and the npe2 manifest."""

from __future__ import annotations

import importlib
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from napari_oaims.data import sample_nuclei
from napari_oaims.plugin.sample_data import nuclei_2d, volume_3d

MANIFEST = Path(__file__).resolve().parents[1] / "napari.yaml"


def test_nuclei_2d_is_the_shipped_real_image():
    [(image, meta, kind)] = nuclei_2d()
    assert kind == "image" and meta == {"name": "nuclei"}
    assert image.shape == (512, 512) and image.dtype == np.uint16 and image.std() > 0
    same, labels = sample_nuclei()
    assert np.array_equal(image, same)
    assert labels.shape == image.shape and len(np.unique(labels)) > 100


def test_shipped_data_carries_its_license():
    folder = resources.files("napari_oaims") / "data"
    names = {p.name for p in folder.iterdir()}
    assert {"nuclei2d_image.tif", "nuclei2d_labels.tif", "LICENSE-stardist.txt", "README.md"} <= names
    assert "BSD" in (folder / "LICENSE-stardist.txt").read_text()
    readme = (folder / "README.md").read_text()
    assert "StarDist" in readme and "BBBC038" in readme and "CC0" in readme


def test_volume_3d_is_reproducible():
    (image, meta, kind), (labels, lmeta, lkind) = volume_3d()
    assert kind == "image" and lkind == "labels" and lmeta["name"] == "ground truth"
    assert image.ndim == 3 and labels.shape == image.shape and labels.max() >= 3
    assert np.array_equal(volume_3d()[0][0], image)


def test_manifest_commands_resolve():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_file(MANIFEST)
    assert manifest.name == "napari-oaims"
    for command in manifest.contributions.commands:
        module, _, attr = command.python_name.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), command.python_name
    samples = {s.key: s.display_name for s in manifest.contributions.sample_data}
    assert samples == {"nuclei_2d": "Nuclei 2D (real, DSB 2018)", "volume_3d": "Synthetic 3D nuclei volume"}
    assert [w.display_name for w in manifest.contributions.widgets] == ["OAIMS annotator"]
    [reader] = manifest.contributions.readers
    assert reader.filename_patterns == ["*.oaims.zarr"] and reader.accepts_directories
    [writer] = manifest.contributions.writers
    assert writer.filename_extensions == [".oaims.zarr"]
    assert (Path(importlib.import_module("napari_oaims").__file__).parent / "napari.yaml").resolve() == MANIFEST


@pytest.mark.gui
def test_samples_open_in_napari(make_napari_viewer):
    pytest.importorskip("napari")
    viewer = make_napari_viewer()
    viewer.open_sample("napari-oaims", "nuclei_2d")
    assert viewer.layers["nuclei"].data.shape == (512, 512)
    viewer.open_sample("napari-oaims", "volume_3d")
    assert viewer.layers["ground truth"].data.ndim == 3
