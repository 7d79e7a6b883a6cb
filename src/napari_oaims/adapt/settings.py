"""Typed adapter settings, and the ``name:key=value`` command-line form of them.

Each adapter takes one frozen dataclass of settings. :func:`parse_spec` turns the command-line
sugar ``"oaims:mi_lr=3e-5:replay_size=0"`` into a name and typed values (each converted with its
field's type); the library API is a name plus a settings object or keyword arguments.

Settings that earlier versions offered as experiments and that measurements rejected are
*retired* (:data:`RETIRED`). A saved log or weights file that names one at the value the shipped
behaviour used still loads (the key is dropped); any other value is refused with a message, since
that run cannot be reproduced by this version.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any

from napari_oaims.model.losses import BETA

#: Default Adam learning rate for online adaptation (all parameters, one step per update).
LR = 1e-4

#: Settings retired in format version 2 (package 0.2.0), with the value the shipped behaviour used.
RETIRED: dict[str, Any] = {
    "anchor": 0.0,
    "mi_own_optimizer": True,
    "pi_stage1": True,
    "pi_stage2": True,
    "pi_refresh": False,
    "pi_click_window": False,
    "pi_stage1_steps": 1,
    "early_objects": 0,
    "early_steps": 1,
    "first_lr_scale": 1.0,
    "norm_lr_scale": 1.0,
    "pi_views": 1,
    "pi_sample_k": False,
}


#: Settings added after format version 6 (``mi_check``: format 7, package 0.8.0;
#: ``mi_check_first`` and ``mi_check_se``: format 9, package 0.10.0), with the value that
#: reproduces the logs that do not name them (their rule left out).
UNLOGGED: dict[str, Any] = {"mi_check": False, "mi_check_first": False, "mi_check_se": 0.0}


#: How many standard errors above zero ``mi_check`` asks of MI alone (``mi_check_se=None``).
MI_ALONE_SE = 2.0


def _check(name: str, ok: bool, need: str, value: Any) -> None:
    if not ok:
        raise ValueError(f"adaptation setting {name} must be {need}, got {value!r}")


def _finite_positive(name: str, value: float, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    _check(
        name,
        ok and (value >= 0 if allow_zero else value > 0),
        "a finite number " + (">= 0" if allow_zero else "> 0"),
        value,
    )


def _whole(name: str, value: Any, low: int) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    _check(name, ok, f"a whole number >= {low}", value)


@dataclass(frozen=True)
class BaselineSettings:
    """Settings of the click-loss baselines (``ia_sa``, ``ce``, ``entropy``)."""

    lr: float = LR

    def __post_init__(self) -> None:
        _finite_positive("lr", self.lr, allow_zero=True)


@dataclass(frozen=True)
class TSCASettings(BaselineSettings):
    """TSCA: a student trained on click losses, the engine's weights following it by EMA."""

    ema: float = 0.9
    consistency: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check("ema", isinstance(self.ema, (int, float)) and 0.0 <= self.ema < 1.0, "in [0, 1)", self.ema)
        _finite_positive("consistency", self.consistency, allow_zero=True)


