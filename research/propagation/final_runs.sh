#!/bin/sh
# The runs recorded in README.md, in order (defaults of PropagateSettings; results/ and *.log).
cd "$(dirname "$0")/../.."
.venv/bin/python research/propagation/bench.py procedural 1 > research/propagation/bench_procedural.log 2>&1
.venv/bin/python research/propagation/bench.py stack 3 > research/propagation/bench_stack.log 2>&1
.venv/bin/python research/propagation/bench.py memory 1024 ema > research/propagation/memory_ema.log 2>&1
.venv/bin/python research/propagation/bench.py memory 1024 frozen > research/propagation/memory_frozen.log 2>&1
