# Session 18: OAIMS and PI with a replay buffer of 16 (seed 003; `replay_size=16`, 2 replayed
# samples per stage-2 step), every adaptive result of docs/results/auto/ again. The frozen model's
# curves are unchanged, so its runs are not repeated (bench merge takes them from docs/results/auto/).
# Two lanes of one-thread runs (about 85 min on the 2-core CPU): `bash rerun.sh a & bash rerun.sh b`,
# then `bash rerun.sh merge` (the merged table, plots and latency).
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
elif [ "$1" = b ]; then
  seeds edges "1 2 4"
  run --methods $P --out $O/adapt_pi.json
  run --shift edges --methods $M --robustness --robust-methods $M --out $O/robust_edges.json
fi
# After both lanes: the merged table and the README's plots (session 16's other methods + these runs)
if [ "$1" = merge ]; then
python - <<'PY'
import json
d = json.load(open("docs/results/auto/adapt_all.json"))
for runs in d["shifts"].values():
    for body in runs.values():
        for m in ("oaims", "pi"):
            body["methods"].pop(m, None)
d["settings"]["methods"] = ",".join(m for m in d["settings"]["methods"].split(",") if m not in ("oaims", "pi"))
json.dump(d, open("/tmp/auto_others.json", "w"))
PY
$B bench merge /tmp/auto_others.json $O/adapt_oaims.json $O/adapt_pi.json --out $O/adapt_all.json --markdown $O/adapt_all.md --plot docs/auto_dice_vs_clicks.png
$B bench latency --image $IMG --labels $LBL --sizes 512 2048 4096 --out $O/latency.json
python $O/tables.py; python $O/compare.py
fi
