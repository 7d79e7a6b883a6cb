"""Annotate the shipped nuclei image in napari with the OAIMS annotator.

    python examples/annotate_in_napari.py

Click on a nucleus (the "clicks" layer is active, in add mode): the preview appears; add green
(positive) or red (negative, toggle with N) clicks to correct it, then accept with K. Rectangles
and paths drawn in the "boxes & scribbles" layer work as boxes and scribbles. U / Shift-U undo and
redo, Q clears the object, J goes to the next one. With adaptation on, the model learns from every
click and every accepted object. Save the session from the widget to resume it later.
"""

import napari

from napari_oaims.data import sample_nuclei
from napari_oaims.plugin.api import annotate

if __name__ == "__main__":
    image, _ = sample_nuclei()
    viewer = annotate(image, adaptation="oaims")
    napari.run()
