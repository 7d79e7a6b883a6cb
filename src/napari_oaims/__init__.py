"""napari-oaims: interactive segmentation that learns from the user's clicks.

The public API::

    from napari_oaims import Engine
    engine = Engine.pretrained(device="auto", adaptation="none")
    s = engine.session(image)
    mask = s.click((y, x), positive=True)

Imports are lazy so that napari (which loads this package to read the plugin manifest) and the
torch-free modules (robot, metrics, synth) start fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.12.0"
__all__ = ["Engine", "Session", "annotate", "sample_nuclei", "__version__"]

_LAZY = {
    "Engine": "napari_oaims.engine",
    "Session": "napari_oaims.session",
    "annotate": "napari_oaims.plugin.api",
    "sample_nuclei": "napari_oaims.data",
}

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.data import sample_nuclei
    from napari_oaims.engine import Engine
    from napari_oaims.plugin.api import annotate
    from napari_oaims.session import Session


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'napari_oaims' has no attribute {name!r}")
