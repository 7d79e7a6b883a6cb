"""``oaims propagate --manifest jobs.csv --out DIR``: batch propagation on Dask (:mod:`napari_oaims.batch`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _check_files(manifest: Path) -> None:
    """Read the manifest and check that its files exist before any Dask work starts (ValueError or
    FileNotFoundError with one line naming the file)."""
    from napari_oaims.batch.manifest import read_manifest
    from napari_oaims.batch.run import missing_files

    missing = missing_files(read_manifest(manifest))
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise FileNotFoundError(f"manifest {manifest} {missing[0]} does not exist{more}; nothing was run")


def _cmd_propagate(args: argparse.Namespace) -> int:
    from napari_oaims.batch import REPORT, propagate_many

    if args.weights is not None:  # unfitting weights are named before the manifest's files
        from napari_oaims.model import load_weights

        load_weights(args.weights)
    if args.scheduler is None:  # a remote cluster's workers may see other files than this machine
        _check_files(args.manifest)

    settings = {
        "method": args.method,
        "axis": args.axis,
        "weights": args.weights,
        "overwrite": args.overwrite,
        "device": args.device,
        "threads": args.threads,
        "copy_image": not args.no_image,
    }
    report = propagate_many(args.manifest, args.out, client=args.scheduler, workers=args.workers, **settings)
    s = report["summary"]
    print(
        f"{s['done']} done, {s['skipped']} skipped (finished before), {s['failed']} failed of {s['jobs']} jobs "
        f"in {report['time_s']:.1f} s; report: {Path(report['out']) / REPORT}"
    )
    for job in report["jobs"]:
        if job["status"] == "failed":
            print(f"  failed: {job['name']}: {job['error']}", file=sys.stderr)
    return 1 if s["failed"] or s["pending"] else 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``oaims propagate --manifest jobs.csv --out DIR [--workers N | --scheduler ADDRESS] [--method ema]
    [--axis 0] [--weights W.safetensors] [--overwrite]``."""
    p = sub.add_parser(
        "propagate",
        help="carry the seeded objects of many volumes through their stacks (Dask)",
        description="Propagate the objects annotated on a few slices of each volume through the whole volume, "
        "all objects of a volume at once (each a barrier to the others: a voxel belongs to one object), "
        "one Dask task per volume. jobs.csv has the columns image,seeds,name (image: TIFF, NumPy, Zarr or "
        "OME-Zarr; seeds: a label volume of the same shape, 0 where not annotated, or a .oaims.zarr session). "
        "Writes DIR/<name>.ome.zarr (labels at labels/propagated) and DIR/report.json. Jobs already done in "
        "DIR are skipped. Without --scheduler the files are checked first: a missing one stops the run "
        "before it starts. Exit code 0: all jobs done; 1: some failed; 2: bad input (nothing was run).",
    )
    p.add_argument("--manifest", type=Path, required=True, help="CSV with the columns image,seeds,name")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes of a local Dask cluster, one thread each (default: one per core)",
    )
    where.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="address of a running Dask scheduler (e.g. of dask-jobqueue's SLURMCluster)",
    )
    p.add_argument(
        "--method",
        default="frozen",
        choices=["frozen", "ema", "registration", "copy"],
        help="propagation method (default frozen)",
    )
    p.add_argument("--axis", type=int, default=0, choices=[0, 1, 2], help="axis to propagate along (default 0)")
    p.add_argument("--weights", type=Path, default=None, help="weights (.safetensors with its .json); default shipped")
    p.add_argument("--overwrite", action="store_true", help="redo jobs whose output is already complete")
    p.add_argument("--device", default="auto", help="torch device of the workers (default auto)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    p.add_argument("--no-image", action="store_true", help="write only the labels, not a copy of the image")
    p.set_defaults(func=_cmd_propagate)
