#!/usr/bin/env bash
# Synthetic validation sets for the base model (one `oaims synth` command each; no training run
# uses these seeds). Usage: bash research/base-model/make_val.sh [OUT] (default runs/val).
set -euo pipefail
OUT=${1:-runs/val}
OAIMS=${OAIMS:-.venv/bin/oaims}
T=3  # 3 x 3 tiles of 128 px per set
"$OAIMS" synth --tiles $T --seed 2001 --out "$OUT/default"
"$OAIMS" synth --tiles $T --seed 2002 --out "$OUT/soft_cells" --blob-p 1 --blob-blur-max 6
"$OAIMS" synth --tiles $T --seed 2003 --out "$OUT/nested" --nested-p 1
"$OAIMS" synth --tiles $T --seed 2004 --out "$OUT/dark_in_texture" --dark-in-texture-p 1
"$OAIMS" synth --tiles 4 --seed 2005 --out "$OUT/thin" --thin-p 1
"$OAIMS" synth --tiles $T --seed 2006 --out "$OUT/touching" --touching-p 1
"$OAIMS" synth --tiles 4 --seed 2007 --out "$OUT/speckle" --speckle-p 1
"$OAIMS" synth --tiles $T --seed 2008 --out "$OUT/histology" --histology-p 1
"$OAIMS" synth --tiles $T --seed 2009 --out "$OUT/gradient" --gradient-p 1
"$OAIMS" synth --tiles $T --seed 2010 --out "$OUT/halo" --halo-p 1 --blob-blur-max 4
"$OAIMS" synth --tiles $T --seed 2011 --out "$OUT/lesion" --lesion-p 1
"$OAIMS" synth --tiles $T --seed 2012 --out "$OUT/cavity" --cavity-p 1
