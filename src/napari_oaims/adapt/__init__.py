"""Online adaptation strategies behind one interface (GUIDE 3.3).

``none`` (frozen), ``mi``, ``pi``, ``oaims`` (MI + PI) and the baselines ``ia_sa``, ``tsca``,
``ce`` and ``entropy``. Select with ``Engine.pretrained(adaptation=...)`` or switch at run time
with ``engine.adaptation = ...``.
"""

from __future__ import annotations

import inspect
from functools import partial

from napari_oaims.adapt.base import Adapter
from napari_oaims.adapt.baselines import IASA, TSCA, CrossEntropySelf, EntropyMin
from napari_oaims.adapt.oaims import OAIMSAdapter

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


def parse_spec(spec: str) -> tuple[str, dict]:
    """``"oaims:mi_lr=3e-5:replay_size=16"`` -> ``("oaims", {"mi_lr": 3e-05, "replay_size": 16})``."""
    name, *pairs = str(spec).strip().split(":")
    kwargs: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"bad adaptation setting {pair!r} in {spec!r}: use name:key=value")
        for cast in (int, float):
            try:
                kwargs[key.strip()] = cast(value)
                break
            except ValueError:
                continue
        else:
            raise ValueError(f"adaptation setting {key}={value!r} in {spec!r} is not a number")
    return name.lower(), kwargs


def make_adapter(name: "str | Adapter", **kwargs) -> Adapter:
    """An adapter by name (see ``ADAPTERS``) or the given instance; keyword arguments go to it.

    A name may carry numeric settings: ``"oaims:mi_lr=3e-5"`` (benchmarks use this)."""
    if isinstance(name, Adapter):
        return name
    base, settings = parse_spec(name)
    try:
        factory = ADAPTERS[base]
    except KeyError:
        raise ValueError(f"unknown adaptation {base!r}; choose one of {sorted(ADAPTERS)}") from None
    try:
        adapter = factory(**{**settings, **kwargs})
    except TypeError as err:
        raise ValueError(f"adaptation {name!r}: {err}") from None
    if settings:
        adapter.name = str(name)
    return adapter


def adapter_from_settings(settings: dict) -> Adapter:
    """An adapter rebuilt from its :meth:`Adapter.settings` (saved with adapted weights, logged by
    sessions), so that later changes of the defaults do not change it."""
    if not isinstance(settings, dict) or "name" not in settings:
        raise ValueError(f"adapter settings must be a dict with a 'name', got {settings!r}")
    name = str(settings["name"])
    base, _ = parse_spec(name)
    factory = ADAPTERS.get(base)
    if factory is None:
        raise ValueError(f"unknown adaptation {base!r} in adapter settings; choose one of {sorted(ADAPTERS)}")
    cls, fixed = (factory.func, factory.keywords) if isinstance(factory, partial) else (factory, {})
    params = inspect.signature(cls.__init__).parameters
    try:
        adapter = factory(**{k: v for k, v in settings.items() if k in params and k not in fixed and k != "self"})
    except TypeError as err:
        raise ValueError(f"adapter settings for {name!r}: {err}") from None
    adapter.name = name
    return adapter


__all__ = ["ADAPTERS", "Adapter", "adapter_from_settings", "make_adapter"]
