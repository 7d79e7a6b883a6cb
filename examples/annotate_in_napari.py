"""Annotate the bundled nuclei image in napari with the OAIMS annotator.

    python examples/annotate_in_napari.py

Click on a nucleus (the "clicks" layer is active, in add mode) and the preview appears. Add
green (positive) or red (negative, toggle with N) clicks to correct it, then accept with K.
Rectangles and paths drawn in the "boxes & scribbles" layer work as boxes and scribbles. U and
Shift-U undo and redo, Q clears the object and J goes to the next one. The keys work while one of
the plugin's layers is selected. With adaptation on, the model learns from every correcting click
and every accepted object. Save the session from the widget to resume it later.
"""

import napari

from napari_oaims import annotate, sample_nuclei

if __name__ == "__main__":
    image, _ = sample_nuclei()
    viewer = annotate(image, adaptation="oaims")
    napari.run()
