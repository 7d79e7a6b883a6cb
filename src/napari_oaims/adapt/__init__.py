"""Online adaptation behind one narrow interface.

``none`` (frozen), ``mi``, ``pi``, ``oaims`` (MI + PI) and the baselines ``ia_sa``, ``tsca``,
``ce`` and ``entropy``. Choose with ``Engine.pretrained(adaptation=...)`` (a name or an
:class:`Adapter`), switch at run time with ``engine.adaptation = ...``, and set values with
:func:`make_adapter` (a settings dataclass or keyword arguments)::

    engine.adaptation = make_adapter("oaims", OAIMSSettings(mi_lr=3e-5))
    engine.adaptation = make_adapter("oaims", mi_lr=3e-5)  # the same

``adapter.settings()`` is the JSON form stored in session logs and with adapted weights;
:func:`adapter_from_settings` rebuilds the adapter from it. ``"oaims:mi_lr=3e-5"`` is the
command-line form (:func:`parse_spec`).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

from napari_oaims.adapt.base import Adapter
from napari_oaims.adapt.baselines import IASA, TSCA, CrossEntropySelf, EntropyMin
from napari_oaims.adapt.oaims import OAIMSAdapter
from napari_oaims.adapt.settings import (
    RETIRED,
    UNLOGGED,
    BaselineSettings,
    OAIMSSettings,
    TSCASettings,
    drop_retired,
    parse_spec,
)

#: name -> (factory taking ``(settings=None, **overrides)``, its settings dataclass or None)
ADAPTERS: dict[str, tuple[Any, type | None]] = {
    "none": (lambda settings=None: Adapter(), None),
    "mi": (partial(OAIMSAdapter, mi=True, pi=False), OAIMSSettings),
    "pi": (partial(OAIMSAdapter, mi=False, pi=True), OAIMSSettings),
    "oaims": (partial(OAIMSAdapter, mi=True, pi=True), OAIMSSettings),
    "ia_sa": (IASA, BaselineSettings),
    "tsca": (TSCA, TSCASettings),
    "ce": (CrossEntropySelf, BaselineSettings),
    "entropy": (EntropyMin, BaselineSettings),
}
#: Settings fixed by the adapter's name (``mi`` and ``pi`` for the OAIMS family).
_FIXED = {"mi", "pi"}


def make_adapter(name: "str | Adapter", settings: Any = None, **overrides) -> Adapter:
    """An adapter by name (see :data:`ADAPTERS`), or the given instance.

    Parameters
    ----------
    name : str or Adapter
        ``"none"``, ``"mi"``, ``"pi"``, ``"oaims"``, ``"ia_sa"``, ``"tsca"``, ``"ce"`` or
        ``"entropy"``. The name fixes ``mi`` and ``pi`` of :class:`OAIMSSettings`. The
        command-line and benchmark form ``"oaims:mi_lr=3e-5"`` is accepted too (see
        :func:`~napari_oaims.adapt.settings.parse_spec`); the adapter is then named by it.
    settings : dataclass, optional
        The adapter's settings, of its exact class: :class:`OAIMSSettings` for the OAIMS family,
        :class:`TSCASettings` for ``tsca``, :class:`BaselineSettings` for the other baselines.
    **overrides
        Settings by keyword (applied over ``settings``).

    Returns
    -------
    Adapter

    Raises
    ------
    ValueError
        An unknown adaptation, an unknown or retired setting, or a value out of range.
    TypeError
        ``settings`` of another adapter's class.
    """
    if isinstance(name, Adapter):
        if settings is not None or overrides:
            raise ValueError("settings apply to an adapter made by name, not to a given Adapter instance")
        return name
    base, spec_values = parse_spec(name)
    factory, cls = ADAPTERS[base]
    values = {**spec_values, **overrides}
    if cls is None:
        if values or settings is not None:
            raise ValueError(f"adaptation {base!r} takes no settings, got {sorted(values)}")
        return factory()
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)} | set(values) & _FIXED)
    if unknown:
        retired = [k for k in unknown if k in RETIRED]
        why = f" ({', '.join(retired)}: retired in version 0.2.0, format version 2)" if retired else ""
        raise ValueError(
            f"unknown settings {unknown} for adaptation {base!r}{why}; it takes "
            f"{', '.join(f.name for f in dataclasses.fields(cls) if f.name not in _FIXED)}"
        )
    if settings is not None and type(settings) is not cls:
        raise TypeError(f"adaptation {base!r} takes {cls.__name__}, got {type(settings).__name__}")
    adapter = factory(settings, **values)
    if spec_values:
        adapter.name = str(name)
    return adapter


def adapter_from_settings(settings: dict) -> Adapter:
    """An adapter rebuilt from its :meth:`Adapter.settings` (saved with adapted weights and in
    session logs), so that later changes of the defaults do not change it. Retired settings at
    their shipped value are dropped; other values of them raise ``ValueError``."""
    if not isinstance(settings, dict) or "name" not in settings:
        raise ValueError(f"adapter settings must be a dict with a 'name', got {settings!r}")
    name = str(settings["name"])
    base = name.split(":")[0].strip().lower()
    if base not in ADAPTERS:
        raise ValueError(f"unknown adaptation {base!r} in adapter settings; choose one of {sorted(ADAPTERS)}")
    factory, cls = ADAPTERS[base]
    values = {**UNLOGGED, **drop_retired({k: v for k, v in settings.items() if k not in ("name", "optimizer")})}
    if cls is None:
        adapter = factory()
    else:
        known = {f.name for f in dataclasses.fields(cls)} - _FIXED
        try:
            adapter = factory(None, **{k: v for k, v in values.items() if k in known})
        except (TypeError, ValueError) as err:
            raise ValueError(f"adapter settings for {name!r}: {err}") from None
    adapter.name = name
    return adapter


__all__ = [
    "ADAPTERS",
    "Adapter",
    "BaselineSettings",
    "OAIMSSettings",
    "TSCASettings",
    "adapter_from_settings",
    "make_adapter",
    "parse_spec",
]
