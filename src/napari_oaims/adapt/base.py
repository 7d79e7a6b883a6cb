"""The adapter interface: how an engine learns from prompts and accepted objects.

An adapter never sees the session. It is handed what it may use through three small types:

* :class:`PlaneView`, one plane of the image: ``encode(prompts, window)`` gives the network input
  for prompts on a window, ``window(prompts, mask_bbox)`` the window the session would choose;
* :class:`PromptUpdate`, a new prompt (before the shown prediction is made);
* :class:`AcceptedObject`, an accepted object: per plane, its prompts and final mask.

``on_prompt`` answers with an :class:`AdapterReply` (update records and, when the adapter already
predicted the new prompts with the updated weights, those logits, so the session does not predict
twice); ``on_accept`` with a list of update records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from napari_oaims.core.guidance import Window
from napari_oaims.core.progress import CancelLike
from napari_oaims.core.prompts import Prompt

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.engine import Engine


class PlaneView(Protocol):
    """One plane of the image being annotated, as an adapter may use it."""

    key: tuple[int, ...]

    def encode(self, prompts: list[Prompt], window: Window) -> np.ndarray:
        """The (4, S, S) network input for ``prompts`` on ``window``."""

    def window(self, prompts: list[Prompt], mask_bbox: tuple[int, int, int, int] | None = None) -> Window:
        """The window the session would use for ``prompts`` around a mask with ``mask_bbox``."""


@dataclass(frozen=True)
class PromptUpdate:
    """A prompt just given on ``view``: the prompts before it, after it, and the prompt itself."""

    view: PlaneView
    window: Window
    previous: list[Prompt]
    prompts: list[Prompt]
    new: Prompt


@dataclass
class AdapterReply:
    """What an adapter answers to a prompt: update records, and optionally the working-size
    logits (S, S) of ``prompts`` on ``window`` predicted with the weights after the update."""

    records: list[dict[str, Any]] = field(default_factory=list)
    logits: np.ndarray | None = None


@dataclass(frozen=True)
class AcceptedObject:
    """An accepted object: per plane, ``(view, prompts, final mask)`` (the mask is the plane's).

    ``cancel`` (see :mod:`napari_oaims.core.progress`) is checked between the update's steps: a
    cancelled update puts back what it changed and raises
    :class:`~napari_oaims.core.progress.Cancelled`.
    """

    planes: list[tuple[PlaneView, list[Prompt], np.ndarray]]
    cancel: CancelLike = None


class Adapter:
    """No adaptation (the frozen model). Subclasses override the two hooks.

    Each update record is a dict with at least ``method``, ``loss``, ``latency_ms``,
    ``weights_before``, ``weights_after``, ``rolled_back`` and ``reason``; the session logs it
    as an ``update`` event.
    """

    name = "none"

    def on_prompt(self, engine: "Engine", update: PromptUpdate) -> AdapterReply:
        """Called after a prompt is added and before the prediction shown to the user."""
        return AdapterReply()

    def on_accept(self, engine: "Engine", accepted: AcceptedObject) -> list[dict[str, Any]]:
        """Called when the user accepts an object."""
        return []

    def reset(self) -> None:
        """Forget internal state (optimiser moments, buffers); called by ``Engine.reset``."""

    def to(self, device) -> None:
        """Move internal modules and optimiser state to ``device`` (called by ``Engine.to``)."""
        import torch

        from napari_oaims.adapt.guard import GuardedOptimizer

        for value in vars(self).values():
            if isinstance(value, (torch.nn.Module, GuardedOptimizer)):
                value.to(device)

    def settings(self) -> dict[str, Any]:
        """JSON-serialisable settings (saved with adapted weights and in the session log)."""
        return {"name": self.name}
