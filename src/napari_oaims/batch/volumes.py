"""Reading one job's volumes lazily: the image, the seeds, and the seed slices of each object.

Nothing here loads a whole volume. The image stays a memory-mapped or Zarr array; the seeds are
scanned block by block (chunk-aligned) for the slices that hold labels, and only those slices are
read whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from napari_oaims.batch.manifest import file_kind

#: Bytes of one block read while scanning (or copying) a volume.
BLOCK_BYTES = 32 * 2**20


class LeadingView:
    """A lazy view of ``array`` without its leading length-1 axes (an OME-Zarr ``(t, c, z, y, x)``
    image with one time point and one channel reads as ``(z, y, x)``)."""

    def __init__(self, array: Any, drop: int):
        self.array, self.drop = array, drop
        self.shape = tuple(int(s) for s in array.shape[drop:])
        self.dtype = np.dtype(array.dtype)
        self.ndim = len(self.shape)
        chunks = getattr(array, "chunks", None)
        self.chunks = tuple(chunks[drop:]) if chunks is not None and len(chunks) == array.ndim else None

    def __getitem__(self, index):
        index = index if isinstance(index, tuple) else (index,)
        return self.array[(0,) * self.drop + index]

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self[...])
        return out if dtype is None else out.astype(dtype)


def as_volume(array: Any, what: str, path: str) -> Any:
    """``array`` as a 3D (z, y, x) volume.

    Parameters
    ----------
    array
        A NumPy, memory-mapped or Zarr array.
    what, path
        For the message (``"image"`` or ``"seeds"``, and the file).

    Returns
    -------
    array-like
        ``array``, or a :class:`LeadingView` of it without its leading length-1 axes.

    Raises
    ------
    ValueError
        ``array`` is not 3D once those are dropped.
    """
    shape = tuple(int(s) for s in array.shape)
    drop = 0
    while len(shape) - drop > 3 and shape[drop] == 1:
        drop += 1
    if len(shape) - drop != 3:
        raise ValueError(
            f"{what} {path} has shape {shape}: batch propagation takes 3D volumes (z, y, x), "
            "single-channel (leading axes of length 1 are dropped)"
        )
    return LeadingView(array, drop) if drop else array


def open_volume(path: str) -> Any:
    """The image of a job, lazily read, as a 3D volume.

    Parameters
    ----------
    path
        A ``.tif``/``.tiff``, ``.npy`` or ``.zarr`` (plain or OME-Zarr: its first level).

    Returns
    -------
    array-like
        Memory-mapped or Zarr-backed (:func:`napari_oaims.core.files.open_image`), 3D.
    """
    from napari_oaims.core.files import open_image

    return as_volume(open_image(path), "image", path)


def open_seeds(path: str) -> Any:
    """The seed labels of a job, lazily read.

    Parameters
    ----------
    path
        A label volume (as :func:`open_volume`) or a ``.oaims.zarr`` session, opened read-only,
        whose accepted objects are the seeds.

    Returns
    -------
    array-like
        The labels, 3D.
    """
    if file_kind(path) == ".oaims.zarr":
        from napari_oaims.store import SessionStore

        if not Path(path).exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        store = SessionStore.open(path, read_only=True)
        return as_volume(store.labels(), "seeds", path)
    from napari_oaims.core.files import open_image

    return as_volume(open_image(path), "seeds", path)


def blocks(
    shape: tuple[int, ...], chunks: tuple[int, ...] | None, itemsize: int, budget: int = BLOCK_BYTES
) -> Iterator[tuple[slice, ...]]:
    """Regions that cover an array block by block.

    Parameters
    ----------
    shape, chunks
        The array's shape and chunk shape (None: one slice along the first axis per unit).
    itemsize
        Bytes per element.
    budget
        About the most bytes of one region: whole chunks are grouped along the last axes
        first, then along the first.

    Yields
    ------
    tuple of slice
        One region, aligned to the chunks.
    """
    base = list(chunks) if chunks else [1] + list(shape[1:])
    base = [max(1, min(int(c), s)) for c, s in zip(base, shape)]
    step = list(base)
    for ax in range(len(shape) - 1, -1, -1):  # grow the block along the last axes first
        while step[ax] < shape[ax] and itemsize * np.prod(step) * 2 <= budget:
            step[ax] = min(shape[ax], step[ax] + base[ax])
    ranges = [range(0, s, st) for s, st in zip(shape, step)]
    for corner in np.ndindex(*[len(r) for r in ranges]):
        yield tuple(slice(r[i], min(r[i] + st, s)) for r, i, st, s in zip(ranges, corner, step, shape))


def seed_slices(seeds: Any, axis: int) -> dict[int, np.ndarray]:
    """The slices along ``axis`` that hold labels.

    Parameters
    ----------
    seeds
        The seed labels (3D, integer or bool; lazily read).
    axis
        The propagation axis.

    Returns
    -------
    dict
        Position along ``axis`` -> that slice (2D labels). The volume is scanned block by
        block; only the labelled slices are read whole.

    Raises
    ------
    ValueError
        The labels are not integers, or are negative.
    """
    dtype = np.dtype(seeds.dtype)
    if dtype.kind not in "biu":
        raise ValueError(f"seed labels must be integers (or bool), got dtype {dtype}: each label id is one object")
    shape = tuple(int(s) for s in seeds.shape)
    found: set[int] = set()
    chunks = getattr(seeds, "chunks", None)
    chunks = tuple(int(c) for c in chunks) if chunks is not None and np.ndim(chunks[0]) == 0 else None
    others = tuple(a for a in range(len(shape)) if a != axis)
    for region in blocks(shape, chunks, dtype.itemsize):
        block = np.asarray(seeds[region])
        if dtype.kind == "i" and block.size and block.min() < 0:
            raise ValueError(f"seed labels must not be negative (found {int(block.min())})")
        hit = np.flatnonzero(block.any(axis=others))
        found.update(int(region[axis].start + h) for h in hit)
    out = {}
    for pos in sorted(found):
        index = tuple(pos if a == axis else slice(None) for a in range(len(shape)))
        out[pos] = np.asarray(seeds[index])
    return out


def objects_of(slices: dict[int, np.ndarray]) -> dict[int, list[int]]:
    """The objects of the seeds.

    Parameters
    ----------
    slices
        :func:`seed_slices`.

    Returns
    -------
    dict
        Each label id (ascending) -> the positions of the seed slices it is annotated on.
    """
    ids: dict[int, list[int]] = {}
    for pos, plane in slices.items():
        for i in np.unique(plane):
            if i != 0:
                ids.setdefault(int(i), []).append(pos)
    return dict(sorted(ids.items()))
