"""New points and shapes in the plugin's layers become prompts.

A new point in the clicks layer is a click, a rectangle in the boxes & scribbles layer a box, a
path or line a scribble. Each is checked against the image first: one that cannot be a prompt
(outside the image, on pixels with no signal, an ellipse, no image chosen, made in the 3D view) is
removed again, with a warning.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Points, Shapes
from napari.utils.notifications import show_info, show_warning

from napari_oaims.core import geometry
from napari_oaims.plugin.widget.keys import KEYS
from napari_oaims.plugin.widget.status import VIEW_3D

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.core.results import Result
    from napari_oaims.plugin.widget.layers import PluginLayers
    from napari_oaims.session import Session

BOX_TYPES = ("rectangle",)
SCRIBBLE_TYPES = ("path", "line", "polyline")

#: ``submit(name, call, t0)``: apply ``call(session)`` (a prompt); ``t0`` is when it was given.
Submit = Callable[[str, Callable[["Session"], "Result"], float], None]


class PromptInput:
    """Watches the clicks and shapes layers; hands each new prompt to ``submit``.

    ``session()`` is the session being annotated (None: none), ``positive()`` the polarity of
    the next click or scribble and ``in_3d()`` whether the viewer shows the 3D view.
    """

    def __init__(
        self,
        layers: "PluginLayers",
        session: Callable[[], "Session | None"],
        positive: Callable[[], bool],
        submit: Submit,
        in_3d: Callable[[], bool] = lambda: False,
    ):
        self._layers = layers
        self._session = session
        self._positive = positive
        self._submit = submit
        self._in_3d = in_3d
        self._watched: tuple[Points, Shapes] | None = None
        self._n_points = 0
        self._n_shapes = 0

    def watch(self, points: Points, shapes: Shapes) -> None:
        """Take prompts from these layers (instead of the ones watched before)."""
        self.unwatch()
        points.events.data.connect(self._on_points_data)
        shapes.events.data.connect(self._on_shapes_data)
        self._watched = (points, shapes)
        self._n_points, self._n_shapes = len(points.data), len(shapes.data)

    def unwatch(self) -> None:
        if self._watched is not None:
            points, shapes = self._watched
            points.events.data.disconnect(self._on_points_data)
            shapes.events.data.disconnect(self._on_shapes_data)
            self._watched = None

    def _on_points_data(self, event) -> None:
        points = event.source
        if self._layers.syncing:
            self._n_points = len(points.data)
            return
        action = str(getattr(event, "action", "added"))
        if action not in ("added", "removed"):
            return
        if action == "removed" or len(points.data) < self._n_points:
            self._n_points = len(points.data)
            show_info(
                f"OAIMS: removing a click does not change the mask; use Undo [{KEYS['undo']}] to take a prompt back"
            )
            return
        t0 = time.perf_counter()
        first, self._n_points = self._n_points, len(points.data)
        if self._in_3d():
            show_warning(f"OAIMS: click ignored. {VIEW_3D}")
            self._remove(lambda: points.remove(list(range(first, len(points.data)))))
            return
        bad = []
        for i in range(first, len(points.data)):
            coords, positive = np.asarray(points.data[i], float), self._positive()
            if self._check_point(coords, "click"):
                self._submit("click", lambda s, c=coords, p=positive: s.click(c, p), t0)
            else:
                bad.append(i)
        if bad:
            self._remove(lambda: points.remove(bad))

    def _on_shapes_data(self, event) -> None:
        shapes = event.source
        if self._layers.syncing or len(shapes.data) <= self._n_shapes:
            self._n_shapes = len(shapes.data)
            return
        if str(getattr(event, "action", "added")) != "added":
            return
        t0 = time.perf_counter()
        first, self._n_shapes = self._n_shapes, len(shapes.data)
        bad: list[int] = []
        if self._in_3d():
            show_warning(f"OAIMS: shape ignored. {VIEW_3D}")
            bad, first = list(range(first, len(shapes.data))), len(shapes.data)
        for i in range(first, len(shapes.data)):
            vertices, kind, positive = np.asarray(shapes.data[i], float), shapes.shape_type[i], self._positive()
            call = None
            if kind in BOX_TYPES:
                call = self._box(vertices)
            elif kind in SCRIBBLE_TYPES:
                if all(self._check_point(v, "scribble") for v in vertices):
                    call = lambda s, v=vertices, p=positive: s.scribble(v, p)  # noqa: E731
            else:
                show_warning(f"OAIMS: a {kind} is not a prompt: draw rectangles (boxes) or paths/lines (scribbles)")
            if call is None:
                bad.append(i)
            else:
                self._submit(kind, call, t0)
        if bad:

            def remove():
                shapes.selected_data = set(bad)
                shapes.remove_selected()

            self._remove(remove)

    def _remove(self, remove: Callable[[], None]) -> None:
        """Take rejected prompts off their layer (not a prompt itself)."""
        self._layers.syncing = True
        try:
            remove()
        finally:
            self._layers.syncing = False

    def _check_point(self, coords: np.ndarray, what: str) -> bool:
        session = self._session()
        if session is None:
            show_warning(f"OAIMS: {what} ignored: no image is being annotated (choose an image layer first)")
            return False
        try:
            session.source.check_point(coords)
        except ValueError as err:
            show_warning(f"OAIMS: {what} ignored: {err}")
            return False
        return True

    def _box(self, vertices: np.ndarray) -> Callable[["Session"], "Result"] | None:
        """The box prompt of a rectangle (its vertices in full coordinates), None if it is not one."""
        session = self._session()
        if session is None:
            show_warning("OAIMS: box ignored: no image is being annotated (choose an image layer first)")
            return None
        pa = session.source.plane_axes
        plane, _ = geometry.split_coords(pa, [int(np.floor(c + 0.5)) for c in vertices[0]])
        _, (y0, x0) = geometry.split_coords(pa, vertices.min(0))
        _, (y1, x1) = geometry.split_coords(pa, vertices.max(0))
        box = (y0, x0, y1 + 1, x1 + 1)
        try:
            session.source.check_key(plane)
            h, w = session.source.plane_shape
            if box[2] <= 0 or box[3] <= 0 or box[0] >= h or box[1] >= w:
                raise ValueError(f"the box lies outside the image plane of shape {(h, w)}")
        except ValueError as err:
            show_warning(f"OAIMS: box ignored: {err}")
            return None
        return lambda s: s.box(box, plane=plane)
