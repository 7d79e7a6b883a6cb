"""napari reader for ``*.oaims.zarr`` sessions: the image, the accepted objects and the prompt layers.

A session is a folder, and napari offers every folder to every reader that accepts folders
(``filename_patterns`` apply to files only; npe2 has no reader priority), so its own reader
competes and ``viewer.open`` / *File > Open* would ask which to use. :func:`prefer_session_reader`
records this reader as the napari preference for ``*.oaims.zarr`` folders (Preferences >
Plugins, where it can be changed); it runs when the plugin is activated (its manifest's
``on_activate``: the first use of its widget, sample data, reader or writer) and when the
annotator opens. A preference the user set for these folders is kept.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from napari_oaims.plugin import colours
from napari_oaims.store.layout import SUFFIX, _is_session
from napari_oaims.store.prompts import Prompts
from napari_oaims.store.salvage import salvage

PLUGIN_NAME = "napari-oaims"
#: napari's preference pattern for session folders (napari matches folders with a trailing separator).
FOLDER_PATTERN = f"*{SUFFIX}{os.sep}"


def prefer_session_reader() -> bool:
    """Make this reader napari's choice for ``*.oaims.zarr`` folders unless the user chose one;
    True if the preference is (now) this reader."""
    from napari.settings import get_settings

    plugins = get_settings().plugins
    current = plugins.extension2reader.get(FOLDER_PATTERN)
    if current is None:
        plugins.extension2reader = {**plugins.extension2reader, FOLDER_PATTERN: PLUGIN_NAME}
        return True
    return current == PLUGIN_NAME


def activate(context: Any = None) -> None:
    """The manifest's ``on_activate`` hook."""
    prefer_session_reader()


def get_reader(path: str | list[str]) -> Callable[[str], list[tuple]] | None:
    """The reader for a ``*.oaims.zarr`` session folder, None for anything else."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(str(path).rstrip("/\\"))
    if not p.name.endswith(SUFFIX) or not p.is_dir() or not _is_session(p):
        return None
    return read_session


def read_session(path: str | list[str]) -> list[tuple[Any, dict, str]]:
    """Layer data tuples: image, labels ``objects``, points (positive/negative clicks), shapes.

    A damaged session opens with the parts that read back (:func:`napari_oaims.store.salvage`)
    and one warning naming the damaged parts; nothing on disk changes."""
    if isinstance(path, (list, tuple)):
        path = path[0]
    found = salvage(str(path).rstrip("/\\"))
    if not found.intact:
        raise ValueError(found.message())
    if found.damaged:
        from napari.utils.notifications import show_warning

        show_warning(found.message())
    name = found.path.name[: -len(SUFFIX)]
    meta = {"oaims_session": str(found.path)}
    layers: list[tuple[Any, dict, str]] = []
    if found.image is not None:
        image_kw: dict[str, Any] = {"name": name, "metadata": meta}
        if found.params.get("rgb"):
            image_kw["rgb"] = True
        elif found.params.get("channel_axis") is not None:
            image_kw["channel_axis"] = found.params["channel_axis"]
        layers.append((found.image, image_kw, "image"))
    if found.labels is not None:
        objects_meta = {**meta, "objects": found.objects}
        layers.append((found.labels, {"name": f"{name} objects", "metadata": objects_meta}, "labels"))
    if found.prompts is not None:
        layers += _prompt_layers(found.prompts, name, meta)
    return layers


def _prompt_layers(prompts: Prompts, name: str, meta: dict) -> list[tuple[Any, dict, str]]:
    """The clicks as a Points layer and the boxes and scribbles as a Shapes layer."""
    ndim = prompts.points.shape[1]
    faces = [colours.POSITIVE if p else colours.NEGATIVE for p in prompts.positive]
    points_kw = {
        "name": f"{name} clicks",
        "ndim": ndim,
        "features": {"positive": prompts.positive},
        "face_color": faces if faces else colours.POSITIVE,
        "metadata": meta,
    }
    shapes_kw = {
        "name": f"{name} boxes and scribbles",
        "ndim": ndim,
        "shape_type": list(prompts.shape_types),
        "edge_color": "yellow",
        "face_color": "transparent",
        "metadata": meta,
    }
    return [(prompts.points, points_kw, "points"), ([np.asarray(v) for v in prompts.shapes], shapes_kw, "shapes")]
