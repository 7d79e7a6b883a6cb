"""Benchmarks (``oaims bench ...``): robot-user protocols, adaptation, latency, storage, GUI."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``oaims bench <name>`` for every benchmark module."""
    from . import adapt, clicks, gui, latency, merge, store

    bench = sub.add_parser("bench", help="benchmarks: clicks, adapt, merge, latency, store, napari")
    bsub = bench.add_subparsers(dest="bench", required=True)
    for module in (clicks, adapt, merge, latency, store, gui):
        module.register(bsub)
