"""The small public API for notebooks and scripts.

``annotate`` opens napari with the annotator docked; it imports napari only when it is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from napari_oaims.plugin.widget import AnnotatorWidget

#: Title of the docked annotator (also its key in ``viewer.window.dock_widgets``).
WIDGET_NAME = "OAIMS annotator"


def annotate(image: Any, viewer: "napari.Viewer | None" = None, **engine_kwargs) -> "napari.Viewer":
    """Open (or reuse) a napari viewer with ``image`` and the OAIMS annotator docked.

    Parameters
    ----------
    image : array, napari Image layer or str
        An array (NumPy, Dask, Zarr: added as a new image layer), an image layer, or the name of
        an image layer already in ``viewer``.
    viewer : napari.Viewer, optional
        Default: the current viewer, or a new one.
    **engine_kwargs
        ``device``, ``adaptation`` and ``weights`` choose the engine, as in
        :meth:`Engine.pretrained <napari_oaims.Engine.pretrained>`; or ``engine=`` an
        :class:`~napari_oaims.Engine` to share one.

    Returns
    -------
    napari.Viewer
        The widget is ``viewer.window.dock_widgets["OAIMS annotator"]`` (or :func:`annotator`).

    Examples
    --------
    >>> from napari_oaims import annotate, sample_nuclei
    >>> viewer = annotate(sample_nuclei()[0])  # doctest: +SKIP
    """
    try:
        import napari
    except ImportError as err:
        raise ImportError(
            f'annotate needs napari, which is not installed ({err}): pip install "napari-oaims[napari]" '
            '(or "napari-oaims[qt]" for napari with PyQt6)'
        ) from err

    from napari_oaims.plugin.widget import AnnotatorWidget

    if isinstance(image, str):
        if viewer is None or image not in viewer.layers:
            raise ValueError(
                f"no layer named {image!r} in the viewer: pass an array, an image layer or the name "
                "of a layer in the viewer"
            )
        layer = viewer.layers[image]
    elif isinstance(image, napari.layers.Layer):
        layer = image
    else:
        if not hasattr(image, "shape"):
            image = np.asarray(image)
        if len(image.shape) < 2:
            raise ValueError(f"annotate needs an image with at least 2 axes, got shape {tuple(image.shape)}")
        layer = None
    if not isinstance(layer, (napari.layers.Image, type(None))):
        raise ValueError(f"layer {layer.name!r} is a {type(layer).__name__} layer, not an image layer")
    if viewer is None:
        viewer = napari.current_viewer() or napari.Viewer()
    if layer is None:
        layer = viewer.add_image(image, name="image")
    elif layer not in viewer.layers:
        viewer.add_layer(layer)
    widget = AnnotatorWidget(viewer, **engine_kwargs)
    viewer.window.add_dock_widget(widget, name=WIDGET_NAME, area="right")
    widget.set_image(layer)
    return viewer


def annotator(viewer: "napari.Viewer") -> "AnnotatorWidget":
    """The annotator docked in ``viewer`` by :func:`annotate` (KeyError if there is none)."""
    return viewer.window.dock_widgets[WIDGET_NAME]
