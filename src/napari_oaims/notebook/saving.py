"""Autosave and resume for the notebook annotator: every event goes to a ``.oaims.zarr`` folder
(:class:`napari_oaims.store.SessionStore`), and a saved folder is continued with its objects,
classes and adapted model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.engine import Engine
    from napari_oaims.session import Session
    from napari_oaims.store import SessionStore


@dataclass
class Resumed:
    """A saved session continued: the session, its accepted objects and their classes."""

    session: "Session"
    #: Accepted objects (image spatial shape).
    labels: np.ndarray
    #: Each object's (class id, class name).
    object_classes: dict[int, tuple[int, str]]
    #: The class names, ``"object"`` among them.
    classes: list[str]


class Autosave:
    """The folder a session is autosaved to (none until :meth:`create` or :meth:`resume`).

    Parameters
    ----------
    say : callable
        ``say(text, error=False)`` shows a line in the widget (resumed, autosave failing or
        working again).
    """

    def __init__(self, say: Callable[..., None]) -> None:
        self._say = say
        self.store: SessionStore | None = None

    def create(self, path: Path, session: "Session") -> None:
        """Start autosaving ``session`` to a new folder ``path``."""
        from napari_oaims.store import SessionStore

        self._attach(SessionStore.create(path, session=session))

    def resume(self, path: Path, image: Any, engine: "Engine") -> Resumed:
        """Continue the session saved in ``path`` (ValueError when ``image`` is not its image's
        shape); autosaving goes on there."""
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
        object_classes = {
            int(o["id"]): (int(o["class_id"]), str(o["class_name"])) for o in state.objects if o["area"] > 0
        }
        resumed = Resumed(
            session=state.session,
            labels=np.array(state.labels[...], dtype=np.int32),
            object_classes=object_classes,
            classes=sorted({name for _, name in object_classes.values()} | {"object"}),
        )
        self._attach(state.store)
        self._say(f"resumed {path.name}: {len(object_classes)} objects; {state.weights_note}")
        return resumed

    def _attach(self, store: "SessionStore") -> None:
        self.store = store
        say = self._say

        def on_error(err: BaseException | None) -> None:
            if err is None:
                say(f"autosave to {store.path.name} works again; nothing was lost")
            else:
                say(
                    f"autosave to {store.path.name} failed ({err}); the session goes on in memory and saving "
                    "is retried at every event",
                    error=True,
                )

        store.on_error = on_error

    def close(self) -> None:
        """Stop autosaving (the folder keeps everything so far)."""
        if self.store is not None:
            self.store.close()
            self.store = None
