"""The four layers the annotator adds for the image it annotates.

========================= ======== =================================================================
layer (default name)      type     role
========================= ======== =================================================================
``clicks``                Points   each new point is a click (green positive, red negative)
``boxes & scribbles``     Shapes   rectangles are boxes, paths/lines are scribbles
``preview``               Labels   the object being segmented (value 1)
``objects``               Labels   accepted objects, one id each; ``features`` holds their class
========================= ======== =================================================================

They share the image layer's transforms, so they share its data coordinates. The preview follows
the session through the :class:`~napari_oaims.core.results.Result` of each step: only the
regions a step changed are written (napari redraws only those), and the prompt layers are redrawn
from the session's prompts (:meth:`Session.prompts`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels, Layer, Points, Shapes
from napari.utils.colormaps import DirectLabelColormap

from napari_oaims.core import geometry
from napari_oaims.plugin import colours
from napari_oaims.plugin.widget.keys import LayerKeys
from napari_oaims.plugin.writer import LAYER_ROLE

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from napari_oaims.core.results import Result
    from napari_oaims.session import Session

#: Layer kinds and their default names.
LAYER_NAMES = {"points": "clicks", "shapes": "boxes & scribbles", "preview": "preview", "objects": "objects"}
POSITIVE_COLOR, NEGATIVE_COLOR, PREVIEW_COLOR = colours.POSITIVE, colours.NEGATIVE, colours.PREVIEW
#: Points drawn along a scribble in the shapes layer (at most).
SCRIBBLE_VERTICES = 64


def transforms(layer: Image) -> dict[str, Any]:
    """The transforms of ``layer``, for layers that share its data coordinates."""
    return {k: getattr(layer, k) for k in ("scale", "translate", "rotate", "shear", "affine")}


class PluginLayers(Mapping):
    """The plugin's layers by kind (``points``, ``shapes``, ``preview``, ``objects``; None when
    missing). ``on_renamed(kind, layer)`` is called when the user renames one."""

    def __init__(
        self, viewer: "napari.viewer.Viewer", keys: LayerKeys, on_renamed: Callable[[str, Layer], None] | None = None
    ):
        self.viewer = viewer
        self.keys = keys
        self._on_renamed = on_renamed or (lambda kind, layer: None)
        self._layers: dict[str, Layer | None] = dict.fromkeys(LAYER_NAMES)
        self._image: Image | None = None
        #: True while the prompt layers are rewritten from the session (their events are not prompts).
        self.syncing = False
        #: Planes the current object has touched (their prompts are shown).
        self.planes: set[tuple[int, ...]] = set()

    # -- Mapping -------------------------------------------------------------------------------
    def __getitem__(self, kind: str) -> Layer | None:
        return self._layers[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def kind_of(self, layer: Layer) -> str | None:
        """Which of the plugin's layers ``layer`` is (None: not one of them)."""
        return next((kind for kind, own in self._layers.items() if own is layer), None)

    # -- life cycle ----------------------------------------------------------------------------
    def create(self, image: Image, shape: tuple[int, ...], positive: bool) -> None:
        """(Re)create the layers for ``image`` (spatial ``shape``). Working layers of a previous image
        are removed; its objects layer is kept if it fits, else left in the viewer, detached."""
        self._image = image
        for kind in ("points", "shapes", "preview"):
            old = self._layers[kind]
            self._drop(kind)
            if old is not None and old in self.viewer.layers:
                self.viewer.layers.remove(old)
        objects = self._layers["objects"]
        if objects is None or objects.data.shape != shape or objects not in self.viewer.layers:
            self._drop("objects")
            self._add("objects", self._new_objects(shape))
        ndim, kw = len(shape), transforms(image)
        preview = Labels(
            np.zeros(shape, np.uint8), name=LAYER_NAMES["preview"], opacity=0.6, metadata={LAYER_ROLE: "preview"}, **kw
        )
        preview.colormap = DirectLabelColormap(color_dict={None: "transparent", 0: "transparent", 1: PREVIEW_COLOR})
        shapes = Shapes(
            ndim=ndim,
            name=LAYER_NAMES["shapes"],
            edge_color=POSITIVE_COLOR,
            face_color="transparent",
            edge_width=1.5,
            **kw,
        )
        points = Points(
            ndim=ndim,
            name=LAYER_NAMES["points"],
            size=max(4.0, min(shape[-2:]) / 80),
            face_color=POSITIVE_COLOR,
            border_color="white",
            features={"positive": np.zeros(0, bool)},
            **kw,
        )
        for kind, layer in (("preview", preview), ("shapes", shapes), ("points", points)):
            self._add(kind, layer)
        self.planes.clear()
        self.set_polarity(positive)
        self.select_points()

    def objects(self) -> Labels:
        """The objects layer; a removed one is replaced by a new, empty one."""
        layer = self._layers["objects"]
        if layer is None:
            if self._image is None or self._layers["preview"] is None:
                raise ValueError("the objects layer is missing: choose the image again")
            layer = self._new_objects(self._layers["preview"].data.shape)
            self._add("objects", layer)
        return layer

    def detach_objects(self) -> None:
        """Stop using the objects layer (it stays in the viewer as it is)."""
        self._drop("objects")

    def close(self) -> None:
        """Stop watching the layers and unbind their keys (the layers stay, in the viewer and here)."""
        for layer in self._layers.values():
            if layer is not None:
                layer.events.name.disconnect(self._renamed)
                self.keys.unbind(layer)
        self._image = None

    def select_points(self) -> None:
        """Make the clicks layer active, in add mode (ready for the next click)."""
        points = self._layers["points"]
        if points is not None and points in self.viewer.layers:
            self.viewer.layers.selection.active = points
            points.mode = "add"

    def _new_objects(self, shape: tuple[int, ...]) -> Labels:
        return Labels(
            np.zeros(shape, np.int32),
            name=LAYER_NAMES["objects"],
            metadata={LAYER_ROLE: "objects"},
            **transforms(self._image),
        )

    def _add(self, kind: str, layer: Layer) -> None:
        self._layers[kind] = layer
        self.keys.bind(layer)
        if layer not in self.viewer.layers:
            self.viewer.add_layer(layer)  # napari gives it a unique name ("objects [1]"): not the user's renaming
        layer.events.name.connect(self._renamed)

    def _drop(self, kind: str) -> None:
        layer, self._layers[kind] = self._layers[kind], None
        if layer is not None:
            layer.events.name.disconnect(self._renamed)
            self.keys.unbind(layer)

    def _renamed(self, event) -> None:
        kind = self.kind_of(event.source)
        if kind is not None:
            self._on_renamed(kind, event.source)

    # -- preview -------------------------------------------------------------------------------
    def show(self, result: "Result") -> None:
        """Copy the regions ``result`` changed into the preview."""
        for change in result.changes:
            self.planes.add(change.plane)
            if change.region is None:
                continue
            values = change.values
            if values is None:  # the undo of a plane's first prompt: the region is empty again
                ys, xs = change.region
                values = np.zeros((ys.stop - ys.start, xs.stop - xs.start), bool)
            self.write(result.plane_axes, change.plane, change.region, values)

    def clear_object(self, result: "Result | None" = None) -> None:
        """The object is done (accepted): clear its planes from the preview (all of it without ``result``)."""
        preview = self._layers["preview"]
        if preview is not None and result is None:
            preview.data[...] = 0
            preview.refresh(extent=False)
        elif preview is not None:
            for key, (box, _) in result.planes.items():
                self.write(
                    result.plane_axes, key, geometry.box_slices(box), np.zeros((box[2] - box[0], box[3] - box[1]), bool)
                )
        self.planes.clear()

    def write(self, plane_axes, plane, region, values: np.ndarray, quiet: bool = False) -> None:
        """Write the plane region's ``values`` into the preview; only the pixels that change are
        written and redrawn (napari's partial refresh), not the whole slice. ``quiet``: into the
        data only, with no event and no redraw (for a plane that is not on screen: napari reads it
        from the data when it is shown)."""
        preview = self._layers["preview"]
        if preview is None:
            raise ValueError("the preview layer is missing: choose the image again")
        ndim = preview.data.ndim
        index = geometry.plane_index(plane_axes, ndim, plane, region)
        values = np.asarray(values).T if geometry.transposed(plane_axes, ndim) else np.asarray(values)
        values = values.astype(preview.data.dtype)
        if quiet and isinstance(preview.data, np.ndarray):
            preview.data[index] = values
            return
        changed = np.nonzero(np.asarray(preview.data[index]) != values)
        if changed[0].size == 0:
            return
        it = iter(changed)
        full = tuple(next(it) + (i.start or 0) if isinstance(i, slice) else np.full(changed[0].size, i) for i in index)
        preview.data_setitem(full, values[changed])

    def shown_plane(self, plane_axes, n_spatial: int) -> tuple[int, ...] | None:
        """The key of the plane the preview shows now (None: the 3D view, or no preview)."""
        preview = self._layers["preview"]
        if preview is None or self.viewer.dims.ndisplay != 2:
            return None
        point = preview.world_to_data(self.viewer.dims.point[-preview.ndim :])
        pa = geometry.plane_axes_of(plane_axes, n_spatial)
        return tuple(int(round(point[a])) for a in range(n_spatial) if a not in pa)

    # -- prompt layers -------------------------------------------------------------------------
    def set_polarity(self, positive: bool) -> None:
        """Colour of the next clicks and scribbles (boxes are always positive)."""
        colour = POSITIVE_COLOR if positive else NEGATIVE_COLOR
        points, shapes = self._layers["points"], self._layers["shapes"]
        if points is not None:
            if points.selected_data:
                points.selected_data = set()  # the current colour would otherwise repaint the selection
            points.current_face_color = colour
            points.feature_defaults["positive"] = bool(positive)
        if shapes is not None:
            if shapes.selected_data:
                shapes.selected_data = set()
            shapes.current_edge_color = colour

    def sync_prompts(self, session: "Session | None", positive: bool) -> None:
        """Redraw the clicks and boxes/scribbles layers from the current object's prompts (a layer
        that shows them already is left alone: each redraw of a layer costs napari a re-slice)."""
        coords, polarity, shape_data, shape_types, shape_polarity = [], [], [], [], []
        for key in sorted(self.planes) if session is not None else ():
            for p in session.prompts(key):
                if p.kind == "click":
                    coords.append(session.full_coords(key, p.points[0]))
                    polarity.append(p.positive)
                    continue
                if p.kind == "box":
                    y0, x0, y1, x1 = p.box
                    path, kind = [(y0, x0), (y0, x1 - 1), (y1 - 1, x1 - 1), (y1 - 1, x0)], "rectangle"
                elif p.kind == "scribble":
                    path, kind = p.points[:: max(1, len(p.points) // SCRIBBLE_VERTICES)], "path"
                    path = path if len(path) >= 2 else p.points[[0, -1]]
                else:
                    continue
                shape_data.append(np.array([session.full_coords(key, c) for c in path], float))
                shape_types.append(kind)
                shape_polarity.append(p.positive)
        points, shapes = self._layers["points"], self._layers["shapes"]
        self.syncing = True
        try:
            data = np.array(coords, float).reshape(-1, points.ndim) if points is not None else None
            if points is not None and not (
                np.array_equal(data, points.data) and list(points.features["positive"]) == polarity
            ):
                points.data = data
                points.features = {"positive": np.array(polarity, bool)}
                if coords:
                    points.face_color = [POSITIVE_COLOR if p else NEGATIVE_COLOR for p in polarity]
            if shapes is not None and (shape_data or len(shapes.data)):
                shapes.data = []
                if shape_data:
                    shapes.add(
                        shape_data,
                        shape_type=shape_types,
                        edge_color=[POSITIVE_COLOR if p else NEGATIVE_COLOR for p in shape_polarity],
                    )
        finally:
            self.syncing = False
        self.set_polarity(positive)
