"""One job's output: ``<name>.ome.zarr``, an OME-Zarr image group (NGFF 0.5, Zarr v3).

Layout::

    <name>.ome.zarr/
      zarr.json             attrs "ome": multiscales of the image (one level, axes z, y, x);
                            attrs "napari_oaims_batch": the job's record (status "done", objects, ...)
      0/                    the image, copied block by block from the job's image
      labels/zarr.json      attrs "ome": {"labels": ["propagated"]}
      labels/propagated/    the propagated instance labels (uint32; the seed ids), NGFF image-label
                            metadata with one "properties" entry per object (its seed slices)

The folder is built under a temporary name in the output folder (``.tmp-<8 hex>-<name>.ome.zarr``)
and renamed to ``<name>.ome.zarr`` only once complete, with the record written last: a killed
run leaves no folder that looks done, and :func:`done_record` tells a finished job from nothing.

Labels are written chunk by chunk (one object's region, one output chunk at a time), so memory does
not grow with the volume. Overlaps: objects are painted in ascending id; where two propagated
objects overlap the later one wins, but no object is ever painted over another object's seed
voxels, and on its own seed slices an object is exactly its seed.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from napari_oaims.batch.manifest import OUTPUT_SUFFIX
from napari_oaims.batch.volumes import BLOCK_BYTES, blocks
from napari_oaims.core.labels import paint

#: Root attribute holding the job's record.
RECORD_KEY = "napari_oaims_batch"
#: Name of the label image.
LABELS = "propagated"
#: Output chunk sides (z, y, x), capped by the volume's shape.
CHUNKS = (16, 256, 256)
_AXES = [{"name": a, "type": "space"} for a in "zyx"]


def final_path(out: str | Path, name: str) -> Path:
    """Where job ``name`` puts its output.

    Parameters
    ----------
    out, name
        The output folder and the job's name.

    Returns
    -------
    Path
        ``out/<name>.ome.zarr``.
    """
    return Path(out) / f"{name}{OUTPUT_SUFFIX}"


def done_record(out: str | Path, name: str) -> dict[str, Any] | None:
    """The record of a finished job.

    Parameters
    ----------
    out, name
        The output folder and the job's name.

    Returns
    -------
    dict or None
        The record stored in ``<name>.ome.zarr`` when that output is complete, else None.
    """
    try:
        meta = json.loads((final_path(out, name) / "zarr.json").read_text())
        record = meta["attributes"][RECORD_KEY]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if isinstance(record, dict) and record.get("status") == "done" else None


def clean_leftovers(out: str | Path, name: str) -> int:
    """Remove the temporary folders a killed run left for job ``name``.

    Parameters
    ----------
    out, name
        The output folder and the job's name.

    Returns
    -------
    int
        How many were removed.
    """
    out = Path(out)
    gone = 0
    if out.is_dir():
        for pattern in (f".tmp-????????-{name}{OUTPUT_SUFFIX}", f".old-????????-{name}{OUTPUT_SUFFIX}"):
            for p in out.glob(pattern):
                shutil.rmtree(p, ignore_errors=True)
                gone += 1
    return gone


def _dataset(path: str = "0") -> list[dict[str, Any]]:
    return [{"path": path, "coordinateTransformations": [{"type": "scale", "scale": [1.0, 1.0, 1.0]}]}]


class Output:
    """The output of one job under construction (see the module docstring).

    Parameters
    ----------
    out
        The output folder (made if missing).
    name
        The job's name.
    image
        The job's image (3D, lazily read); copied into the output unless ``copy_image`` is False
        (then only ``labels/propagated`` is a valid NGFF image).
    """

    def __init__(self, out: str | Path, name: str, image: Any, copy_image: bool = True):
        import zarr
        from ome_zarr.writer import write_multiscales_metadata

        self.out, self.name = Path(out), name
        self.out.mkdir(parents=True, exist_ok=True)
        self.tmp = self.out / f".tmp-{uuid.uuid4().hex[:8]}-{name}{OUTPUT_SUFFIX}"
        self.shape = tuple(int(s) for s in image.shape)
        self.chunks = tuple(min(c, s) for c, s in zip(CHUNKS, self.shape))
        self.root = zarr.open_group(str(self.tmp), mode="w", zarr_format=3)
        self.copy_image = bool(copy_image)
        if copy_image:
            arr = self.root.create_array("0", shape=self.shape, chunks=self.chunks, dtype=np.dtype(image.dtype))
            for region in blocks(self.shape, self.chunks, np.dtype(image.dtype).itemsize, BLOCK_BYTES):
                arr[region] = np.asarray(image[region])
            write_multiscales_metadata(self.root, _dataset(), axes=_AXES, name=name)
        group = self.root.create_group("labels").create_group(LABELS)
        self.labels = group.create_array("0", shape=self.shape, chunks=self.chunks, dtype=np.uint32, fill_value=0)
        write_multiscales_metadata(group, _dataset(), axes=_AXES, name=LABELS)

    def paint(
        self,
        object_id: int,
        planes: dict[int, tuple[tuple[int, int, int, int], np.ndarray]],
        axis: int,
        seeds: dict[int, np.ndarray],
    ) -> tuple[int, list[int]]:
        """Write one object chunk by chunk.

        ``planes``: position along ``axis`` -> (plane box ``(r0, c0, r1, c1)``, bool crop), the
        plane axes being the two other axes in increasing order (on the object's own seed slices,
        its seed exactly); ``seeds``: the seed slices (position -> label plane), whose other
        objects' voxels are never painted over. Returns the voxels written and the positions the
        object holds.
        """
        if object_id > np.iinfo(np.uint32).max or object_id < 1:
            raise ValueError(f"label id {object_id} does not fit the uint32 output labels")
        planes = {p: v for p, v in planes.items() if v[1].any()}
        if not planes:
            return 0, []
        pa = [a for a in range(3) if a != axis]
        lo = [min(v[0][0] for v in planes.values()), min(v[0][1] for v in planes.values())]
        hi = [max(v[0][2] for v in planes.values()), max(v[0][3] for v in planes.values())]
        start = [0, 0, 0]
        stop = [0, 0, 0]
        start[axis], stop[axis] = min(planes), max(planes) + 1
        for k in range(2):
            start[pa[k]], stop[pa[k]] = lo[k], hi[k]
        written = 0
        for cell in _cells(start, stop, self.chunks):
            block = np.zeros([s.stop - s.start for s in cell], bool)
            protect = np.zeros_like(block)
            for pos in range(cell[axis].start, cell[axis].stop):
                at = [slice(None)] * 3
                at[axis] = pos - cell[axis].start
                if pos in planes:
                    box, crop = planes[pos]
                    r = slice(max(box[0], cell[pa[0]].start), min(box[2], cell[pa[0]].stop))
                    c = slice(max(box[1], cell[pa[1]].start), min(box[3], cell[pa[1]].stop))
                    if r.stop > r.start and c.stop > c.start:
                        at[pa[0]] = slice(r.start - cell[pa[0]].start, r.stop - cell[pa[0]].start)
                        at[pa[1]] = slice(c.start - cell[pa[1]].start, c.stop - cell[pa[1]].start)
                        block[tuple(at)] = crop[r.start - box[0] : r.stop - box[0], c.start - box[1] : c.stop - box[1]]
                        at[pa[0]] = at[pa[1]] = slice(None)
                if pos in seeds:
                    seed = seeds[pos][cell[pa[0]], cell[pa[1]]]
                    protect[tuple(at)] = (seed != 0) & (seed != object_id)
            mask = block & ~protect
            if mask.any():  # the new object wins over objects propagated before it, never over seeds
                written += paint(self.labels, cell, mask, object_id, overwrite=True)[0]
        return written, sorted(planes)

    def finish(self, record: dict[str, Any], objects: list[dict[str, Any]], overwrite: bool) -> Path:
        """Write the label metadata and the record, then move the folder to ``<name>.ome.zarr``."""
        from ome_zarr.writer import write_label_metadata

        properties = [{"label-value": int(o["id"]), "seed-slices": [int(p) for p in o["seed_slices"]]} for o in objects]
        extra = {"source": {"image": "../../"}} if self.copy_image else {}
        write_label_metadata(self.root["labels"], LABELS, properties=properties or None, **extra)
        self.root.attrs[RECORD_KEY] = {**record, "status": "done"}
        target = final_path(self.out, self.name)
        old = None
        if target.exists():
            if not overwrite and done_record(self.out, self.name) is not None:
                raise FileExistsError(f"{target} was completed by another run meanwhile")
            old = self.out / f".old-{uuid.uuid4().hex[:8]}-{self.name}{OUTPUT_SUFFIX}"
            os.rename(target, old)
        os.rename(self.tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return target

    def discard(self) -> None:
        """Remove the temporary folder (a failed job leaves nothing behind)."""
        shutil.rmtree(self.tmp, ignore_errors=True)


def _cells(start, stop, chunks):
    """The regions of ``[start, stop)`` cut at the chunk boundaries (one output chunk each)."""
    edges = []
    for lo, hi, c in zip(start, stop, chunks):
        cuts = list(range((lo // c + 1) * c, hi, c))
        bounds = [lo, *cuts, hi]
        edges.append([slice(b0, b1) for b0, b1 in zip(bounds[:-1], bounds[1:])])
    for idx in np.ndindex(*[len(e) for e in edges]):
        yield tuple(edges[a][i] for a, i in enumerate(idx))
