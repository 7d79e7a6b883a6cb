"""Reading images and label images from TIFF, NumPy and Zarr / OME-Zarr files (one reader).

:func:`open_image` reads lazily: TIFF and NumPy files are memory-mapped where their layout allows
it, Zarr arrays stay on disk (an OME-Zarr group gives its first multiscale level, another group
its first array). :func:`read_array` loads the whole array. Both raise ``FileNotFoundError`` or
``ValueError`` naming the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: File types the readers take.
SUFFIXES = (".tif", ".tiff", ".npy", ".zarr")


def open_image(path: str | Path) -> Any:
    """A lazily read array from ``.tif``/``.tiff``, ``.npy`` or a ``.zarr`` folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    name = path.name.lower()
    try:
        if name.endswith((".tif", ".tiff")):
            import tifffile

            try:
                return tifffile.memmap(path, mode="r")
            except ValueError:  # compressed or tiled: read it
                return tifffile.imread(path)
        if name.endswith(".npy"):
            return np.load(path, mmap_mode="r", allow_pickle=False)
        if path.is_dir():
            import zarr
            from zarr.storage import LocalStore

            node = zarr.open(LocalStore(path, read_only=True), mode="r")
            if isinstance(node, zarr.Array):
                return node
            ms = (node.attrs.get("ome", node.attrs).get("multiscales") or [{}])[0]
            datasets = ms.get("datasets") or []
            if datasets:
                return node[datasets[0]["path"]]
            arrays = [key for key, _ in node.arrays()]
            if not arrays:
                raise ValueError(f"Zarr group {path} holds no array and no OME-Zarr multiscale image")
            return node[arrays[0]]
    except (FileNotFoundError, ValueError) as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"cannot read {path}: {err}") from err
    except Exception as err:  # noqa: BLE001 - tifffile/zarr/numpy raise many types for a damaged file
        raise ValueError(f"cannot read {path}: {type(err).__name__}: {err}") from err
    raise ValueError(f"unsupported file type {path.suffix!r} for {path}: use .tif, .tiff, .npy or a .zarr folder")


def read_array(path: str | Path) -> np.ndarray:
    """The whole array in a ``.tif``/``.tiff``, ``.npy`` or ``.zarr``, in memory (the eager form
    of :func:`open_image`: no file stays mapped)."""
    data = open_image(path)
    try:
        out = data[...]
        return np.array(out) if isinstance(out, np.memmap) else np.asarray(out)
    except Exception as err:  # noqa: BLE001 - a damaged chunk, a truncated memory-mapped file
        raise ValueError(f"cannot read {path}: {type(err).__name__}: {err}") from err
