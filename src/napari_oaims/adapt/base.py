"""The adapter interface: how an engine learns from prompts and accepted objects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine
    from ..session import AcceptContext, PromptContext


class Adapter:
    """No adaptation (the frozen model). Subclasses override the two hooks.

    Each hook returns a list of update records (dicts with at least ``method``, ``loss``,
    ``latency_ms``, ``weights_before``, ``weights_after``), which the session logs as
    ``update`` events.
    """

    name = "none"

    def on_prompt(self, engine: "Engine", ctx: "PromptContext") -> list[dict[str, Any]]:
        """Called after a prompt is added and before the prediction shown to the user."""
        return []

    def on_accept(self, engine: "Engine", ctx: "AcceptContext") -> list[dict[str, Any]]:
        """Called when the user accepts an object."""
        return []

    def reset(self) -> None:
        """Forget internal state (optimiser moments, buffers); called by ``Engine.reset``."""

    def to(self, device) -> None:
        """Move internal modules and optimiser state to ``device`` (called by ``Engine.to``)."""
        import torch

        from .guard import GuardedOptimizer

        for value in vars(self).values():
            if isinstance(value, torch.nn.Module):
                value.to(device)
            elif isinstance(value, GuardedOptimizer):
                value.to(device)

    def settings(self) -> dict[str, Any]:
        """JSON-serialisable settings (saved with adapted weights)."""
        return {"name": self.name}
