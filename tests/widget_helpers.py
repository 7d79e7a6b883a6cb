"""Fixtures and helpers shared by the widget tests (a real napari viewer with the real engine, under Xvfb).

A test module imports the fixtures it uses from here (``napari_settings`` is autouse: importing it
keeps napari's settings in memory for that module's tests).
"""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari.utils.notifications import notification_manager  # noqa: E402

from napari_oaims import Engine  # noqa: E402
from napari_oaims.data import sample_nuclei  # noqa: E402
from napari_oaims.plugin.widget import AnnotatorWidget  # noqa: E402
from napari_oaims.simulate.robot import click_in_region  # noqa: E402

#: The fixtures a widget test module imports (``from widget_helpers import *``).
__all__ = ["engine", "fresh_engine", "napari_settings", "notes", "nuclei"]


@pytest.fixture(autouse=True)
def napari_settings(monkeypatch):
    """napari's settings, in memory: the user's settings file is neither read nor written."""
    from napari import settings

    fresh = settings.NapariSettings(config_path=None)
    monkeypatch.setattr(settings, "_SETTINGS", fresh)
    return fresh


@pytest.fixture(scope="module")
def engine():
    return Engine.pretrained(device="cpu")


@pytest.fixture
def fresh_engine(engine):
    engine.reset()
    engine.adaptation = "none"
    yield engine
    engine.reset()
    engine.adaptation = "none"


@pytest.fixture(scope="module")
def nuclei():
    return sample_nuclei()


@pytest.fixture
def notes():
    """Messages of the napari notifications shown during the test: (severity, message)."""
    seen: list[tuple[str, str]] = []

    def keep(n):
        seen.append((str(n.severity), str(n.message)))

    notification_manager.notification_ready.connect(keep)
    yield seen
    notification_manager.notification_ready.disconnect(keep)


def wait(qtbot, widget, timeout=30_000):
    qtbot.waitUntil(lambda: not widget.jobs.busy, timeout=timeout)
    qtbot.wait(5)  # let deferred handlers (layer removals) run


def start(viewer, qtbot, engine, image, **kwargs) -> AnnotatorWidget:
    layer = image if isinstance(image, napari.layers.Layer) else viewer.add_image(image, **kwargs)
    widget = AnnotatorWidget(viewer, engine=engine)
    viewer.window.add_dock_widget(widget, name="OAIMS annotator")
    widget.set_image(layer)
    wait(qtbot, widget)
    return widget


def centre(labels, k):
    """A click at the centre of the k-th labelled object."""
    return click_in_region(labels == np.unique(labels[labels > 0])[k])


def target(labels, k):
    return labels == np.unique(labels[labels > 0])[k]


def has(notes, severity, text):
    return any(s.lower() == severity.lower() and text in m for s, m in notes)


def errors(notes):
    return [m for s, m in notes if s.lower() == "error"]


def press(viewer, qtbot, key: str, layer=None) -> None:
    """Press ``key`` (a napari key name) in the viewer's canvas, with ``layer`` active."""
    from qtpy.QtCore import Qt

    if layer is not None:
        viewer.layers.selection.active = layer
    *mods, name = key.split("-")
    modifier = Qt.KeyboardModifier.ShiftModifier if mods == ["Shift"] else Qt.KeyboardModifier.NoModifier
    qtbot.keyClick(viewer.window._qt_viewer, getattr(Qt.Key, f"Key_{name}"), modifier)


def choose(qtbot, w, name):
    """Pick ``name`` in the image dropdown, as a user does."""
    choice = w.session_panel.image_choice
    index = choice.findText(name)
    assert index >= 0, [choice.itemText(i) for i in range(choice.count())]
    choice.setCurrentIndex(index)
    choice.activated.emit(index)
    wait(qtbot, w)


def click_canvas(viewer, qtbot) -> None:
    """A real left click at the middle of the canvas."""
    from qtpy.QtCore import QPoint, Qt
    from qtpy.QtTest import QTest

    canvas = viewer.window._qt_viewer.canvas.native
    at = QPoint(canvas.width() // 2, canvas.height() // 2)
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    qtbot.wait(20)
