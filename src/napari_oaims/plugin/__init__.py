"""The napari face of the package: the annotator widget, reader, writer and sample data.

Only this package imports napari or Qt.
"""
