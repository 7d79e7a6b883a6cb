#!/usr/bin/env bash
# A first-answer rule patched in by a research script (size_prior.py or competitor.py, each taking
# two numbers) on the first-answer suites and the synthetic validation sets (and, with NUCLEI=1,
# the bundled nuclei): `oaims bench clicks`.
# Usage (repository root): RULES="1.5,0.35 2,0.3" bash research/first-answer/run_rule.sh SCRIPT OUT_DIR
# (SUITES and VALS narrow the sets; a rule "0,0" runs the package as it is.)
set -euo pipefail
SCRIPT=$1
OUT=$2
mkdir -p "$OUT"
PY="env PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 5 ${PYTHON:-python}"
bench() {  # NAME IMAGE LABELS A B [extra args]
  local name=$1 image=$2 labels=$3 a=$4 b=$5; shift 5
  $PY "$SCRIPT" "$a" "$b" -- bench clicks \
    --image "$image" --labels "$labels" --methods model --clicks 10 --device cpu \
    --out "$OUT/${name}_r${a}_cv${b}.json" "$@" | tail -2
}
for rule in ${RULES:-0,0}; do
  a=${rule%,*}; b=${rule#*,}
  for k in ${SUITES:-neighbours cavities lesions uniform organs}; do
    echo "suite $k $rule"; bench "suite_$k" runs/suites/$k/image.tif runs/suites/$k/labels.tif "$a" "$b" --max-targets 30
  done
  for v in ${VALS:-touching default halo histology soft_cells nested lesion cavity speckle thin gradient dark_in_texture}; do
    echo "val $v $rule"; bench "val_$v" "runs/val/$v/image.tif" "runs/val/$v/labels.tif" "$a" "$b" --max-targets 30
  done
  if [ -n "${NUCLEI:-}" ]; then
    echo "nuclei $rule"
    bench nuclei src/napari_oaims/data/nuclei2d_image.tif src/napari_oaims/data/nuclei2d_labels.tif "$a" "$b"
  fi
done
