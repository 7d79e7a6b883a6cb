#!/bin/sh
# Attempt 2: the dense anchor loss (anchor_mask) x learning rate, 1 step per slice.
cd "$(dirname "$0")/../.."
for am in 1.0 2.0; do for lr in 3e-4 1e-3; do
  .venv/bin/python research/propagation/first.py ema 2 "{\"lr\": $lr, \"steps\": 1, \"anchor_mask\": $am}"
done; done
