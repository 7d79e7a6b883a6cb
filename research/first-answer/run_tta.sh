#!/usr/bin/env bash
# Flip test-time averaging (research/first-answer/tta.py) on the first-answer suites, the synthetic
# validation sets and, last, the bundled nuclei: `oaims bench clicks`, the shipped settings.
# Usage (repository root): FLIPS="1 4" bash research/first-answer/run_tta.sh OUT_DIR
set -euo pipefail
OUT=${1:-research/first-answer/results/tta}
mkdir -p "$OUT"
PY="env PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 5 ${PYTHON:-python}"
bench() {  # NAME IMAGE LABELS FLIPS [extra args]
  local name=$1 image=$2 labels=$3 n=$4; shift 4
  $PY research/first-answer/tta.py "$n" -- bench clicks \
    --image "$image" --labels "$labels" --methods model --clicks 10 --device cpu \
    --out "$OUT/${name}_tta${n}.json" "$@" | tail -3
}
for n in ${FLIPS:-1 4}; do
  for k in cavities lesions uniform neighbours organs; do
    echo "suite $k tta$n"; bench "suite_$k" runs/suites/$k/image.tif runs/suites/$k/labels.tif "$n" --max-targets 30
  done
  for v in runs/val/*/; do
    v=${v%/}; echo "val $(basename $v) tta$n"
    bench "val_$(basename $v)" "$v/image.tif" "$v/labels.tif" "$n" --max-targets 30
  done
done
if [ -n "${NUCLEI:-}" ]; then
  for n in ${FLIPS:-1 4}; do
    echo "nuclei tta$n"
    bench nuclei src/napari_oaims/data/nuclei2d_image.tif src/napari_oaims/data/nuclei2d_labels.tif "$n"
  done
fi
