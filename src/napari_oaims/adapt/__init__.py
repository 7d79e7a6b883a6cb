"""Online adaptation strategies behind one interface (GUIDE 3.3).

``none`` (frozen), ``mi``, ``pi``, ``oaims`` (MI + PI) and the baselines ``ia_sa``, ``tsca``,
``ce`` and ``entropy``. Select with ``Engine.pretrained(adaptation=...)`` or switch at run time
with ``engine.adaptation = ...``.
"""

from __future__ import annotations

from functools import partial

from .base import Adapter
from .baselines import IASA, TSCA, CrossEntropySelf, EntropyMin
from .oaims import OAIMSAdapter

ADAPTERS = {
    "none": Adapter,
    "mi": partial(OAIMSAdapter, mi=True, pi=False),
    "pi": partial(OAIMSAdapter, mi=False, pi=True),
    "oaims": partial(OAIMSAdapter, mi=True, pi=True),
    "ia_sa": IASA,
    "tsca": TSCA,
    "ce": CrossEntropySelf,
    "entropy": EntropyMin,
}


def make_adapter(name: "str | Adapter", **kwargs) -> Adapter:
    """An adapter by name (see ``ADAPTERS``) or the given instance; keyword arguments go to it."""
    if isinstance(name, Adapter):
        return name
    try:
        factory = ADAPTERS[str(name).lower()]
    except KeyError:
        raise ValueError(f"unknown adaptation {name!r}; choose one of {sorted(ADAPTERS)}") from None
    return factory(**kwargs)


__all__ = ["ADAPTERS", "Adapter", "make_adapter"]
