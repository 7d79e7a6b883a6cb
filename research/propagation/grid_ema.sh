#!/bin/sh
# EMA grid on the procedural suite (n_per_kind=2): learning rate x steps per slice.
cd "$(dirname "$0")/../.."
for lr in 1e-4 3e-4 1e-3; do for st in 1 3; do
  .venv/bin/python research/propagation/first.py ema 2 "{\"lr\": $lr, \"steps\": $st}"
done; done
