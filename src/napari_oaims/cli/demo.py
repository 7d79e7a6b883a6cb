"""``oaims demo``: the main job on the bundled nuclei sample (napari, or headless with a simulated user)."""

from __future__ import annotations

import argparse

from napari_oaims.core.progress import TqdmProgress


def _cmd_demo(args: argparse.Namespace) -> int:
    from napari_oaims.evaluation import demo

    if not args.headless and demo.has_display():
        demo.open_in_napari(device=args.device)
        return 0
    if not args.headless:
        print("no display found: running the annotation headless with the simulated user")
    with TqdmProgress(unit="object", leave=True) as bars:
        results = demo.run_headless(args.out, args.objects, args.clicks, args.seed, args.device, progress=bars)
    print(demo.summary_table(results))
    files = results["files"]
    print(f"\nsaved {files['results']} (all numbers), {files['plot']} and the session {files['session']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``oaims demo``."""
    p = sub.add_parser("demo", help="the main job: napari on the nuclei sample, or headless with a simulated user")
    p.add_argument("--headless", action="store_true", help="no GUI: annotate with the simulated user")
    p.add_argument("--out", default="results/demo", help="folder for the headless run's results and session")
    p.add_argument("--objects", type=int, default=30, help="nuclei to annotate (headless)")
    p.add_argument("--clicks", type=int, default=5, help="most clicks per nucleus (headless)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_cmd_demo)
