#!/bin/sh
# The single-object leak checks of research/issue-36.md, on the tree in $1 (default: this one):
# the plugin's 3D sample per nucleus, the failure volumes and the procedural volumes (frozen,
# one per kind, robot protocol), and many objects at once. Output in $2 (default /tmp/leak_check).
TREE=${1:-.}
OUT=${2:-/tmp/leak_check}
mkdir -p "$OUT"
RUN="env PYTHONPATH=$TREE/src OMP_NUM_THREADS=1 nice -n 5 python"
CLI='import sys; from napari_oaims.cli import main; sys.exit(main())'
$RUN research/propagation/sample_leak.py --json "$OUT/sample.json" > "$OUT/sample.log" 2>&1
$RUN -c "$CLI" bench propagate --data failures --methods frozen --n-per-kind 1 --cap 20 --device cpu --out "$OUT/failures" > "$OUT/failures.log" 2>&1
$RUN -c "$CLI" bench propagate --methods frozen --n-per-kind 1 --cap 20 --device cpu --out "$OUT/procedural" > "$OUT/procedural.log" 2>&1
$RUN research/propagation/objects_bench.py --n 3 --json "$OUT/objects.json" > "$OUT/objects.log" 2>&1
