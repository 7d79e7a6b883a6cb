"""The OAIMS annotator dock widget (:class:`AnnotatorWidget`) and its parts.

Key bindings (:data:`KEYS`, bound on the plugin's own layers): ``N`` toggle click polarity,
``K`` accept object, ``J`` next object, ``U`` undo, ``Shift-U`` redo, ``Q`` clear the current object.
"""

from napari_oaims.plugin.widget.annotator import AnnotatorWidget
from napari_oaims.plugin.widget.keys import KEYS

__all__ = ["KEYS", "AnnotatorWidget"]
