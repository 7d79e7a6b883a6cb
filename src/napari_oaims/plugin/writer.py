"""napari writer: save an image, its labels and prompt layers as a ``*.oaims.zarr`` session.

Saving onto an existing session updates its labels and prompt layers in place and keeps its
interaction log and weights; any other existing folder is never replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_oaims.store.layout import SUFFIX, _is_session
from napari_oaims.store.session_store import SessionStore

#: Layer metadata key naming the annotator's own labels layers (``"objects"`` or ``"preview"``).
LAYER_ROLE = "oaims_role"


def _pick_labels(labels: list[tuple[Any, dict]]) -> list[tuple[Any, dict]]:
    """The labels layer to save among those given: the annotator's preview is never saved, and of
    several the annotator's objects layer is the one."""

    def role(meta: dict) -> str | None:
        return (meta.get("metadata") or {}).get(LAYER_ROLE)

    kept = [item for item in labels if role(item[1]) != "preview"]
    objects = [item for item in kept if role(item[1]) == "objects"]
    if len(kept) > 1 and len(objects) == 1:
        return objects
    if len(kept) > 1:
        names = ", ".join(repr(meta.get("name", "?")) for _, meta in kept)
        raise ValueError(
            f"a {SUFFIX} session holds at most one labels layer; {len(kept)} were given ({names}): select the "
            "image and one labels layer and use File > Save Selected Layers"
        )
    return kept


def _positive_flags(meta: dict[str, Any], n: int) -> np.ndarray:
    for key in ("features", "properties"):
        table = meta.get(key)
        if table is not None and "positive" in table and len(table["positive"]) == n:
            return np.asarray(table["positive"], bool)
    return np.ones(n, bool)


def write_session(path: str, layer_data: list[tuple[Any, dict, str]]) -> list[str]:
    """Write one image layer, at most one labels layer (of several, the annotator's objects; never
    its preview), and any points/shapes layers to ``path``."""
    by_type: dict[str, list] = {}
    for data, meta, layer_type in layer_data:
        by_type.setdefault(layer_type, []).append((data, meta or {}))
    images, labels = by_type.get("image", []), _pick_labels(by_type.get("labels", []))
    if len(images) != 1:
        raise ValueError(f"a {SUFFIX} session holds exactly one image layer; {len(images)} were selected")
    unsupported = sorted(set(by_type) - {"image", "labels", "points", "shapes"})
    if unsupported:
        raise ValueError(f"a {SUFFIX} session cannot hold {', '.join(unsupported)} layers")
    target = Path(path)
    if not target.name.endswith(SUFFIX):
        target = target.with_name(target.name.removesuffix(".zarr") + SUFFIX)
    image, image_meta = images[0]
    if image_meta.get("multiscale") or isinstance(image, (list, tuple)):
        image = image[0]
    rgb = bool(image_meta.get("rgb", False))
    spatial = tuple(image.shape[:-1] if rgb else image.shape)
    if labels and tuple(np.shape(labels[0][0])) != spatial:
        raise ValueError(
            f"the labels layer (shape {tuple(np.shape(labels[0][0]))}) does not fit the image layer (shape {spatial})"
        )
    if target.exists() and _is_session(target):
        store = SessionStore.open(target)
        shape = tuple(store.meta["image"]["shape"])
        if tuple(image.shape) != shape:
            raise ValueError(
                f"{target} is a session on an image of shape {shape}; the image layer has shape "
                f"{tuple(image.shape)}: save to a new path"
            )
    else:
        store = SessionStore.create(target, image, rgb=rgb)
    try:
        if labels:
            store.write_labels(np.asarray(labels[0][0]))
        ndim = len(store.meta["spatial_shape"])
        pts = [np.asarray(d, np.float64).reshape(-1, ndim) for d, _ in by_type.get("points", [])]
        pos = [_positive_flags(m, len(p)) for p, (_, m) in zip(pts, by_type.get("points", []))]
        shapes, types = [], []
        for data, meta in by_type.get("shapes", []):
            kinds = meta.get("shape_type", "rectangle")
            kinds = [kinds] * len(data) if isinstance(kinds, str) else list(kinds)
            shapes += [np.asarray(v, np.float64) for v in data]
            types += [str(k) for k in kinds]
        if pts or shapes:
            store.write_prompts(
                np.concatenate(pts) if pts else np.zeros((0, ndim)),
                np.concatenate(pos) if pos else np.zeros(0, bool),
                shapes,
                types,
            )
    finally:
        store.close()
    return [str(target)]
