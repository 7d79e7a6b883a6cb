#!/bin/sh
# Before/after measurements of a stop rule, on the tree TREE (before: the same tree with the
# settings OFF, default '{"waist": 0}', or the tree BEFORE where the script takes no settings):
#   sh research/propagation/waist_check.sh TREE BEFORE OUT [OFF]
TREE=$1; BEFORE=$2; OUT=$3; OFF=${4:-'{"waist": 0}'}
PY=/work/venv/bin/python
export OMP_NUM_THREADS=1
mkdir -p "$OUT"
bench() {  # bench NAME SETTINGS ARGS...
  name=$1; settings=$2; shift 2
  PYTHONPATH=$TREE/src nice -n 5 $PY -c "import sys; from napari_oaims.cli import main; sys.exit(main())" \
    bench propagate --methods frozen --device cpu --settings "$settings" --out "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1
}
# one click per nucleus, one propagation, on the stacked volumes
sh research/propagation/stacked_check.sh "$TREE" "$OUT/one_click_before" "$OFF" 3
sh research/propagation/stacked_check.sh "$TREE" "$OUT/one_click_after" '{}' 3
# first propagation of the procedural and failure suites (3 per kind)
for D in procedural failures; do
  bench first_${D}_before "$OFF" --data $D --n-per-kind 3 --first-only
  bench first_${D}_after '{}' --data $D --n-per-kind 3 --first-only
done
# the plugin's 3D sample, one click per nucleus
PYTHONPATH=$TREE/src nice -n 5 $PY research/propagation/sample_leak.py --settings "$OFF" --json "$OUT/sample_before.json" > "$OUT/sample_before.log" 2>&1
PYTHONPATH=$TREE/src nice -n 5 $PY research/propagation/sample_leak.py --json "$OUT/sample_after.json" > "$OUT/sample_after.log" 2>&1
# many objects at once
PYTHONPATH=$BEFORE/src nice -n 5 $PY research/propagation/objects_bench.py --n 3 --json "$OUT/objects_before.json" > "$OUT/objects_before.log" 2>&1
PYTHONPATH=$TREE/src nice -n 5 $PY research/propagation/objects_bench.py --n 3 --json "$OUT/objects_after.json" > "$OUT/objects_after.log" 2>&1
# the failure suite's robot protocol (corrections)
bench protocol_failures_before "$OFF" --data failures --n-per-kind 3
bench protocol_failures_after '{}' --data failures --n-per-kind 3
echo finished
