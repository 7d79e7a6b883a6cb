"""napari reader for ``*.oaims.zarr`` sessions: the image, the accepted objects and the prompt layers.

How napari (0.5 to 0.9, with npe2) picks the reader of a folder:

- ``viewer.open(path)`` reads with napari's own reader (its ``plugin`` argument defaults to
  ``"napari"``), which fails on a session ("No arrays found in zarr group"). A script opens a
  session with ``viewer.open(path, plugin="napari-oaims")``.
- *File > Open Folder...*, drag and drop, ``napari path`` and ``viewer.open(path, plugin=None)``
  look up the reader preference (Preferences > Plugins; patterns are matched against the real
  path with a trailing separator for a folder, the most specific pattern winning). Without one,
  every reader that accepts folders is a candidate (npe2 applies ``filename_patterns`` to files
  only), napari's own among them, and napari asks which to use.

:func:`prefer_session_reader` records this reader for ``*.oaims.zarr/`` when no preference names
session folders yet (ahead of broader patterns such as ``*.zarr/``). It runs when the plugin is
activated (the manifest's ``on_activate``: the first use of its widget, sample data, reader or
writer in a napari process) and when the annotator opens, and writes the settings only when the
preference is missing. On a profile where the plugin never ran, napari asks once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from fnmatch import fnmatch
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


def _session_folder_choice(patterns: dict[str, str]) -> tuple[str, str] | None:
    """The preference (pattern, reader) that names session folders in general, or None. Patterns
    for one folder (no wildcard: napari's reader dialog saves those) and broader ones such as
    ``*.zarr/`` (chosen for other folders) do not count."""
    from napari.plugins.utils import score_specificity

    probe = f"{os.sep}data{os.sep}session{SUFFIX}{os.sep}"
    named = [(p, r) for p, r in patterns.items() if SUFFIX in p and any(c in p for c in "*?[") and fnmatch(probe, p)]
    return min(named, key=lambda kv: score_specificity(kv[0])) if named else None


def prefer_session_reader() -> bool:
    """Make this reader napari's choice for ``*.oaims.zarr`` folders unless a preference already
    names them (the user's own choice is kept); True if they open with this reader.

    The settings are written only when nothing covers session folders, so opening the annotator
    again writes nothing."""
    from napari.settings import get_settings

    plugins = get_settings().plugins
    chosen = _session_folder_choice(plugins.extension2reader)
    if chosen is not None:
        return chosen[1] == PLUGIN_NAME
    # first in the mapping: napari keeps the first of equally specific patterns (e.g. "*.zarr/")
    plugins.extension2reader = {FOLDER_PATTERN: PLUGIN_NAME, **plugins.extension2reader}
    return True


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
