"""What the annotator works on now: the session, its engine, the image layer and the click polarity.

The annotator (the composition root, :class:`~napari_oaims.plugin.widget.annotator.AnnotatorWidget`)
is the only writer; its parts read it (they get it in their constructor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from napari.layers import Image

    from napari_oaims.engine import Engine
    from napari_oaims.session import Session


@dataclass(eq=False)
class Current:
    """The annotator's current session, engine, image layer and click polarity."""

    session: "Session | None" = None
    engine: "Engine | None" = None
    image_layer: "Image | None" = None
    #: Polarity of the next clicks and scribbles.
    positive: bool = True
