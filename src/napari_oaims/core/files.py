"""Reading images and label images from TIFF, NumPy and Zarr files."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_array(path: str | Path) -> np.ndarray:
    """Read ``.tif``/``.tiff``, ``.npy`` or ``.zarr`` (an array, or a group whose first array or
    OME-Zarr level ``0`` is used). Raises ``FileNotFoundError``/``ValueError`` with the path."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            return tifffile.imread(path)
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".zarr" or path.is_dir():
            import zarr

            node = zarr.open(str(path), mode="r")
            if isinstance(node, zarr.Array):
                return np.asarray(node)
            if "0" in node:
                return np.asarray(node["0"])
            arrays = [name for name, _ in node.arrays()]
            if not arrays:
                raise ValueError(f"Zarr group {path} holds no array")
            return np.asarray(node[arrays[0]])
    except FileNotFoundError:
        raise
    except Exception as err:  # tifffile/zarr/numpy raise many types for a damaged file
        raise ValueError(f"cannot read {path}: {type(err).__name__}: {err}") from err
    raise ValueError(f"unsupported file type {suffix!r} for {path}: use .tif, .tiff, .npy or .zarr")
