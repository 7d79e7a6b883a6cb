"""Annotate in a Jupyter notebook: :class:`Annotator`, an anywidget around a Session.

Needs the ``notebook`` extra (``pip install "napari-oaims[notebook]"``); neither napari nor Qt.
It works wherever anywidget does (JupyterLab, Notebook 7, VS Code) with nothing to build::

    from napari_oaims.notebook import Annotator
    annotator = Annotator(image, session_path="cells.oaims.zarr")
    annotator                    # the cell's output: click on the image
    annotator.session            # the Session, also for code
"""

from napari_oaims.notebook.widget import Annotator

__all__ = ["Annotator"]
