"""Flip test-time averaging of the click model's logits, patched into ``Engine.predict`` for a
scratch run of the CLI (the package is unchanged).

Usage (repository root): ``PYTHONPATH=src python research/first-answer/tta.py N -- CLI ARGS``
with N the number of flips averaged: 1 (none), 2 (identity and left-right), 4 (the four flips),
8 (the four flips and their transposes).
"""

from __future__ import annotations

import sys

import numpy as np

from napari_oaims import engine as engine_mod
from napari_oaims.cli import main
from napari_oaims.model import predict_logits

VIEWS = [
    (False, False, False),
    (False, True, False),
    (True, False, False),
    (True, True, False),
    (False, False, True),
    (False, True, True),
    (True, False, True),
    (True, True, True),
]


def forward(x: np.ndarray, flip_y: bool, flip_x: bool, transpose: bool) -> np.ndarray:
    """x (B, C, S, S) viewed, as the inverse view of the result would be."""
    if transpose:
        x = np.swapaxes(x, -1, -2)
    if flip_y:
        x = x[..., ::-1, :]
    if flip_x:
        x = x[..., ::-1]
    return np.ascontiguousarray(x)


def backward(y: np.ndarray, flip_y: bool, flip_x: bool, transpose: bool) -> np.ndarray:
    if flip_x:
        y = y[..., ::-1]
    if flip_y:
        y = y[..., ::-1, :]
    if transpose:
        y = np.swapaxes(y, -1, -2)
    return y


def patch(n: int) -> None:
    views = VIEWS[:n]

    def predict(self, x):
        b = np.shape(x)[0]
        pixels = int(np.prod(np.shape(x))) // max(1, np.shape(x)[1])
        batch = np.concatenate([forward(np.asarray(x), *v) for v in views])
        with self.compute(pixels * len(views)):
            out = predict_logits(self.model.eval(), batch, self.device)
        parts = [backward(out[i * b : (i + 1) * b], *v) for i, v in enumerate(views)]
        return np.mean(parts, axis=0)

    engine_mod.Engine.predict = predict


if __name__ == "__main__":
    n = int(sys.argv[1])
    args = sys.argv[sys.argv.index("--") + 1 :]
    if n > 1:
        patch(n)
    sys.exit(main(args))
