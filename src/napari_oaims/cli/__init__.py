"""The ``oaims`` command line: the only place that parses arguments."""

from napari_oaims.cli.main import main

__all__ = ["main"]
