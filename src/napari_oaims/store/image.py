"""The image of a session folder: embedded as single-scale OME-Zarr, or a reference to its file
(layout and digests in :mod:`napari_oaims.store.layout`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from napari_oaims.core.files import open_image
from napari_oaims.store.journal import node
from napari_oaims.store.layout import FolderAttrs, check_reference

if TYPE_CHECKING:  # pragma: no cover
    import zarr


def dataset_path(root: "zarr.Group", group: str) -> str:
    """The path of the first dataset of OME-Zarr group ``group`` of ``root`` ("" for the root)."""
    g = node(root, group) if group else root
    try:
        return g.attrs["ome"]["multiscales"][0]["datasets"][0]["path"]
    except (KeyError, IndexError, TypeError) as err:
        where = group or "the root group"
        raise ValueError(f"{where} has no valid OME-Zarr multiscales metadata ({err})") from None


class StoredImage:
    """The session's image, read lazily.

    Parameters
    ----------
    root : zarr.Group
        The session folder's root group (an embedded image is its OME-Zarr dataset).
    folder : Path
        The session folder (named in messages).
    attrs : FolderAttrs
        The session's attributes: ``image`` says how it is stored; a referenced image that moved
        has its new path recorded there.
    read_only : bool
        Record nothing (a moved reference is followed, not recorded).
    """

    def __init__(self, root: "zarr.Group", folder: Path, attrs: FolderAttrs, read_only: bool):
        self._folder = folder
        self._attrs = attrs
        self._read_only = read_only
        self._array = node(root, dataset_path(root, "")) if attrs.meta["image"]["mode"] == "embedded" else None

    def locate(self, image_path: str | Path | None) -> None:
        """Find a referenced image (at ``image_path`` if given: it moved) and check its digest."""
        info = self._attrs.meta["image"]
        if info["mode"] != "reference":
            if image_path is not None:
                raise ValueError(f"session {self._folder} embeds its image; image_path is only for referenced images")
            return
        recorded = Path(info["path"])
        candidate = Path(image_path).absolute() if image_path is not None else recorded
        if not candidate.exists():
            if image_path is None:
                raise FileNotFoundError(
                    f"session {self._folder} references the image file {recorded}, which is missing (moved or "
                    f"deleted); open it with SessionStore.open({str(self._folder)!r}, image_path=NEW_LOCATION)"
                )
            raise FileNotFoundError(f"image file not found: {candidate}")
        check_reference(info, candidate, self._folder)
        if candidate != recorded and not self._read_only:
            self._attrs.update(image={**info, "path": str(candidate)})
        self._array = open_image(candidate)

    def array(self):
        """The image in the axis order it was given when the session was created."""
        info = self._attrs.meta["image"]
        if info["mode"] == "reference":
            return self._array
        order = info["order"]
        if order == sorted(order):
            return self._array
        import dask.array as da

        return da.from_array(self._array, chunks=self._array.chunks).transpose(np.argsort(order).tolist())
