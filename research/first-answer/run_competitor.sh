#!/usr/bin/env bash
# The size prior of research/first-answer/size_prior.py on the first-answer suites and the
# synthetic validation sets (and, with NUCLEI=1, the bundled nuclei): `oaims bench clicks`.
# Usage (repository root): RULES="2,0.15" bash research/first-answer/run_size_prior.sh OUT_DIR
set -euo pipefail
OUT=${1:-research/first-answer/results/competitor}
mkdir -p "$OUT"
PY="env PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 5 ${PYTHON:-python}"
bench() {  # NAME IMAGE LABELS RATIO CV [extra args]
  local name=$1 image=$2 labels=$3 ratio=$4 cv=$5; shift 5
  $PY research/first-answer/competitor.py "$ratio" "$cv" -- bench clicks \
    --image "$image" --labels "$labels" --methods model --clicks 10 --device cpu \
    --out "$OUT/${name}_r${ratio}_cv${cv}.json" "$@" | tail -2
}
for rule in ${RULES:-0,0 1.5,0.35}; do
  ratio=${rule%,*}; cv=${rule#*,}
  for k in ${SUITES:-neighbours cavities lesions uniform organs}; do
    echo "suite $k $rule"; bench "suite_$k" runs/suites/$k/image.tif runs/suites/$k/labels.tif "$ratio" "$cv" --max-targets 30
  done
  for v in ${VALS:-touching default halo histology soft_cells nested lesion cavity speckle thin gradient dark_in_texture}; do
    echo "val $v $rule"; bench "val_$v" "runs/val/$v/image.tif" "runs/val/$v/labels.tif" "$ratio" "$cv" --max-targets 30
  done
  if [ -n "${NUCLEI:-}" ]; then
    echo "nuclei $rule"
    bench nuclei src/napari_oaims/data/nuclei2d_image.tif src/napari_oaims/data/nuclei2d_labels.tif "$ratio" "$cv"
  fi
done
