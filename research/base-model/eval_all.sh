#!/usr/bin/env bash
# One weights file on everything the base model is judged by: the synthetic validation sets
# (bench_val.py), the first-answer suites (oaims bench clicks, model only) and the bundled nuclei.
# Usage: bash research/base-model/eval_all.sh NAME [WEIGHTS]   (WEIGHTS default: the shipped ones)
# Needs: bash research/base-model/make_val.sh runs/val, and the suites in $SUITES
# (oaims synth --suite NAME --tiles 3 --seed 0 --out $SUITES/NAME).
set -euo pipefail
NAME=$1; WEIGHTS=${2:-src/napari_oaims/weights/oaims_base.safetensors}
SUITES=${SUITES:-runs/suites}; RES=${RES:-runs/base-model/results}
PY="env PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 5 ${PYTHON:-python}"
OAIMS="$PY -c 'import sys; from napari_oaims.cli import main; sys.exit(main(sys.argv[1:]))'"
mkdir -p "$RES"
for k in cavities lesions uniform neighbours; do
  eval "$OAIMS bench clicks --image $SUITES/$k/image.tif --labels $SUITES/$k/labels.tif --methods model \
    --weights $WEIGHTS --clicks 10 --max-targets 30 --device cpu --out $RES/${NAME}_suite_$k.json" | tail -4
done
$PY research/base-model/bench_val.py --name "$NAME" --weights "$WEIGHTS" --out "$RES" | tail -30
$PY research/base-model/bench_val.py --name "$NAME" --weights "$WEIGHTS" --out "$RES" --nuclei | tail -3
