#!/bin/sh
# One click per nucleus + one propagation (sample_leak.py) and its summary (stack_summary.py) on
# the stacked failure volumes, with the tree TREE's code:
#   sh research/propagation/stacked_check.sh TREE OUT [SETTINGS_JSON] [N]
# (volumes written by stacked_volumes.py into OUT/volumes).
TREE=$1; OUT=$2; SETTINGS=${3:-"{}"}; N=${4:-3}
PY=/work/venv/bin/python
mkdir -p "$OUT/volumes"
PYTHONPATH=src $PY research/propagation/stacked_volumes.py "$OUT/volumes" --n "$N" > "$OUT/volumes.log"
i=0
while [ $i -lt "$N" ]; do
  V="$OUT/volumes/stacked_$i"
  PYTHONPATH=$TREE/src OMP_NUM_THREADS=1 nice -n 5 $PY research/propagation/sample_leak.py \
    --image "${V}_image.npy" --labels "${V}_labels.npy" --method frozen --settings "$SETTINGS" \
    --json "$OUT/sample_leak_$i.json" > "$OUT/sample_leak_$i.log"
  PYTHONPATH=src $PY research/propagation/stack_summary.py "$OUT/sample_leak_$i.json" "${V}_image.npy" "${V}_labels.npy" \
    > "$OUT/summary_$i.json"
  i=$((i + 1))
done
PYTHONPATH=src $PY research/propagation/stacked_volumes.py "$OUT" --summary | tee "$OUT/summary.json"
