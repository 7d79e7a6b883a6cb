"""The README's Python code blocks run as written, in order, in one namespace (as a reader would
paste them), on the bundled data; the checks after each block test what its comments say."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from widget_helpers import napari_settings  # noqa: F401  (napari's settings in memory)

README = Path(__file__).resolve().parents[1] / "README.md"

pytestmark = pytest.mark.gui


def python_blocks(text: str) -> list[tuple[str, str]]:
    """(section title, code) of each ```python block, in order."""
    blocks, section = [], ""
    for part in re.split(r"(^## [^\n]*$|^```python\n.*?^```$)", text, flags=re.M | re.S):
        if part.startswith("## "):
            section = part[3:].strip()
        elif part.startswith("```python"):
            blocks.append((section, part[len("```python\n") : -3]))
    return blocks


def test_the_readme_has_the_blocks_it_should():
    sections = [section for section, _ in python_blocks(README.read_text())]
    for name in ("In napari", "In Python", "In 3D and over time"):
        assert name in sections


def check_in_napari(ns: dict, viewer, qtbot) -> None:
    from napari_oaims.plugin.api import annotator

    assert ns["viewer"] is viewer  # reused the open viewer
    widget = annotator(viewer)
    qtbot.waitUntil(lambda: widget.engine is not None and not widget.jobs.busy, timeout=60_000)
    assert widget.engine.adaptation == "oaims"
    assert widget.image_layer is not None and widget.image_layer.data is ns["image"]


def check_in_python(ns: dict, tmp_path: Path) -> None:
    from napari_oaims.store import SessionStore

    image, engine, result, obj = ns["image"], ns["engine"], ns["result"], ns["obj"]
    assert result.mask.dtype == bool and result.mask.shape == image.shape
    assert np.array_equal(np.asarray(result), result.mask)
    assert result.changes
    kinds = [(e["kind"], (e.get("extra") or {}).get("method")) for e in ns["state"].session.events]
    correction = kinds.index(("click", None), kinds.index(("click", None)) + 1)
    accept = kinds.index(("accept", None))
    assert ("update", "mi") in kinds[correction:accept]  # the correction was learnt from (MI)
    assert any(m and m.startswith("pi") for k, m in kinds[accept:] if k == "update")  # and when accepted (PI)
    assert engine.updates >= 2
    assert obj.object_id == 1 and obj.mask.shape == image.shape and obj.class_name == "object"
    # the correction made the outline of nucleus 7 better, not worse
    truth = ns["labels"] == 7
    dice = 2 * (obj.mask & truth).sum() / (obj.mask.sum() + truth.sum())
    assert dice > 0.8
    resumed = ns["s"]
    assert resumed.object_id == 2  # goes on with the next object
    assert resumed.engine.weights_hash == engine.weights_hash  # with the adapted weights
    assert (tmp_path / "nuclei.oaims.zarr").is_dir() and SessionStore.open(tmp_path / "nuclei.oaims.zarr")


def check_in_3d(ns: dict) -> None:
    volume, cell, m, s = ns["volume"], ns["cell"], ns["m"], ns["s"]
    assert volume.ndim == 3 and m.dtype == bool and m.shape == volume.shape
    assert not m[ns["z2"]].any()  # the corrected slice was kept: the object ends there
    assert m[ns["z"]].any()
    truth = cell.astype(bool)
    assert 2 * (m & truth).sum() / (m.sum() + truth.sum()) > 0.8
    assert ns["z_next"] is None or 0 <= ns["z_next"] < volume.shape[0]
    # a propagation that changes nothing logs nothing
    kinds = [e["kind"] for e in s.events]
    assert kinds.count("propagate") >= 1 and "accept" in kinds[kinds.index("propagate") :]
    seeds = set(np.unique(ns["truth"][ns["z"]])) - {0}
    objects = ns["all_of_z"].objects
    assert len(objects) == len(seeds) and not np.any(np.sum([o.mask for o in objects], axis=0) > 1)  # one owner a voxel


def test_readme_python_blocks_run_as_written(make_napari_viewer, qtbot, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the blocks write nuclei.oaims.zarr into the working directory
    viewer = make_napari_viewer()
    checks = {
        "In napari": lambda ns: check_in_napari(ns, viewer, qtbot),
        "In Python": lambda ns: check_in_python(ns, tmp_path),
        "In 3D and over time": check_in_3d,
    }
    ns: dict = {"__name__": "__readme__"}
    for section, code in python_blocks(README.read_text()):
        exec(compile(code, f"README.md ({section})", "exec"), ns)
        if section in checks:
            checks[section](ns)
    widget = viewer.window.dock_widgets.get("OAIMS annotator")
    if widget is not None:
        widget.close()
