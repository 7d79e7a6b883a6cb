"""Benchmarks (``oaims bench ...``): robot-user protocols, adaptation, latency, storage, GUI."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``oaims bench <name>`` for every benchmark module."""
    from napari_oaims.evaluation import adapt
    from napari_oaims.evaluation import clicks
    from napari_oaims.evaluation import gui
    from napari_oaims.evaluation import latency
    from napari_oaims.evaluation import merge
    from napari_oaims.evaluation import store

    bench = sub.add_parser("bench", help="benchmarks: clicks, adapt, merge, latency, store, napari")
    bsub = bench.add_subparsers(dest="bench", required=True)
    for module in (clicks, adapt, merge, latency, store, gui):
        module.register(bsub)
