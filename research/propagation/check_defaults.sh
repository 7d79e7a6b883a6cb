#!/bin/sh
# Defaults after the cost changes (flow at <= 48 px with 3 warps; one anchor sample in the student's batch).
cd "$(dirname "$0")/../.."
for m in frozen registration ema; do .venv/bin/python research/propagation/first.py $m 2; done