@dataclass(frozen=True)
class OAIMSSettings:
    """Mid-Interaction (MI) and Post-Interaction (PI) adaptation (see :mod:`napari_oaims.adapt.oaims`).

    Attributes
    ----------
    mi, pi : bool
        Which of the two kinds of update run (``"oaims"``: both).
    lr, mi_lr : float
        Adam learning rates of PI and of MI (each has its own optimiser state).
    beta : float
        Weight of the CCG loss.
    max_clicks : int
        Largest number of generated correction clicks in PI's second stage.
    replay_size, replay_k : int
        Accepted objects kept for replay, and how many of them join each PI step (0: no replay).
    seed : int
        Seed of the replay draws.
    mi_gate, mi_stop, mi_rewind : bool
        MI learns only from clicks that correct the mask; pauses while a click that corrected
        nothing is in place; undoes the object's MI steps when such a click arrives.
    mi_check : bool
        At accept, an object's MI steps are kept only if the recently accepted objects are answered
        better with them (their first prompt alone); else they are undone.
    mi_check_se : float or None
        How sure ``mi_check`` must be: the mean Dice gain of the recently accepted objects at
        least this many standard errors of their per-object gains above zero (0: a mean gain of
        at least zero). None: :data:`MI_ALONE_SE` for MI alone, 0 with PI (PI learns from the
        accepted mask after the MI steps, and its own check asks every accepted object).
    mi_check_first : bool or None
        The session's first object, which no accepted object can check, does not keep its MI
        steps (only with ``mi_check``). None: on for MI alone, off with PI.
    mi_max_prompts : int
        MI learns from an object's first prompts only (0: no limit).
    pi_ignore : float
        PI leaves out the pixels of a doubtful click's label within this many object diameters of
        it (0: off).
    """

    mi: bool = True
    pi: bool = True
    lr: float = LR
    mi_lr: float = LR
    beta: float = BETA
    max_clicks: int = 10
    replay_size: int = 16
    replay_k: int = 2
    seed: int = 0
    mi_gate: bool = True
    mi_stop: bool = True
    mi_rewind: bool = True
    mi_check: bool = True
    mi_check_first: bool | None = None
    mi_check_se: float | None = None
    mi_max_prompts: int = 10
    pi_ignore: float = 0.5

    def __post_init__(self) -> None:
        for name in ("mi", "pi", "mi_gate", "mi_stop", "mi_rewind", "mi_check"):
            _check(name, isinstance(getattr(self, name), bool), "True or False", getattr(self, name))
        first = self.mi_check_first
        _check("mi_check_first", first is None or isinstance(first, bool), "True, False or None", first)
        _check("mi/pi", self.mi or self.pi, "at least one of mi and pi", (self.mi, self.pi))
        for name in ("lr", "mi_lr", "beta"):
            _finite_positive(name, getattr(self, name), allow_zero=True)
        _finite_positive("pi_ignore", self.pi_ignore, allow_zero=True)
        if self.mi_check_se is not None:
            _finite_positive("mi_check_se", self.mi_check_se, allow_zero=True)
        for name, low in (("max_clicks", 0), ("replay_size", 0), ("replay_k", 0), ("seed", 0), ("mi_max_prompts", 0)):
            _whole(name, getattr(self, name), low)

    @property
    def check_se(self) -> float:
        """The ``mi_check_se`` in force (None resolved by whether PI runs)."""
        if self.mi_check_se is not None:
            return float(self.mi_check_se)
        return 0.0 if self.pi else MI_ALONE_SE

    @property
    def check_first(self) -> bool:
        """The ``mi_check_first`` in force (None resolved by whether PI runs)."""
        return (not self.pi) if self.mi_check_first is None else self.mi_check_first


def _convert(cls: type, key: str, text: str) -> Any:
    """``text`` as the type of ``cls``'s field ``key``."""
    kinds = {f.name: f.type for f in fields(cls)}
    kind = kinds[key] if isinstance(kinds[key], str) else kinds[key].__name__
    optional = kind.endswith(" | None")
    if optional:  # "none" gives None (the default rule)
        if text.strip().lower() == "none":
            return None
        kind = kind.removesuffix(" | None")
    if kind == "bool":
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"adaptation setting {key}={text!r} must be true/false or 1/0{' or none' if optional else ''}")
    try:
        return int(text) if kind == "int" else float(text)
    except ValueError:
        raise ValueError(
            f"adaptation setting {key}={text!r} must be a{'' if kind == 'int' else ' real'} "
            f"{'whole ' if kind == 'int' else ''}number"
        ) from None


def settings_class(name: str) -> type:
    """The settings dataclass of adapter ``name`` (``none`` has none: ``type(None)``)."""
    from napari_oaims.adapt import ADAPTERS

    try:
        return ADAPTERS[name][1]
    except KeyError:
        raise ValueError(f"unknown adaptation {name!r}; choose one of {sorted(ADAPTERS)}") from None


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"oaims:mi_lr=3e-5:replay_size=16"`` -> ``("oaims", {"mi_lr": 3e-05, "replay_size": 16})``.

    Values are converted with their field's type; unknown and retired keys are refused with a
    message that lists the valid ones.
    """
    name, *pairs = str(spec).strip().split(":")
    name = name.strip().lower()
    cls = settings_class(name)
    valid = [f.name for f in fields(cls)] if dataclasses.is_dataclass(cls) else []
    fixed = {"mi", "pi"}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"bad adaptation setting {pair!r} in {spec!r}: use name:key=value")
        if key in RETIRED:
            raise ValueError(
                f"adaptation setting {key!r} was retired in version 0.2.0 (format version 2); {name!r} takes "
                f"{', '.join(k for k in valid if k not in fixed) or 'no settings'}"
            )
        if key not in valid or key in fixed:
            raise ValueError(
                f"unknown setting {key!r} for adaptation {name!r}; it takes "
                f"{', '.join(k for k in valid if k not in fixed) or 'no settings'}"
            )
        out[key] = _convert(cls, key, value)
    return name, out


def drop_retired(settings: dict[str, Any]) -> dict[str, Any]:
    """Logged settings without the retired keys that hold the shipped value; a retired key with
    any other value raises ``ValueError`` (that run cannot be reproduced)."""
    out = {}
    for key, value in settings.items():
        if key in RETIRED:
            if value != RETIRED[key]:
                raise ValueError(
                    f"these adapter settings use {key}={value!r}, an experiment setting retired in "
                    f"format version 2 (package 0.2.0): the log cannot be replayed exactly by this version "
                    f"(it keeps only {key}={RETIRED[key]!r}, the shipped behaviour)"
                )
            continue
        out[key] = value
    return out
