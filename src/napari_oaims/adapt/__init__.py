"""Online adaptation strategies behind one interface (GUIDE 3.3)."""

from __future__ import annotations

from .base import Adapter

ADAPTERS: dict[str, type[Adapter]] = {"none": Adapter}


def make_adapter(name: str | Adapter, **kwargs) -> Adapter:
    """An adapter by name (``none``, ...) or the given instance."""
    if isinstance(name, Adapter):
        return name
    try:
        cls = ADAPTERS[str(name).lower()]
    except KeyError:
        raise ValueError(f"unknown adaptation {name!r}; choose one of {sorted(ADAPTERS)}") from None
    return cls(**kwargs)


__all__ = ["ADAPTERS", "Adapter", "make_adapter"]
