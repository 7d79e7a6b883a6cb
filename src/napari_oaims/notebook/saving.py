"""Autosave and resume for the notebook annotator: every event goes to a ``.oaims.zarr`` folder
(:class:`napari_oaims.store.SessionStore`), and a saved folder is continued with its objects,
classes and adapted model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.engine import Engine
    from napari_oaims.session import Session
    from napari_oaims.store import SessionStore


class SavedSession:
    """Mixed into :class:`~napari_oaims.notebook.Annotator`: ``store``, resume, autosave errors."""

    store: "SessionStore | None"
    labels: np.ndarray
    object_classes: dict[int, tuple[int, str]]
    classes: Any

    def _resume(self, path: Path, image, engine: "Engine") -> "Session":
        from napari_oaims.store import SessionStore

        store = SessionStore.open(path)
        try:
            base = store.meta.get("base_hash")
            state = store.resume(engine=engine if base in (None, engine.base_hash) else None, device=engine.device)
            if image is not None and tuple(np.shape(image)) != tuple(np.shape(state.image)):
                raise ValueError(
                    f"the image given has shape {tuple(np.shape(image))} but the session in {path} annotates an "
                    f"image of shape {tuple(np.shape(state.image))}; leave out the image to resume it"
                )
        except BaseException:
            store.close()
            raise
        self.labels = np.array(state.labels[...], dtype=np.int32)
        self.object_classes = {
            int(o["id"]): (int(o["class_id"]), str(o["class_name"])) for o in state.objects if o["area"] > 0
        }
        names = sorted({name for _, name in self.object_classes.values()} | {"object"})
        self.classes = names
        self._attach(state.store)
        self._say(f"resumed {path.name}: {len(self.object_classes)} objects; {state.weights_note}")
        return state.session

    def _attach(self, store: "SessionStore") -> None:
        self.store = store

        def on_error(err: BaseException | None) -> None:
            if err is None:
                self._say(f"autosave to {store.path.name} works again; nothing was lost")
            else:
                self._say(
                    f"autosave to {store.path.name} failed ({err}); the session goes on in memory and saving "
                    "is retried at every event",
                    error=True,
                )

        store.on_error = on_error

    def close_session(self) -> None:
        """Stop autosaving (the folder keeps everything so far) and cancel running work."""
        self.jobs.cancel()
        self.jobs.wait(30)
        if self.store is not None:
            self.store.close()
            self.store = None
        self._update_status()
