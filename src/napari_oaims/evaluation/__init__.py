"""Evaluation: robot-user protocols, metrics, adaptation suites, latency, storage and GUI benchmarks.

Each module holds plain functions; ``oaims bench ...`` (:mod:`napari_oaims.cli.bench`) parses the
command line and calls them.
"""
