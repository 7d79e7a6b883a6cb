#!/usr/bin/env bash
# The shipped model with answers that follow image edges ("auto", the default) and without
# ("never"), on the first-answer suites, the synthetic validation sets and the bundled nuclei.
# Usage (repository root): [MODES="never auto"] bash research/first-answer/run_edges.sh OUT_DIR
# Needs the suites in runs/suites (oaims synth --suite K --tiles 3 --seed 0 --out runs/suites/K)
# and the validation sets in runs/val (bash research/base-model/make_val.sh runs/val).
set -euo pipefail
OUT=${1:-research/first-answer/results/edges}
mkdir -p "$OUT"
PY="env PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 5 ${PYTHON:-python}"
bench() {  # NAME IMAGE LABELS MODE [extra args]
  local name=$1 image=$2 labels=$3 mode=$4; shift 4
  $PY -c 'import sys; from napari_oaims.cli import main; sys.exit(main(sys.argv[1:]))' bench clicks \
    --image "$image" --labels "$labels" --methods model --clicks 10 --device cpu --edges "$mode" \
    --out "$OUT/${name}_${mode}.json" "$@" | tail -4
}
for mode in ${MODES:-never auto}; do
  for k in cavities lesions uniform neighbours organs; do
    echo "suite $k $mode"; bench "suite_$k" runs/suites/$k/image.tif runs/suites/$k/labels.tif $mode --max-targets 30
  done
  for v in runs/val/*/; do
    v=${v%/}; echo "val $(basename $v) $mode"
    bench "val_$(basename $v)" $v/image.tif $v/labels.tif $mode --max-targets 30
  done
  echo "nuclei $mode"
  bench nuclei src/napari_oaims/data/nuclei2d_image.tif src/napari_oaims/data/nuclei2d_labels.tif $mode
done
