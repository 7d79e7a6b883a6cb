#!/usr/bin/env bash
# Edges mode "snap" (first answers always snap to the image's edges) on the first-answer suites and
# the bundled nuclei. Usage (repository root): bash research/first-answer/run_snap_mode.sh OUT_DIR
set -euo pipefail
OUT=${1:-research/first-answer/results/snap_mode}
mkdir -p "$OUT"
PY="env PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 5 ${PYTHON:-python}"
bench() {  # NAME IMAGE LABELS [extra args]
  local name=$1 image=$2 labels=$3; shift 3
  $PY -c 'import sys; from napari_oaims.cli import main; sys.exit(main(sys.argv[1:]))' bench clicks \
    --image "$image" --labels "$labels" --methods model --clicks 10 --device cpu --edges snap \
    --out "$OUT/${name}_snap.json" "$@" | tail -4
}
for k in lesions cavities uniform neighbours; do
  echo "suite $k snap"; bench "suite_$k" runs/suites/$k/image.tif runs/suites/$k/labels.tif --max-targets 30
done
echo "nuclei snap"
bench nuclei src/napari_oaims/data/nuclei2d_image.tif src/napari_oaims/data/nuclei2d_labels.tif
