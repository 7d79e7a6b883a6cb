"""Sessions on disk: one ``*.oaims.zarr`` folder per annotated image.

Modules: :mod:`~napari_oaims.store.layout` (format, versions, folder layout, image storage and
digests, the folder's attributes), :mod:`~napari_oaims.store.session_store` (:class:`SessionStore`:
create, open, and the parts below held together), :mod:`~napari_oaims.store.journal` (tables,
write-ahead journal, compaction), :mod:`~napari_oaims.store.image` (the stored image),
:mod:`~napari_oaims.store.labels` (painting objects into the label image),
:mod:`~napari_oaims.store.autosave` (following a live session, prior masks, model files),
:mod:`~napari_oaims.store.folder` (one writer at a time, no writes outside the folder),
:mod:`~napari_oaims.store.resume` (continuing a saved session), :mod:`~napari_oaims.store.prompts`
(prompt layers), :mod:`~napari_oaims.store.replay` (re-running a log) and
:mod:`~napari_oaims.store.salvage` (reading the intact parts of a damaged session).
"""

from napari_oaims.store.folder import SessionInUseError
from napari_oaims.store.layout import FORMAT_VERSION, SUFFIX
from napari_oaims.store.prompts import Prompts
from napari_oaims.store.resume import ResumeState
from napari_oaims.store.salvage import Salvaged, salvage
from napari_oaims.store.session_store import SessionStore

__all__ = [
    "FORMAT_VERSION",
    "SUFFIX",
    "Prompts",
    "ResumeState",
    "Salvaged",
    "SessionInUseError",
    "SessionStore",
    "salvage",
]
