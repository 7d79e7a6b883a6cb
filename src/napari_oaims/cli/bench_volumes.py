"""``oaims bench propagate`` and ``oaims bench batch``: the benchmarks of 3D propagation
(:mod:`napari_oaims.evaluation.propagate`) and of batch propagation on Dask
(:mod:`napari_oaims.evaluation.batch`)."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def _list(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def _ints(text: str) -> list[int]:
    """A comma list of whole numbers (``--workers 1,2``, ``--shape 24,64,64``)."""
    try:
        return [int(v) for v in _list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None


def _shape(text: str) -> tuple[int, int, int]:
    shape = _ints(text)
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected a 3D shape z,y,x of positive sizes, got {text!r}")
    return tuple(shape)


def _settings(text: str | None) -> dict | None:
    """``--settings``: a JSON object of :class:`~napari_oaims.propagate.PropagateSettings` fields."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--settings is not valid JSON ({err}): {text!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f"--settings must be a JSON object such as '{{\"lr\": 0.003}}', got {text!r}")
    from napari_oaims.propagate import resolve

    resolve(value, {})  # unknown names or bad values fail here, before any work
    return value


def _seed(text: str) -> int:
    """``--seed``: a whole number, at least 0."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number, at least 0, got {text!r}")
    return n


def _cmd_propagate(args: argparse.Namespace) -> int:
    from napari_oaims.core.progress import TqdmProgress
    from napari_oaims.evaluation import propagate as bench

    if args.memory is not None:
        from napari_oaims.evaluation.propagate_memory import memory_check

        with tempfile.TemporaryDirectory(prefix="oaims-bench-propagate-") as tmp:
            work = Path(args.out) if args.out is not None else Path(tmp)
            result = memory_check(work, args.memory, args.method, args.device, args.weights)
        print(
            f"{args.method} through a lazily read {result['volume_gib']:.3g} GiB Zarr volume: "
            f"{result['slices']} slices in {result['seconds']} s, peak memory grew by {result['growth_mib']} MiB "
            f"({result['peak_before_mib']} -> {result['peak_after_mib']} MiB; target <= 300 MiB)"
        )
        if args.out is not None:
            from napari_oaims.evaluation.common import write_json

            path = Path(args.out) / f"propagate_memory_{args.method}_{args.memory}.json"
            write_json(result, path)
            print(f"saved {path}")
        return 0
    stack = None
    if args.data == "stack":
        if args.image is None or args.labels is None:
            raise ValueError("--data stack needs --image and --labels (a 3D image and its label volume)")
        stack = (str(args.image), str(args.labels))
    elif args.image is not None or args.labels is not None:
        raise ValueError("--image and --labels are for --data stack")
    if args.seed and stack is not None:
        raise ValueError("--seed draws procedural volumes; --data stack has none to draw")
    if args.all_objects:
        return _all_objects(args, stack)
    with TqdmProgress(unit="case") as bars:
        result = bench.bench_propagate(
            methods=_list(args.methods),
            data=args.data,
            n_per_kind=args.n_per_kind,
            shape=args.shape,
            stack=stack,
            max_objects=args.max_objects,
            target_dice=args.target,
            cap=args.cap,
            device=args.device,
            weights=args.weights,
            settings=_settings(args.settings),
            first_only=args.first_only,
            out=args.out,
            progress=bars,
            seed=args.seed,
        )
    print(result["cases_table"])
    print()
    print(result["table"])
    if args.out is not None:
        for suffix in ("json", "png"):
            print(f"saved {Path(args.out) / f'propagate_{args.data}.{suffix}'}")
    return 0


def _all_objects(args: argparse.Namespace, stack) -> int:
    """``--all-objects``: every object of a slice at once (:mod:`napari_oaims.evaluation.propagate_objects`)."""
    from napari_oaims.core.progress import TqdmProgress
    from napari_oaims.evaluation.propagate import load_cases
    from napari_oaims.evaluation.propagate_objects import bench_objects
    from napari_oaims.propagate import METHODS

    methods = _list(args.methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"--all-objects takes propagation methods, one of {METHODS}; got {unknown}")
    cases = load_cases(args.data, args.n_per_kind, args.shape, stack, args.max_objects, args.seed)
    with TqdmProgress(unit="case") as bars:
        result = bench_objects(cases, methods, args.device, args.weights, _settings(args.settings), progress=bars)
    print(result["table"])
    if args.out is not None:
        from napari_oaims.evaluation.common import write_json

        path = Path(args.out) / f"propagate_{args.data}_objects.json"
        settings = {"methods": methods, "data": args.data, "n_per_kind": args.n_per_kind, "seed": args.seed}
        write_json({"settings": settings, **result}, path)
        print(f"saved {path}")
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    from napari_oaims.evaluation import batch

    result = batch.run(
        volumes=args.volumes,
        shape=args.shape,
        method=args.method,
        workers=args.workers,
        large_gib=args.large_gib,
        seed=args.seed,
        seed_slices=args.seed_slices,
        weights=args.weights,
        device=args.device,
        folder=args.folder,
        repeats=args.repeats,
    )
    print(batch.table(result))
    if args.out is not None:
        from napari_oaims.evaluation.common import write_json

        write_json(result, args.out)
        print(f"saved {args.out}")
    return 0


def _propagate(sub: argparse._SubParsersAction) -> None:
    from napari_oaims.evaluation.propagate import BENCH_METHODS
    from napari_oaims.propagate import METHODS

    p = sub.add_parser(
        "propagate",
        help="3D effort protocol: clicks to 3D Dice 0.9 per propagation method (or --memory)",
        description="The robot annotates each object's largest slice, propagates, then corrects the slice with "
        "the most wrong voxels (or the suggested one, for ema+suggest), re-propagating after each click, until "
        "the object reaches 3D Dice --target (cap --cap clicks). Prints a table per method; --out saves "
        "propagate_<data>.json and a plot. --memory SIDE instead measures the peak-memory growth of one "
        "propagation through a lazily read SIDE^3 float32 Zarr volume.",
    )
    p.add_argument("--methods", default=",".join(BENCH_METHODS), help=f"comma list of {', '.join(BENCH_METHODS)}")
    p.add_argument(
        "--data",
        choices=("procedural", "failures", "stack"),
        default="procedural",
        help="procedural: the five smooth-to-branching kinds; failures: touching objects, an end inside brighter "
        "tissue, low contrast, a mass against a wall, nuclei stacked along z with blurred ends; stack: a labelled "
        "3D image (--image, --labels)",
    )
    p.add_argument("--image", type=Path, default=None, help="3D image (for --data stack)")
    p.add_argument("--labels", type=Path, default=None, help="its label volume (for --data stack)")
    p.add_argument("--n-per-kind", type=int, default=2, help="procedural volumes per kind")
    p.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help="seed of the procedural and failure volumes (0: the suite of the published tables; others: new volumes)",
    )
    p.add_argument(
        "--shape", type=_shape, default=None, help="procedural volume shape z,y,x (default 24,64,64; failures 28,96,96)"
    )
    p.add_argument("--max-objects", type=int, default=8, help="largest objects of the stack to use")
    p.add_argument("--target", type=float, default=0.9, help="3D Dice to reach")
    p.add_argument("--cap", type=int, default=50, help="most clicks per object (anchor clicks included)")
    p.add_argument("--device", default="auto")
    p.add_argument("--weights", default=None, help="weights to evaluate (default: the shipped ones)")
    p.add_argument("--settings", default=None, help="propagation settings as JSON, e.g. '{\"adapt_every\": 1}'")
    p.add_argument("--first-only", action="store_true", help="stop after the first propagation")
    p.add_argument(
        "--all-objects",
        action="store_true",
        help="instead: every object of the target's fullest and last slice carried at once (propagate_objects); "
        "3D Dice per object and voxels taken from other objects",
    )
    p.add_argument("--out", type=Path, default=None, help="folder for the results JSON and the plot")
    p.add_argument(
        "--memory",
        type=int,
        default=None,
        metavar="SIDE",
        help="measure memory instead: propagate through a SIDE^3 float32 Zarr (1024: 4 GiB; at least 128)",
    )
    p.add_argument("--method", default="frozen", choices=list(METHODS), help="method of the --memory check")
    p.set_defaults(func=_cmd_propagate)


def _batch(sub: argparse._SubParsersAction) -> None:
    from napari_oaims.propagate import METHODS

    p = sub.add_parser(
        "batch",
        help="batch propagation on Dask: speed-up with 1 and 2 workers, memory on a large Zarr volume",
        description="Propagates --volumes procedural stacks with each worker count of --workers (a local Dask "
        "cluster, one torch thread per worker) and reports wall time, slices per second, speed-up and Dice; "
        "then the peak memory of one worker on a --large-gib GiB Zarr volume read lazily (0: skip).",
    )
    p.add_argument("--volumes", type=int, default=4)
    p.add_argument("--shape", type=_shape, default=(16, 96, 96), help="procedural volume shape z,y,x")
    p.add_argument("--method", default="frozen", choices=list(METHODS))
    p.add_argument("--workers", type=_ints, default=[1, 2], help="worker counts to compare (comma list)")
    p.add_argument("--large-gib", type=float, default=4.0, help="size of the large volume (0: skip)")
    p.add_argument("--repeats", type=int, default=1, help="interleaved rounds of every worker count (median speed-up)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seed-slices", type=int, default=1, help="annotated slices per object")
    p.add_argument("--weights", default=None, help=".safetensors with its .json (default: the shipped ones)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--folder", type=Path, default=None, help="scratch folder (default: a temporary one, removed)")
    p.add_argument("--out", type=Path, default=None, help="results JSON")
    p.set_defaults(func=_cmd_batch)


def register(bench_sub: argparse._SubParsersAction) -> None:
    """Add ``oaims bench propagate`` and ``oaims bench batch`` to the ``oaims bench`` subcommands."""
    _propagate(bench_sub)
    _batch(bench_sub)
