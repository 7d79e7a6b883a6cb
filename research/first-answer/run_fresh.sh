#!/usr/bin/env bash
# The first object of a session on every first-answer suite, validation set and the bundled
# nuclei: `oaims bench clicks --fresh` (each target in a new session), the shipped settings.
# Usage (repository root): bash research/first-answer/run_fresh.sh OUT_DIR
set -euo pipefail
OUT=${1:-research/first-answer/results/fresh}
mkdir -p "$OUT"
PY="env PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 5 ${PYTHON:-python}"
bench() {  # NAME IMAGE LABELS [extra args]
  local name=$1 image=$2 labels=$3; shift 3
  $PY -c 'import sys; from napari_oaims.cli import main; sys.exit(main(sys.argv[1:]))' bench clicks \
    --image "$image" --labels "$labels" --methods model --clicks 10 --device cpu --fresh \
    --out "$OUT/${name}_fresh.json" "$@" | tail -3
}
for k in cavities lesions uniform neighbours organs; do
  echo "suite $k"; bench "suite_$k" runs/suites/$k/image.tif runs/suites/$k/labels.tif --max-targets 30
done
for v in runs/val/*/; do
  v=${v%/}; echo "val $(basename $v)"
  bench "val_$(basename $v)" $v/image.tif $v/labels.tif --max-targets 30
done
echo "nuclei"
bench nuclei src/napari_oaims/data/nuclei2d_image.tif src/napari_oaims/data/nuclei2d_labels.tif
