"""``oaims replay SESSION``: re-run a saved session's log and check every mask."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from napari_oaims.store.replay import replay


def _cmd_replay(args: argparse.Namespace) -> int:
    try:
        report = replay(args.session, device=args.device, image_path=args.image_path, weights=args.weights)
    except (ValueError, FileNotFoundError, PermissionError) as err:
        print(f"oaims replay: {err}", file=sys.stderr)
        return 2
    print(report.table())
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report.to_dict(), indent=2))
        print(f"report saved to {args.out}")
    return 0 if report.identical else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``oaims replay SESSION [--device cpu] [--out report.json]``."""
    p = sub.add_parser(
        "replay",
        help="re-run a saved session from the base weights and check every mask",
        description="Re-run the interaction log of a .oaims.zarr session from the shipped weights and "
        "compare every prediction and accepted object with what was saved. Exit code 0: "
        "identical; 1: differences; 2: the session could not be replayed.",
    )
    p.add_argument("session", type=Path, help="the .oaims.zarr session folder")
    p.add_argument("--device", default="cpu", help="torch device (default cpu: bit-identical replay)")
    p.add_argument("--image-path", type=Path, default=None, help="new location of a referenced image that moved")
    p.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="base weights (.safetensors with its .json) if the session was not made with the shipped ones",
    )
    p.add_argument("--out", type=Path, default=None, help="save the report as JSON here")
    p.set_defaults(func=_cmd_replay)
