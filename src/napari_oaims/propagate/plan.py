"""The plan of a propagation: the axis and extent it runs along, and for every line of planes
that holds an anchor the chains that redo its other slices (outward from the outermost anchors;
across a gap between two anchors from the larger one for the model's methods, else both ways)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from napari_oaims.propagate.anchors import Anchor, Key
from napari_oaims.propagate.settings import PropagateSettings

if TYPE_CHECKING:  # pragma: no cover
    from napari_oaims.session import Session


@dataclass
class Chain:
    """Slices ``positions`` carried, in order, from the anchor at ``anchor``; ``open``: the stop
    rules apply (outward from the outermost anchors, or towards an empty anchor)."""

    anchor: int
    positions: list[int]
    open: bool
    index: int = 0


@dataclass
class Line:
    """One line of planes along the axis: its anchors, the slices it redoes and its chains."""

    line: tuple[int, ...]
    anchors: dict[int, tuple[int, ...]]  # position -> plane key
    nonempty: list[int]
    targets: list[int]
    chains: list[Chain] = field(default_factory=list)
    gaps: dict[int, tuple[int, int]] = field(default_factory=dict)  # position -> (a, b)
    span: tuple[int, int] = (0, 0)  # the extent (start, stop) the line is redone within


def resolve_axis(session: "Session", axis) -> int:
    """The spatial axis to propagate along (the only non-plane axis of a 3D image by default)."""
    src = session.source
    nd = len(src.spatial_shape)
    if nd < 3:
        raise ValueError(
            f"propagation needs a 3D or 4D image; this one has {nd} spatial axes (shape {src.spatial_shape})"
        )
    choices = [a for a in range(nd) if a not in src.plane_axes]
    if axis is None:
        if len(choices) == 1:
            return choices[0]
        raise ValueError(
            f"this image can be propagated along {len(choices)} axes: pass axis= one of {choices} "
            f"(spatial shape {src.spatial_shape}, plane axes {list(src.plane_axes)})"
        )
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"axis must be an integer, one of {choices}; got {axis!r}")
    a = int(axis)
    if not -nd <= a < nd:
        raise ValueError(f"axis {axis} is out of range for spatial shape {src.spatial_shape}: use one of {choices}")
    a %= nd
    if a in src.plane_axes:
        raise ValueError(
            f"axis {a} is a plane axis (plane axes {list(src.plane_axes)}): propagate along one of {choices}"
        )
    return a


def resolve_extent(n: int, extent) -> tuple[int, int]:
    """``(start, stop)`` (stop exclusive) within ``[0, n)``; None: the whole axis."""
    if extent is None:
        return 0, n
    try:
        start, stop = extent
        start = 0 if start is None else int(start)
        stop = n if stop is None else int(stop)
    except (TypeError, ValueError) as err:
        raise ValueError(f"extent is (start, stop) along the axis, got {extent!r}") from err
    if not 0 <= start < stop <= n:
        raise ValueError(f"extent {tuple(extent)} lies outside the axis: need 0 <= start < stop <= {n}")
    return start, stop


#: Methods whose chains are the model carrying a mask (see ``PropagateSettings.cross_from_larger``).
MODEL_METHODS = ("ema", "frozen")


def plan(
    session: "Session",
    axis: int,
    extent: tuple[int, int],
    settings: PropagateSettings,
    prompted: dict[Key, Anchor],
    method: str | None = None,
) -> list[Line]:
    """The lines to redo along ``axis`` within ``extent``, with their chains (``method``: the
    propagation's, which decides how a gap between two anchors is crossed; None: by both chains)."""
    src = session.source
    others = [a for a in range(len(src.spatial_shape)) if a not in src.plane_axes]
    kpos = others.index(axis)
    lo, hi = extent
    if not prompted:
        raise ValueError("nothing to propagate: prompt the object on a slice first (a click, box, scribble or prior)")
    lines: dict[tuple, dict[int, tuple]] = {}
    for key in prompted:
        if lo <= key[kpos] < hi:
            lines.setdefault(key[:kpos] + key[kpos + 1 :], {})[key[kpos]] = key
    one_way = settings.cross_from_larger and method in MODEL_METHODS
    out = []
    for line, anchors in sorted(lines.items()):
        nonempty = sorted(p for p, k in anchors.items() if prompted[k].box is not None)
        ln = Line(line, anchors, nonempty, [p for p in range(lo, hi) if p not in anchors], span=(lo, hi))
        pos = sorted(anchors)

        def add(anchor, positions, open_, ln=ln):
            if positions:
                ln.chains.append(Chain(anchor, positions, open_, len(ln.chains)))

        def area(position, anchors=anchors) -> int:
            return int(np.count_nonzero(prompted[anchors[position]].crop))

        if pos[0] in nonempty:
            add(pos[0], list(range(pos[0] - 1, lo - 1, -1)), True)
        for a, b in zip(pos[:-1], pos[1:]):
            inside = list(range(a + 1, b))
            if a in nonempty and b in nonempty:
                if one_way and area(a) != area(b):  # from the larger anchor only
                    if area(a) > area(b):
                        add(a, inside, settings.stop_between)
                    else:
                        add(b, inside[::-1], settings.stop_between)
                    continue
                add(a, inside, settings.stop_between)
                add(b, inside[::-1], settings.stop_between)
                for p in inside:
                    ln.gaps[p] = (a, b)
            elif a in nonempty:
                add(a, inside, True)
            elif b in nonempty:
                add(b, inside[::-1], True)
        if pos[-1] in nonempty:
            add(pos[-1], list(range(pos[-1] + 1, hi)), True)
        out.append(ln)
    if not out:
        raise ValueError(
            f"nothing to propagate within extent {extent}: no prompted slice lies in it "
            f"(prompted positions along the axis: {sorted({k[kpos] for k in prompted})})"
        )
    if not any(ln.nonempty for ln in out):
        where = f" within extent {extent}" if extent != (0, src.spatial_shape[axis]) else ""
        raise ValueError(
            f"nothing to propagate: the prompted slices{where} have empty masks "
            "(add a positive prompt on a slice of the object)"
        )
    return out


def key_of(line: tuple[int, ...], kpos: int, position: int) -> tuple[int, ...]:
    return line[:kpos] + (int(position),) + line[kpos:]


def keep_extent(session: "Session", ln: Line, kpos: int) -> None:
    """Once a line was propagated, its outward chains stay within the object's current extent
    along the axis (its farthest slices with a mask): a correction refines the object where it
    is and never makes it run past an end that an earlier propagation found."""
    masked = [
        p for p in range(*ln.span) if p not in ln.anchors and session.plane_crop(key_of(ln.line, kpos, p)) is not None
    ]
    if not masked:
        return
    held = masked + list(ln.nonempty)
    lo, hi = min(held), max(held)
    for chain in ln.chains:
        if chain.open:
            chain.positions = [p for p in chain.positions if lo <= p <= hi]
    ln.chains = [c for c in ln.chains if c.positions]
