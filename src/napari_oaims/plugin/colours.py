"""Colours of prompts and of the preview in napari layers (the widget's and the reader's)."""

#: A positive prompt (a click on the object, a scribble over it).
POSITIVE = "lime"
#: A negative prompt, and a box's outline.
NEGATIVE = "red"
#: The current object's mask before it is accepted.
PREVIEW = "yellow"
