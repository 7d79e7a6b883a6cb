#!/bin/sh
# Attempt 2, edge of the grid: stronger anchor term / faster student.
cd "$(dirname "$0")/../.."
.venv/bin/python research/propagation/first.py ema 2 '{"lr": 3e-3, "steps": 1, "anchor_mask": 2.0}'
.venv/bin/python research/propagation/first.py ema 2 '{"lr": 1e-3, "steps": 1, "anchor_mask": 4.0}'
.venv/bin/python research/propagation/first.py ema 2 '{"lr": 1e-3, "steps": 1, "anchor_mask": 2.0, "max_anchors": 1}'
.venv/bin/python research/propagation/first.py ema 2 '{"lr": 1e-2, "steps": 1, "anchor_mask": 2.0}'
.venv/bin/python research/propagation/first.py ema 2 '{"lr": 3e-3, "steps": 1, "anchor_mask": 0.0}'
