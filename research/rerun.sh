#!/usr/bin/env bash
# Every measurement of docs/benchmarks.md and docs/model-card.md, from the repository root:
#
#   bash research/rerun.sh PART [PART ...]     # parts: clicks suites latency napari store object_size
#                                              #        adapt robust wrong40 clicks50 safety
#                                              #        propagate batch training all
#
# Results go to $OUT (default results/rerun, which git ignores; the published files stay as they are);
# then `.venv/bin/python research/tables.py --results $OUT` prints the tables. Plots go to $PLOTS
# (default $OUT; PLOTS=docs replaces the plots the docs show). Adaptive curves
# depend on the torch thread count in their last bits: the published runs used one thread per
# worker, which `--jobs $JOBS` with JOBS = the number of cores gives. Times are for 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."

B=${OAIMS:-.venv/bin/oaims}
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-results/rerun}
JOBS=${JOBS:-$(nproc)}
IMG=src/napari_oaims/data/nuclei2d_image.tif
LBL=src/napari_oaims/data/nuclei2d_labels.tif
PLOTS=${PLOTS:-$OUT}
mkdir -p "$OUT" "$PLOTS"
adapt() { "$B" bench adapt --image "$IMG" --labels "$LBL" --jobs "$JOBS" "$@"; }

part_clicks() {       # 2 min: frozen model against the random walker and the marker watershed
  "$B" bench clicks --image "$IMG" --labels "$LBL" --out "$OUT/clicks.json" --plot "$PLOTS/clicks_nuclei.png"
}
part_suites() {       # 5 min: first answers on the procedural failure suites (docs: First answers ...)
  for k in cavities uniform lesions neighbours; do
    "$B" synth --suite "$k" --tiles 3 --seed 0 --out "$OUT/suites/$k"
    "$B" bench clicks --image "$OUT/suites/$k/image.tif" --labels "$OUT/suites/$k/labels.tif" --clicks 10 \
        --max-targets 30 --out "$OUT/suites_$k.json"
  done
}
part_latency() {      # 1 min per device
  "$B" bench latency --image "$IMG" --labels "$LBL" --sizes 512 2048 4096 --device cpu --out "$OUT/latency_cpu.json"
  if "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    "$B" bench latency --image "$IMG" --labels "$LBL" --sizes 512 2048 4096 --device cuda --out "$OUT/latency_gpu.json"
  fi
}
part_napari() {       # needs a display (or xvfb-run -a)
  "$B" bench napari --clicks 50 --adaptation none --out "$OUT/napari_off.json"
  "$B" bench napari --clicks 50 --adaptation oaims --out "$OUT/napari_oaims.json"
  for m in ema frozen; do   # one object through a stack: the widget's Propagate against Session.propagate
    OMP_NUM_THREADS=1 "$B" bench napari --propagate --method $m --threads 1 --device cpu --repeats 5 \
      --out "$OUT/napari_propagate_$m.json"
  done
  # the objects of one slice: the widget's Propagate all against Session.propagate_objects
  OMP_NUM_THREADS=1 "$B" bench napari --propagate-all --stack 32 --side 96 --objects 6 --method frozen \
    --repeats 3 --device cpu --threads 1 --out "$OUT/napari_propagate_all_frozen.json"
}
part_store() {        # 2 min
  "$B" bench store --objects 100 --kill-runs 20 --kill-mode both --out "$OUT/store.json" | tee "$OUT/store.log"
}
part_object_size() {  # 10 min
  local d="$OUT/object_size"
  mkdir -p "$d"
  "$PY" research/object_size.py --image "$IMG" --labels "$LBL" --scales 0.5 1 1.5 2 3 \
      --first-window 64 96 4d auto --out "$d/first_click.json" --write "$d/images"
  for pair in 1:95 2:190 3:285; do
    local s=${pair%%:*} four_d=${pair##*:}
    for fw in 64 "$four_d" auto; do
      "$B" bench clicks --image "$d/images/nuclei_x${s}_image.tif" --labels "$d/images/nuclei_x${s}_labels.tif" \
          --methods model --first-window "$fw" --out "$d/nuclei_x${s}_fw${fw}.json"
    done
  done
}
part_adapt() {        # 80 min: every method on every shift
  adapt --out "$OUT/adapt_shifts.json" --plot "$PLOTS/adapt_dice_vs_clicks.png"
}
part_robust() {       # 60 min: seed 000 section 3.3 on edges and invert
  for s in edges invert; do
    adapt --shift "$s" --methods none,oaims --robustness --robust-methods none,oaims --out "$OUT/robust_$s.json"
  done
}
part_wrong40() {      # 15 min: 40% wrong-labelled clicks (invert and edges are in the robust runs)
  adapt --shift none --shift low_snr --shift down3 --shift illum --wrong-label fraction --methods none,oaims \
      --out "$OUT/wrong40_shifts.json"
}
part_clicks50() {     # 90 min: 10 against 50 clicks per target, more target orders (seed 0 is in robust)
  mkdir -p "$OUT/clicks50_seeds"
  for s in edges invert; do
    local seeds="1 2"
    [ "$s" = edges ] && seeds="1 2 3 4"
    for seed in $seeds; do
      for c in 10 50; do
        adapt --shift "$s" --clicks "$c" --methods oaims --seed "$seed" --out "$OUT/clicks50_seeds/${s}_c${c}_seed$seed.json"
      done
    done
  done
}
part_safety() {       # 10 min: the failure suites of learning (docs: Safety of learning)
  adapt --suite flooding --methods none,mi,pi,oaims --max-targets 20 --device cpu --out "$OUT/flooding_suite.json"
  adapt --suite accept --methods none,mi,pi,oaims --max-targets 20 --device cpu --out "$OUT/accept_suite.json"
  adapt --suite shifts --shift none --robustness --robust-methods none,mi,pi,oaims --methods none,mi,pi,oaims \
      --max-targets 12 --device cpu --out "$OUT/robustness_suite.json"
}
part_propagate() {    # 7 min: the 3D effort protocol on procedural volumes and on the shared nuclei stack
  OMP_NUM_THREADS=1 "$B" bench propagate --n-per-kind 1 --device cpu --out "$OUT/propagation"
  local stack=../shared/data/nuclei3d_synthetic
  if [ -f "$stack/image.tif" ]; then
    OMP_NUM_THREADS=1 "$B" bench propagate --data stack --image "$stack/image.tif" --labels "$stack/labels.tif" \
        --max-objects 3 --device cpu --out "$OUT/propagation"
  fi
}
part_batch() {        # 2 min: batch propagation on a local Dask cluster with 1 and 2 workers
  OMP_NUM_THREADS=1 "$B" bench batch --volumes 8 --shape 16,96,96 --method frozen --large-gib 0 --repeats 3 \
      --out "$OUT/batch8.json"
}
part_training() {     # 35 min to train the alternative recipe, then 5 min of evaluation
  local v="$OUT/training/val"
  mkdir -p "$v"
  "$B" synth --out "$v/default" --seed 1000
  "$B" synth --out "$v/blobs" --seed 1001 --kind-weights 0.5,0.35,0.15,0,0 --level-min 0.15 --lowres-p 0.3
  "$B" synth --out "$v/cells" --seed 1002 --blob-p 1
  "$B" synth --out "$v/soft_cells" --seed 1003 --blob-p 1 --blob-blur-max 6
  "$B" train --steps 3000 --seed 0 --blob-p 0.3 --out runs/blur2 --export runs/blur2_w
  for w in shipped blur2; do
    local weights=()
    [ "$w" = blur2 ] && weights=(--weights runs/blur2_w.safetensors)
    for kind in default blobs cells soft_cells; do
      "$B" bench clicks --image "$v/$kind/image.tif" --labels "$v/$kind/labels.tif" --clicks 3 --methods model \
          --first-window 64 "${weights[@]}" --out "$OUT/training/${w}_$kind.json"
    done
    "$B" bench clicks --image "$IMG" --labels "$LBL" --methods model --first-window 64 "${weights[@]}" \
        --out "$OUT/training/${w}_nuclei.json"
  done
}

PARTS=(clicks suites latency napari store object_size adapt robust wrong40 clicks50 safety propagate batch training)
[ $# -eq 0 ] && { echo "usage: bash research/rerun.sh PART [PART ...]; parts: ${PARTS[*]} all" >&2; exit 2; }
[ "$1" = all ] && set -- "${PARTS[@]}"
for part in "$@"; do
  "part_$part"
done
