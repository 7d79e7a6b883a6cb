"""The ``oaims`` command line: one subcommand module per job, each with a ``register(sub)``."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from napari_oaims.cli import bench, demo, propagate, replay, train

    p = argparse.ArgumentParser(
        prog="oaims", description="napari-oaims: interactive segmentation that learns from clicks"
    )
    sub = p.add_subparsers(dest="command", required=True)
    train.register(sub)
    demo.register(sub)
    bench.register(sub)
    replay.register(sub)
    propagate.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``oaims``; bad input (missing or unreadable files, wrong shapes) prints one clear line
    and returns 2 instead of a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, TypeError, PermissionError) as err:
        name = args.command + (f" {args.bench}" if getattr(args, "bench", None) else "")
        print(f"oaims {name}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
