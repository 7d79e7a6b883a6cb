"""Sessions on disk: the ``*.oaims.zarr`` layout, the journal, autosave, resume and replay."""

from napari_oaims.store.session_store import SessionStore

__all__ = ["SessionStore"]
