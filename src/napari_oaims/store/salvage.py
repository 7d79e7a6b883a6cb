"""Open what is intact of a damaged session, read-only.

:meth:`SessionStore.open <napari_oaims.store.SessionStore.open>` refuses a damaged session (with a
message naming the damaged part), because resuming or replaying needs all of it. To *look at* the
work, :func:`salvage` reads each part on its own (image, accepted-object labels, objects table,
prompt layers or the log they come from) and returns those that read back in full, with the
damaged ones named in one message. It opens everything read-only and changes nothing on disk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.storage import LocalStore

from napari_oaims.store.layout import ATTRS_KEY, LABELS_NAME
from napari_oaims.store.prompts import Prompts, read_prompt_layers

#: Parts larger than this are returned lazily and are not read through to check their chunks.
CHECK_MAX_BYTES = 2**30


@dataclass
class Salvaged:
    """The readable parts of a session folder; ``None`` for a part that is damaged or absent."""

    path: Path
    image: Any = None
    labels: np.ndarray | Any = None
    objects: list[dict[str, Any]] = field(default_factory=list)
    prompts: Prompts | None = None
    params: dict[str, Any] = field(default_factory=dict)  #: ``Engine.session`` image handling (rgb, channel_axis)
    damaged: dict[str, str] = field(default_factory=dict)  #: damaged part -> why

    @property
    def intact(self) -> list[str]:
        """Names of the parts that read back."""
        parts = {"image": self.image, "labels": self.labels, "prompts": self.prompts}
        return [name for name, value in parts.items() if value is not None]

    def message(self) -> str:
        """One line naming every damaged part and what could still be opened."""
        if not self.damaged:
            return f"session {self.path} is intact"
        what = "; ".join(f"{part}: {why}" for part, why in self.damaged.items())
        opened = ", ".join(self.intact) or "nothing"
        return f"session {self.path} is damaged ({what}); opened read-only: {opened}"


def salvage(path: str | Path) -> Salvaged:
    """Every part of the session at ``path`` that reads back in full, read-only.

    Parameters
    ----------
    path : str or Path
        A ``*.oaims.zarr`` folder, damaged or not.

    Returns
    -------
    Salvaged
        The image, labels, objects and prompt layers that read back (``None`` for the others),
        and ``damaged``: each damaged part and why. ``message()`` says it in one line.

    Raises
    ------
    FileNotFoundError
        No folder at ``path``.

    Examples
    --------
    >>> found = salvage("cells.oaims.zarr")  # doctest: +SKIP
    >>> found.intact, found.message()  # doctest: +SKIP
    (['image', 'labels', 'prompts'], 'session ... is damaged (log: ...); opened read-only: image, labels, prompts')
    """
    from napari_oaims.store.session_store import SessionStore

    out = Salvaged(Path(path).absolute())
    if not out.path.is_dir():
        raise FileNotFoundError(f"no session folder at {out.path}")
    try:
        store = SessionStore.open(out.path, read_only=True)
    except (ValueError, FileNotFoundError) as err:
        out.damaged["session"] = _reason(err, out.path)
        _parts_on_their_own(out)
    else:
        try:
            out.params = store.session_params()
            out.image = _checked(out, "image", store.image)
            out.labels = _checked(out, "labels", store.labels)
            out.objects = _guarded(out, "objects table", store.objects) or []
            out.prompts = _guarded(out, "prompts", store.prompts)
        finally:
            store.close()
    if out.labels is not None and not out.objects and "objects table" in out.damaged:
        out.objects = _objects_from_labels(out.labels)
    return out


def _parts_on_their_own(out: Salvaged) -> None:
    """Read the image, labels and prompt layers straight from their arrays (the root is damaged)."""
    meta: dict[str, Any] = {}
    try:
        meta = dict(json.loads((out.path / "zarr.json").read_text())["attributes"][ATTRS_KEY])
    except (OSError, ValueError, KeyError, TypeError) as err:
        out.damaged["root metadata"] = f"zarr.json unreadable ({type(err).__name__})"
    out.params = dict(meta.get("session", {}))
    if meta.get("image", {}).get("mode", "embedded") == "embedded":
        out.image = _checked(out, "image", lambda: _array(out.path, ""))
    else:
        out.damaged.setdefault("image", "a referenced image file: open the session once it is repaired")
    out.labels = _checked(out, "labels", lambda: _array(out.path, f"labels/{LABELS_NAME}"))
    ndim = len(meta["spatial_shape"]) if "spatial_shape" in meta else getattr(out.labels, "ndim", None)
    if (out.path / "prompts" / "zarr.json").is_file() and ndim is not None:
        out.prompts = _guarded(out, "prompts", lambda: read_prompt_layers(out.path, ndim))
    if out.labels is not None:
        out.objects = _objects_from_labels(out.labels)


def _array(root: Path, group: str) -> zarr.Array:
    """The first dataset of the NGFF multiscales group ``group`` (``""``: the root), read-only."""
    folder = root / group if group else root
    try:
        attrs = json.loads((folder / "zarr.json").read_text())["attributes"]
        name = attrs["ome"]["multiscales"][0]["datasets"][0]["path"]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        name = "s0"  # the name this package writes
    return zarr.open_array(LocalStore(folder / name, read_only=True), mode="r")


def _checked(out: Salvaged, part: str, get):
    """``get()`` read through in full (so a damaged chunk shows now, not while displaying), or None."""
    arr = _guarded(out, part, get)
    if arr is None or arr.nbytes > CHECK_MAX_BYTES:
        return arr
    try:
        data = np.asarray(arr[...])
    except Exception as err:  # noqa: BLE001 - codecs and zarr raise many types for a damaged chunk
        out.damaged[part] = f"its data cannot be read ({type(err).__name__}: {err})"
        return None
    return data if part == "labels" else arr


def _guarded(out: Salvaged, part: str, get):
    try:
        return get()
    except Exception as err:  # noqa: BLE001 - a damaged part may raise anything zarr or json raise
        out.damaged[part] = _reason(err, out.path)
        return None


def _reason(err: BaseException, path: Path) -> str:
    from napari_oaims.store.session_store import SALVAGE_HINT

    text = str(err).replace(f"session {path} is damaged: ", "").replace(f" ({SALVAGE_HINT})", "")
    return text if isinstance(err, (ValueError, FileNotFoundError)) else f"{type(err).__name__}: {text}"


def _objects_from_labels(labels) -> list[dict[str, Any]]:
    """Object rows recovered from the labels alone (id and area; class unknown)."""
    ids, counts = np.unique(np.asarray(labels), return_counts=True)
    return [
        {"id": int(i), "class_id": 1, "class_name": "object", "area": int(c), "planes": []}
        for i, c in zip(ids, counts)
        if i
    ]
