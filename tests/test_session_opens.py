"""A session folder opens in a real napari with this plugin's reader, on napari profiles of its
own (a settings file in a temporary folder, ``NAPARI_CONFIG``): what napari does on a profile
where the plugin was never used, after its first use, on the next start, and with the user's
own choice. Each step is a separate napari process, as a user's sessions are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gui

#: One napari process: open the session as told, print what happened as JSON.
SCRIPT = r"""
import json, sys, time
from napari._qt.dialogs import qt_reader_dialog
from qtpy.QtWidgets import QApplication

session, steps = sys.argv[1], sys.argv[2].split(",")
asked = []

def cancel(self):  # napari's "which reader?" dialog: record it and answer as a user who cancels
    asked.append(self._current_file)
    return None, False

qt_reader_dialog.QtReaderDialog.get_user_choices = cancel
import napari
from napari.settings import get_settings

viewer = napari.Viewer(show=False)
writes = []  # each assignment of the reader preferences in this process
get_settings().plugins.events.extension2reader.connect(lambda event: writes.append(dict(event.value)))
out = {"asked": [], "layers": {}, "errors": {}}
for step in steps:
    viewer.layers.clear()
    try:
        if step == "menu":  # File > Open Folder..., drag and drop, `napari PATH`
            viewer.window._qt_viewer._qt_open([session], stack=False)
        elif step == "plugin":
            viewer.open(session, plugin="napari-oaims")
        elif step == "plain":
            viewer.open(session)
        elif step == "dock":  # Plugins > OAIMS annotator
            _, widget = viewer.window.add_plugin_dock_widget("napari-oaims", "OAIMS annotator")
            while widget.jobs.busy:  # the model loads in the background
                QApplication.processEvents()
                time.sleep(0.01)
    except Exception as err:
        out["errors"][step] = f"{type(err).__name__}: {err}"
    out["layers"][step] = [layer.name for layer in viewer.layers]
out["asked"] = asked
out["preferences"] = dict(get_settings().plugins.extension2reader)
out["writes"] = writes
print("RESULT " + json.dumps(out), flush=True)
viewer.close()
"""

LAYERS = ["cells", "cells objects", "cells clicks", "cells boxes and scribbles"]


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    from napari_oaims import Engine
    from napari_oaims.store import SessionStore

    path = tmp_path_factory.mktemp("s") / "cells.oaims.zarr"
    image = np.zeros((64, 64), np.float32)
    image[20:40, 20:40] = 1
    s = Engine.pretrained(device="cpu").session(image)
    with SessionStore.create(path, session=s):
        s.click((30, 30))
        s.accept()
    return path


def napari_run(config: Path, session: Path, *steps: str) -> dict:
    env = {**os.environ, "NAPARI_CONFIG": str(config), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(session), ",".join(steps)], env=env, capture_output=True, text=True
    )
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert run.returncode == 0 and lines, run.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def test_a_session_opens_from_the_menu_after_the_plugins_first_use(tmp_path, session):
    config = tmp_path / "settings.yaml"  # a fresh napari profile
    first = napari_run(config, session, "menu", "dock", "menu")
    # where the plugin never ran, napari offers its own reader too and asks once ...
    assert len(first["asked"]) == 1 and first["layers"]["menu"] == LAYERS
    # ... but its first use (here the annotator) records this reader for every session folder
    assert first["preferences"] == {"*.oaims.zarr/": "napari-oaims"} and len(first["writes"]) == 1
    saved = config.read_bytes()

    again = napari_run(config, session, "menu", "dock", "menu")  # napari started again
    assert again["asked"] == [] and again["layers"]["menu"] == LAYERS
    assert again["writes"] == [] and config.read_bytes() == saved  # the preferences are not written again


@pytest.mark.slow  # three napari processes; the rules alone: tests/test_reader_writer.py (user's choice, *.zarr/)
def test_scripts_name_the_plugin_and_the_users_choice_is_kept(tmp_path, session):
    config = tmp_path / "settings.yaml"
    fresh = napari_run(config, session, "plugin", "plain")
    assert fresh["layers"]["plugin"] == LAYERS  # viewer.open(path, plugin="napari-oaims"), fresh profile
    # viewer.open(path) means napari's own reader (napari's default since 0.4.19): it cannot read a session
    assert fresh["layers"]["plain"] == [] and "plain" in fresh["errors"]

    theirs = tmp_path / "theirs.yaml"
    theirs.write_text("plugins:\n  extension2reader:\n    '*.oaims.zarr/': napari\n    '*.zarr/': napari\n")
    kept = napari_run(theirs, session, "dock")
    assert kept["preferences"] == {"*.oaims.zarr/": "napari", "*.zarr/": "napari"} and kept["writes"] == []

    broad = tmp_path / "broad.yaml"  # a choice for zarr folders in general does not cover sessions
    broad.write_text("plugins:\n  extension2reader:\n    '*.zarr/': napari\n")
    added = napari_run(broad, session, "dock", "menu")
    assert added["preferences"] == {"*.oaims.zarr/": "napari-oaims", "*.zarr/": "napari"}
    assert added["asked"] == [] and added["layers"]["menu"] == LAYERS
