"""napari-oaims: interactive segmentation that learns from the user's clicks.

The public API::

    from napari_oaims import Engine
    engine = Engine.pretrained(device="auto", adaptation="none")
    s = engine.session(image)
    mask = s.click((y, x), positive=True)
"""

from .engine import Engine
from .session import Session

__version__ = "0.1.0"
__all__ = ["Engine", "Session", "__version__"]
