"""napari reader for ``*.oaims.zarr`` sessions: the image, the accepted objects and the prompt layers."""

from __future__ import annotations

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
        (prompts.points, {"name": f"{name} clicks", "ndim": ndim, "features": {"positive": prompts.positive},
                          "face_color": [POSITIVE_COLOUR if p else NEGATIVE_COLOUR for p in prompts.positive]
                          if len(prompts.positive) else POSITIVE_COLOUR, "metadata": meta}, "points"),
        ([np.asarray(s) for s in prompts.shapes], {"name": f"{name} boxes and scribbles", "ndim": ndim,
                                                  "shape_type": list(prompts.shape_types), "edge_color": "yellow",
                                                  "face_color": "transparent", "metadata": meta}, "shapes"),
    ]
    store.close()
    return layers
