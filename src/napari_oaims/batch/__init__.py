"""Scripted batch propagation: many volumes, each with a few annotated slices, on Dask.

:func:`propagate_many` (and the command ``oaims propagate``) reads a manifest of jobs
(``image,seeds,name``), runs one ``dask.distributed`` task per volume (a ``LocalCluster`` by
default, or any scheduler: a notebook's ``Client``, or ``dask_jobqueue.SLURMCluster`` /
``PBSCluster`` on a cluster, see ``research/batch/README.md``), and writes per job an OME-Zarr
image group ``<name>.ome.zarr`` with the propagated instance labels at ``labels/propagated``, and
``report.json``. In each volume every seed id is one object: its seed slices become the anchors
of a :class:`napari_oaims.Session` (``Session.prior``), which carries it through the stack
(``Session.propagate``); the object is then written into the labels chunk by chunk.

Modules: :mod:`.manifest` (jobs, checked up front), :mod:`.volumes` (lazy reads),
:mod:`.output` (the output folder, atomic completion, overlaps), :mod:`.worker` (one task),
:mod:`.run` (the driver), :mod:`.settings`. Never imports napari or Qt.
"""

from __future__ import annotations

from napari_oaims.batch.manifest import COLUMNS, Job, read_manifest
from napari_oaims.batch.output import LABELS, done_record
from napari_oaims.batch.run import REPORT, propagate_many
from napari_oaims.batch.settings import BatchSettings

__all__ = ["BatchSettings", "COLUMNS", "Job", "LABELS", "REPORT", "done_record", "propagate_many", "read_manifest"]
