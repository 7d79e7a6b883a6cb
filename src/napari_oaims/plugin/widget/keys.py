"""The annotator's key bindings, bound on the plugin's own layers only.

napari asks the active layer's keymap before the viewer's, so the keys work while one of the
plugin's layers (clicks, boxes & scribbles, preview, objects) is selected, and napari's and other
plugins' bindings of the same keys are left as they are everywhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from napari.layers import Layer
from napari.utils.key_bindings import coerce_keybinding

from napari_oaims.core.ui import KEYS


class LayerKeys:
    """Binds :data:`KEYS` to ``actions`` (name -> callable without arguments) on chosen layers."""

    def __init__(self, actions: Mapping[str, Callable[[], None]]):
        missing = set(KEYS) - set(actions)
        if missing:
            raise ValueError(f"no action for the keys of {sorted(missing)}")
        # napari calls a layer's key handler with the layer
        self._handlers = {coerce_keybinding(KEYS[name]): (lambda layer, f=actions[name]: f()) for name in KEYS}
        self._layers: list[Layer] = []

    @property
    def layers(self) -> list[Layer]:
        """The layers the keys are bound on."""
        return list(self._layers)

    def bind(self, layer: Layer) -> None:
        """Bind the keys on ``layer`` (once; a key the layer itself binds already is an error)."""
        if any(bound is layer for bound in self._layers):
            return
        for key, handler in self._handlers.items():
            layer.bind_key(key, handler)
        self._layers.append(layer)

    def unbind(self, layer: Layer) -> None:
        """Take the keys off ``layer`` (what else it binds stays)."""
        if not any(bound is layer for bound in self._layers):
            return
        self._layers = [bound for bound in self._layers if bound is not layer]
        for key, handler in self._handlers.items():
            if layer.keymap.get(key) is handler:
                layer.bind_key(key, None)

    def unbind_all(self) -> None:
        for layer in self.layers:
            self.unbind(layer)
