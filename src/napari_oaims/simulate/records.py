"""Recorded clicks: replay them through the robot interface, save and load them as JSON.

A :class:`~napari_oaims.simulate.robot.Robot` records every click it makes
(:attr:`~napari_oaims.simulate.robot.Robot.sequences`); :func:`save_clicks` writes such records
(or any click lists) to a file, :func:`load_clicks` reads them back and :class:`ReplayRobot`
clicks them again, so a benchmark can be rerun on exactly the same clicks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from napari_oaims.simulate.clicks import Click, check_masks
from napari_oaims.simulate.robot import TargetId


class ReplayRobot:
    """Replays recorded click sequences (e.g. from :func:`load_clicks`) through ``next_click``."""

    def __init__(self, sequences: Mapping[TargetId, Sequence[Mapping | Click]]) -> None:
        self._sequences = {
            k: [c if isinstance(c, Click) else Click.from_dict(c) for c in v] for k, v in sequences.items()
        }
        self.target_index: TargetId | None = None
        self._pos = 0

    def reset(self, target_index: TargetId = 0) -> None:
        """Start replaying the sequence of ``target_index`` (KeyError if it was not recorded)."""
        if target_index not in self._sequences:
            raise KeyError(f"no recorded clicks for target {target_index!r}")
        self.target_index = target_index
        self._pos = 0

    def next_click(
        self, pred: np.ndarray | None = None, target: np.ndarray | None = None, image: np.ndarray | None = None
    ) -> Click | None:
        """The next recorded click, or None when the sequence has ended; masks are only shape-checked."""
        if self.target_index is None:
            self.reset(next(iter(self._sequences)))
        seq = self._sequences[self.target_index]
        if self._pos >= len(seq):
            return None
        click = seq[self._pos]
        if pred is not None and target is not None:
            _, target = check_masks(pred, target)
            if not (0 <= click.y < target.shape[0] and 0 <= click.x < target.shape[1]):
                raise ValueError(f"recorded click {click} lies outside the image {target.shape}")
        self._pos += 1
        return click


def _json_default(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"cannot store {type(o).__name__} in a click file")


def save_clicks(path: str | Path, sequences: Mapping[TargetId, Sequence[Mapping | Click]]) -> None:
    """Write click sequences (target id -> list of ``Click`` or ``Click.to_dict()`` rows with optional
    extra JSON-serialisable keys) as JSON; target ids keep their type (int or str)."""
    targets = []
    for tid, clicks in sequences.items():
        if isinstance(tid, np.integer):
            tid = int(tid)
        if isinstance(tid, bool) or not isinstance(tid, (int, str)):
            raise ValueError(f"target ids must be int or str, got {tid!r}")
        rows = []
        for c in clicks:
            row = c.to_dict() if isinstance(c, Click) else dict(c)
            if not {"y", "x", "positive"} <= row.keys():
                raise ValueError(f"click row {row!r} lacks y, x or positive")
            rows.append(row)
        targets.append({"id": tid, "clicks": rows})
    doc = {"format": "napari-oaims-clicks", "version": 1, "targets": targets}
    Path(path).write_text(json.dumps(doc, indent=1, default=_json_default))


def load_clicks(path: str | Path) -> dict[TargetId, list[dict]]:
    """Read a file written by :func:`save_clicks`: target id -> list of click rows (dicts)."""
    doc = json.loads(Path(path).read_text())
    if doc.get("format") != "napari-oaims-clicks":
        raise ValueError(f"{path} is not a napari-oaims click file")
    return {t["id"]: t["clicks"] for t in doc["targets"]}
