#!/bin/bash
# The first-answer suites through `oaims bench clicks`: bash run_suites.sh SRC TAG [METHODS]
# (SRC: the package source to run, e.g. src; the suites are written first with
#  oaims synth --suite NAME --tiles 3 --seed 0 --out $SUITES/NAME).
SRC=$1; TAG=$2; METHODS=${3:-model,random_walker,watershed}; SUITES=${SUITES:-/tmp/i35/suites}
OUT=${OUT:-research/first-answer/results}
for k in cavities uniform lesions neighbours; do
  echo "== $k"
  PYTHONPATH=$SRC OMP_NUM_THREADS=2 nice -n 5 python -c "import sys; from napari_oaims.cli import main; sys.exit(main(sys.argv[1:]))" \
    bench clicks --image $SUITES/$k/image.tif --labels $SUITES/$k/labels.tif --methods $METHODS \
    --clicks 10 --max-targets 30 --out $OUT/${TAG}_$k.json
done
