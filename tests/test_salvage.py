"""A damaged session opens with its intact parts, read-only, one message naming the damaged parts,
and nothing on disk changed (``napari_oaims.store.salvage`` and the napari reader)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from napari_oaims import Engine
from napari_oaims.data import sample_nuclei
from napari_oaims.evaluation.store import object_centres
from napari_oaims.plugin.reader import read_session
from napari_oaims.store.salvage import salvage
from napari_oaims.store.session_store import SessionStore


def tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A real autosaved session: two accepted objects, a click in progress, prompt layers written."""
    image, labels = sample_nuclei()
    image, labels = image[:192, :192], labels[:192, :192]
    centres = [yx for _, yx in object_centres(labels)]
    engine = Engine.pretrained(device="cpu")
    s = engine.session(image)
    path = tmp_path_factory.mktemp("salvage") / "cells.oaims.zarr"
    store = SessionStore.create(path, image, engine=engine, session=s)
    for yx in centres[:2]:
        s.click(yx)
        s.accept()
    s.click(centres[2])
    store.write_prompts([centres[0], centres[1], centres[2]], [True, True, True], [], [])
    store.close()
    return path, image, np.asarray(SessionStore.open(path, read_only=True).labels()[...])


def _chunk(folder: Path) -> Path:
    return next(p for p in sorted((folder / "c").rglob("*")) if p.is_file())


def _truncate(f: Path) -> None:
    f.write_bytes(f.read_bytes()[:7])


DAMAGES = {
    "root metadata": lambda p: (p / "zarr.json").write_bytes(b"\x00\xff not json"),
    "labels chunk": lambda p: _truncate(_chunk(p / "labels" / "objects" / "s0")),
    "image chunk": lambda p: _truncate(_chunk(p / "s0")),
    "log": lambda p: (p / "log" / "seq" / "zarr.json").write_text("{not json"),
    "objects table": lambda p: shutil.rmtree(p / "objects" / "area"),
}
#: damage -> (what the message names, parts that still open)
EXPECTED = {
    "root metadata": ("root metadata", {"image", "labels", "prompts"}),
    "labels chunk": ("labels", {"image", "prompts"}),
    "image chunk": ("image", {"labels", "prompts"}),
    "log": ("log/seq", {"image", "labels", "prompts"}),
    "objects table": ("objects/area", {"image", "labels", "prompts"}),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_intact_parts_open_and_the_damaged_one_is_named(tmp_path, saved, damage):
    original, image, labels = saved
    path = tmp_path / original.name
    shutil.copytree(original, path)
    DAMAGES[damage](path)
    before = tree_digest(path)
    named, intact = EXPECTED[damage]
    found = salvage(path)
    assert set(found.intact) == intact
    message = found.message()
    assert message.startswith(f"session {path} is damaged (") and named in message
    assert message.count("\n") == 0
    if "image" in intact:
        np.testing.assert_array_equal(np.asarray(found.image), image)
    if "labels" in intact:
        np.testing.assert_array_equal(found.labels, labels)
        assert sorted(o["id"] for o in found.objects) == [1, 2]
    assert len(found.prompts.points) == 3
    if "session" in found.damaged:
        with pytest.raises(ValueError, match="is damaged"):
            SessionStore.open(path, read_only=True)  # resuming needs the whole session: still refused
    assert tree_digest(path) == before  # trying changed nothing


def test_an_intact_session_salvages_whole(saved):
    path, image, labels = saved
    found = salvage(path)
    assert found.damaged == {} and found.intact == ["image", "labels", "prompts"]
    np.testing.assert_array_equal(found.labels, labels)
    assert [o["id"] for o in found.objects] == [1, 2]


def test_napari_opens_the_intact_parts_with_one_warning(tmp_path, saved):
    import npe2
    from napari.components import ViewerModel
    from napari.utils.notifications import notification_manager

    npe2.PluginManager.instance().discover()

    original, _, labels = saved
    path = tmp_path / original.name
    shutil.copytree(original, path)
    DAMAGES["image chunk"](path)
    DAMAGES["log"](path)
    before = tree_digest(path)
    seen: list[tuple[str, str]] = []

    def keep(n):
        seen.append((str(n.severity), str(n.message)))

    notification_manager.notification_ready.connect(keep)
    try:
        viewer = ViewerModel()
        viewer.open(str(path), plugin="napari-oaims")
    finally:
        notification_manager.notification_ready.disconnect(keep)
    assert [layer.name for layer in viewer.layers] == ["cells objects", "cells clicks", "cells boxes and scribbles"]
    np.testing.assert_array_equal(viewer.layers["cells objects"].data, labels)
    warnings = [m for sev, m in seen if sev.upper() == "WARNING"]
    assert len(warnings) == 1 and "image" in warnings[0] and "log/seq" in warnings[0]
    assert tree_digest(path) == before


def test_nothing_readable_is_one_clear_error(tmp_path, saved):
    original, _, _ = saved
    path = tmp_path / original.name
    shutil.copytree(original, path)
    for damage in ("root metadata", "labels chunk", "image chunk"):
        DAMAGES[damage](path)
    shutil.rmtree(path / "prompts")
    with pytest.raises(ValueError, match=r"is damaged \(.*image.*labels.*\); opened read-only: nothing"):
        read_session(str(path))


def test_a_missing_folder_is_not_called_damaged(tmp_path):
    with pytest.raises(FileNotFoundError, match="no session folder at"):
        salvage(tmp_path / "missing.oaims.zarr")
    (tmp_path / "file.oaims.zarr").write_text("x")
    with pytest.raises(FileNotFoundError, match="no session folder at"):
        salvage(tmp_path / "file.oaims.zarr")
