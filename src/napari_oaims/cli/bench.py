"""``oaims bench ...``: the command line of the benchmarks in :mod:`napari_oaims.evaluation`.

Each command parses its options, calls the benchmark's function, prints its report and says
which files it saved.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from napari_oaims.core.edges import MODES as EDGE_MODES
from napari_oaims.core.progress import TqdmProgress
from napari_oaims.evaluation.adapt import DEFAULT_METHODS, ORDERS, ROBUST_METHODS, SUITES
from napari_oaims.evaluation.clicks import METHODS
from napari_oaims.evaluation.latency import MODES
from napari_oaims.evaluation.shifts import SHIFTS
from napari_oaims.simulate.robot import STRATEGIES, WRONG_LABEL_MODES


def first_window_arg(text: str) -> int | str:
    """``--first-window``: 'auto' or a whole number of pixels (checked by the engine)."""
    if text == "auto":
        return text
    try:
        size = int(text)
    except ValueError:
        size = 0
    if not 8 <= size <= 4096:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number of pixels in [8, 4096], got {text!r}")
    return size


def add_robot_args(p: argparse.ArgumentParser) -> None:
    """Robot-user and engine options shared by the benchmarks (a :class:`Protocol`)."""
    p.add_argument("--clicks", type=int, default=10, help="clicks per target")
    p.add_argument("--robot", default="center", choices=list(STRATEGIES))
    p.add_argument("--noise", default=None, choices=["realistic"], help="realistic click noise (Marinov, eq. 28)")
    p.add_argument(
        "--wrong-label",
        default=None,
        choices=list(WRONG_LABEL_MODES),
        help="wrong-label clicks (Xu et al., table 11: 40%% / first 4 / 40%% of targets)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-targets", type=int, default=None, help="only the first N targets (in order)")
    p.add_argument("--device", default="auto")
    p.add_argument("--weights", default=None, help="weights to evaluate (default: the shipped ones)")
    p.add_argument(
        "--first-window",
        type=first_window_arg,
        default=None,
        help="window side (px) for each object's first click, or 'auto' (default: the weights' own)",
    )
    p.add_argument(
        "--edges",
        default="auto",
        choices=list(EDGE_MODES),
        help="answers follow image edges: once accepted objects show it helps (auto), always grow along them, "
        "snap first answers to them, or never",
    )


def protocol_of(args: argparse.Namespace):
    """The :class:`~napari_oaims.evaluation.common.Protocol` given by :func:`add_robot_args` options."""
    from napari_oaims.evaluation.common import Protocol

    return Protocol(
        clicks=args.clicks,
        robot=args.robot,
        noise=args.noise,
        wrong_label=args.wrong_label,
        seed=args.seed,
        max_targets=args.max_targets,
        device=args.device,
        weights=args.weights,
        first_window=args.first_window,
        edges=args.edges,
    )


def _saved(*paths) -> None:
    for path in paths:
        if path:
            print(f"saved {path}")


def _methods(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def _cmd_clicks(args: argparse.Namespace) -> int:
    from napari_oaims.evaluation import clicks

    with TqdmProgress(unit="target") as bars:
        results = clicks.compare_methods(
            args.image,
            args.labels,
            _methods(args.methods),
            replace(protocol_of(args), fresh=args.fresh),
            out=args.out,
            plot=args.plot,
            progress=bars,
        )
    print(clicks.report(results))
    _saved(args.out, args.plot)
    return 0


def _cmd_adapt(args: argparse.Namespace) -> int:
    from napari_oaims.evaluation import adapt

    if args.jobs < 1:
        raise SystemExit(f"--jobs must be at least 1, got {args.jobs}")
    if args.suite != "flooding" and (args.image is None or args.labels is None):
        raise SystemExit(f"--suite {args.suite} needs --image and --labels")
    with TqdmProgress(unit="target" if args.jobs == 1 else "cell") as bars:
        results = adapt.run_suite(
            args.image,
            args.labels,
            _methods(args.methods),
            shifts=args.shift,
            order=args.order,
            robustness=args.robustness,
            robust_methods=_methods(args.robust_methods),
            protocol=protocol_of(args),
            jobs=args.jobs,
            out=args.out,
            plot=args.plot,
            progress=bars,
            suite=args.suite,
        )
    print(adapt.report(results))
    _saved(args.out, args.plot and f"{args.plot} and {adapt.position_path(args.plot)}")
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from napari_oaims.evaluation import merge

    merged = merge.merge_files(args.results, out=args.out, markdown=args.markdown, plot=args.plot)
    print(merge.report(merged))
    _saved(args.markdown, args.out, args.plot)
    return 0


def _cmd_latency(args: argparse.Namespace) -> int:
    from napari_oaims.evaluation import latency

    with TqdmProgress(unit="run") as bars:
        results = latency.measure_sizes(
            args.image,
            args.labels,
            sizes=args.sizes,
            modes=args.modes,
            objects=args.objects,
            clicks=args.clicks,
            seed=args.seed,
            device=args.device,
            out=args.out,
            progress=bars,
            load=args.load,
        )
    print(latency.report(results))
    _saved(args.out)
    return 0


def _cmd_store(args: argparse.Namespace) -> int:
    from napari_oaims.evaluation import store

    return store.run(args)


def _cmd_gui(args: argparse.Namespace) -> int:
    from napari_oaims.evaluation import gui

    return gui.run(args)


def _clicks(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("clicks", help="Dice vs clicks of the shipped model and classical baselines")
    p.add_argument("--image", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {METHODS}")
    p.add_argument("--out", default=None, help="results JSON")
    p.add_argument("--plot", default=None, help="Dice-vs-clicks PNG")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="each target in a new session, as a session's first object (no accepted objects to size windows by)",
    )
    add_robot_args(p)
    p.set_defaults(func=_cmd_clicks)


def _adapt(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("adapt", help="online adaptation methods on a target sequence, over a shift suite")
    p.add_argument("--image", default=None, help="image to annotate (all suites but flooding)")
    p.add_argument("--labels", default=None, help="its instance labels")
    p.add_argument(
        "--suite",
        default="shifts",
        choices=list(SUITES),
        help="; ".join(f"{k}: {v}" for k, v in SUITES.items()).replace("%", "%%"),
    )
    p.add_argument("--shift", action="append", choices=sorted(SHIFTS), help="repeat; default: the whole suite")
    p.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help="comma-separated adaptations, with settings as name:key=value (e.g. oaims:mi_lr=3e-5)",
    )
    p.add_argument("--order", default="random", choices=list(ORDERS))
    p.add_argument(
        "--robustness", action="store_true", help="also run the robustness settings of Xu et al., section 3.3"
    )
    p.add_argument("--robust-methods", default=",".join(ROBUST_METHODS), help="methods for the robustness runs")
    p.add_argument("--out", default=None)
    p.add_argument("--plot", default=None, help="Dice-vs-clicks PNG (a *_position.png is saved beside it)")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="evaluate the (shift, run, method) cells in this many processes, cores // N torch threads "
        "each; adaptive curves and latencies are only reproducible with the same thread count",
    )
    add_robot_args(p)
    p.set_defaults(func=_cmd_adapt)


def _merge(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="join 'bench adapt' results made separately (same protocol) into one table")
    p.add_argument("results", nargs="+", help="JSON files written by 'oaims bench adapt --out'")
    p.add_argument("--out", default=None, help="merged JSON")
    p.add_argument("--markdown", default=None, help="write the shifts x methods table here")
    p.add_argument("--plot", default=None, help="Dice-vs-clicks PNG (a *_position.png is saved beside it)")
    p.set_defaults(func=_cmd_merge)


def _latency(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("latency", help="frozen / MI click and PI update latency vs image size")
    p.add_argument("--image", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 2048, 4096])
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    p.add_argument("--objects", type=int, default=20)
    p.add_argument("--clicks", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="all", help="cpu, cuda, mps, or all available")
    p.add_argument(
        "--load",
        type=int,
        default=0,
        metavar="N",
        help="measure again while N busy-loop processes keep the CPUs busy (started and stopped here)",
    )
    p.add_argument("--out", default=None)
    p.set_defaults(func=_cmd_latency)


def _store(sub: argparse._SubParsersAction) -> None:
    from napari_oaims.evaluation import store

    p = sub.add_parser(
        "store",
        help="autosave cost, session size and kill -9 safety of .oaims.zarr sessions",
        description=store.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--objects", type=int, default=100, help="objects to annotate for the cost/size part (0: skip)")
    p.add_argument("--adaptation", default="none", help="engine adaptation while annotating")
    p.add_argument("--kill-runs", type=int, default=20, help="kill -9 runs (0: skip)")
    p.add_argument(
        "--kill-mode",
        choices=("annotate", "append", "adapt", "both"),
        default="annotate",
        help="what the killed child does: annotate with the engine, append events in a tight loop, or alternate",
    )
    p.add_argument("--kill-max-s", type=float, default=3.0, help="kill at a uniform random time in [0, this] s")
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder with image.tif and labels.tif (default: the nuclei sample shipped with the package)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default=None, help="where sessions are written (default: a new temporary folder)")
    p.add_argument("--out", default=None, help="save the results as JSON here")
    p.set_defaults(func=_cmd_store)


def _gui(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "napari", help="click-to-preview latency in a real napari viewer against the API (needs a display or Xvfb)"
    )
    p.add_argument("--clicks", type=int, default=50, help="measured clicks (one per nucleus)")
    p.add_argument("--warmup", type=int, default=3, help="clicks before measuring")
    p.add_argument("--adaptation", default="none", help="none, mi, pi or oaims")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--hidden", action="store_true", help="do not show the window (no drawing)")
    p.add_argument(
        "--stack",
        type=int,
        default=0,
        metavar="N",
        help="click on an N x 256 x 256 stack made of shifted crops of the sample (0: the 2D image)",
    )
    p.add_argument(
        "--propagate",
        action="store_true",
        help="measure propagation instead: the main thread's longest stall while the widget propagates "
        "through a procedural stack (--stack slices, default 24), and the widget's speed against the API",
    )
    p.add_argument(
        "--propagate-all",
        action="store_true",
        help="measure Propagate all instead: the widget accepts the objects of one slice of a procedural stack "
        "of touching objects (--stack slices, default 32; --objects), then propagates them all; the main "
        "thread's longest stall and the widget's speed against Session.propagate_objects",
    )
    p.add_argument("--method", default="ema", help="propagation method: ema, frozen, registration or copy")
    p.add_argument(
        "--side", type=int, default=128, help="side (px) of the --propagate / --propagate-all stack's planes"
    )
    p.add_argument("--objects", type=int, default=6, help="objects in the --propagate-all stack (at least 2)")
    p.add_argument(
        "--repeats", type=int, default=3, help="measured propagations of each kind (--propagate, --propagate-all)"
    )
    p.add_argument("--out", default=None, help="results JSON")
    p.set_defaults(func=_cmd_gui)


def _notebook(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "notebook", help="the notebook annotator in headless Chromium: click-to-overlay vs API, open time"
    )
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 4096], help="image sides (px)")
    p.add_argument("--clicks", type=int, default=20, help="measured clicks per size (one per object)")
    p.add_argument("--warmup", type=int, default=3, help="clicks before measuring")
    p.add_argument("--adaptation", default="none", help="none, mi, pi or oaims")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--screenshot", default=None, help="save a screenshot of the first annotator (PNG)")
    p.add_argument("--out", default=None, help="results JSON")
    p.set_defaults(func=lambda args: __import__("napari_oaims.evaluation.notebook", fromlist=["run"]).run(args))


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``oaims bench <name>`` for every benchmark."""
    parser = sub.add_parser(
        "bench", help="benchmarks: clicks, adapt, merge, latency, store, napari, notebook, propagate, batch"
    )
    bsub = parser.add_subparsers(dest="bench", required=True)
    for add in (_clicks, _adapt, _merge, _latency, _store, _gui, _notebook):
        add(bsub)
    from napari_oaims.cli import bench_volumes

    bench_volumes.register(bsub)
