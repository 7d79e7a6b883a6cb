# Session 18: OAIMS and PI with a replay buffer of 16 (seed 003; `replay_size=16`, 2 replayed
# samples per stage-2 step), every adaptive result of docs/results/auto/ again. The frozen model's
# curves are unchanged, so its runs are not repeated (bench merge takes them from docs/results/auto/).
# Two lanes of one-thread runs (about 85 min on the 2-core CPU): `bash rerun.sh a` and `bash rerun.sh b`.
# Edges seed 3 (10 and 50 clicks) was the screening run, made with the same command.
IMG=../shared/data/nuclei2d/image.tif; LBL=../shared/data/nuclei2d/labels.tif
O=docs/results/replay16
B=.venv/bin/oaims
M=oaims:replay_size=16
P=pi:replay_size=16
export OMP_NUM_THREADS=1
run() { $B bench adapt --image $IMG --labels $LBL --jobs 1 "$@"; }
seeds() { for S in $2; do for C in 10 50; do run --shift $1 --clicks $C --methods $M --seed $S --out $O/clicks50_seeds/$1_c${C}_seed$S.json; done; done; }
if [ "$1" = a ]; then
  run --shift none --shift low_snr --shift down3 --shift illum --wrong-label fraction --methods $M --out $O/wrong40_shifts.json
  run --methods $M --out $O/adapt_oaims.json
  run --shift invert --methods $M --robustness --robust-methods $M --out $O/robust_invert.json
  seeds invert "1 2"
else
  seeds edges "1 2 4"
  run --methods $P --out $O/adapt_pi.json
  run --shift edges --methods $M --robustness --robust-methods $M --out $O/robust_edges.json
fi
