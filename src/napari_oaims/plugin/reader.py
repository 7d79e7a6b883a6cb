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

from napari_oaims.store.layout import SUFFIX, _is_session
from napari_oaims.store.session_store import SessionStore

POSITIVE_COLOUR = "#00ff00"
NEGATIVE_COLOUR = "red"
#: Labels up to this size are loaded into memory (editable); larger ones stay lazy and read-only.
EDITABLE_LABELS_MAX = 2**30


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
    """Layer data tuples: image, labels ``objects``, points (positive/negative clicks), shapes."""
    if isinstance(path, (list, tuple)):
        path = path[0]
    store = SessionStore.open(str(path).rstrip("/\\"), read_only=True)
    name = store.path.name[: -len(SUFFIX)]
    params = store.session_params()
    meta = {"oaims_session": str(store.path)}
    image_kw: dict[str, Any] = {"name": name, "metadata": meta}
    if params["rgb"]:
        image_kw["rgb"] = True
    elif params["channel_axis"] is not None:
        image_kw["channel_axis"] = params["channel_axis"]
    prompts = store.prompts()
    ndim = len(store.meta["spatial_shape"])
    labels = store.labels()
    if labels.nbytes <= EDITABLE_LABELS_MAX:  # a copy the user can paint into (the store is read-only)
        labels = np.asarray(labels[...])
    layers = [
        (store.image(), image_kw, "image"),
        (labels, {"name": f"{name} objects", "metadata": {**meta, "objects": store.objects()}}, "labels"),
        (
            prompts.points,
            {
                "name": f"{name} clicks",
                "ndim": ndim,
                "features": {"positive": prompts.positive},
                "face_color": [POSITIVE_COLOUR if p else NEGATIVE_COLOUR for p in prompts.positive]
                if len(prompts.positive)
                else POSITIVE_COLOUR,
                "metadata": meta,
            },
            "points",
        ),
        (
            [np.asarray(s) for s in prompts.shapes],
            {
                "name": f"{name} boxes and scribbles",
                "ndim": ndim,
                "shape_type": list(prompts.shape_types),
                "edge_color": "yellow",
                "face_color": "transparent",
                "metadata": meta,
            },
            "shapes",
        ),
    ]
    store.close()
    return layers
