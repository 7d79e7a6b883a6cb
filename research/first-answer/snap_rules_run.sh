cd /work/main
OUT=/tmp/ev; mkdir -p $OUT
run() { # name image labels
  for mode in auto never snap; do
    [ -f $OUT/$1_$mode.json ] && continue
    PYTHONPATH=src OMP_NUM_THREADS=1 /work/venv/bin/python /tmp/ev.py bench clicks --image $2 --labels $3 --methods model --clicks 10 --device cpu --max-targets 30 --edges $mode --out $OUT/$1_$mode.json 2>/dev/null | grep "^EV" > $OUT/$1_$mode.ev
  done
}
if [ "$1" = a ]; then
  for k in lesions cavities neighbours uniform organs; do run s0_$k runs/suites/$k/image.tif runs/suites/$k/labels.tif; done
  for k in lesions cavities neighbours uniform organs; do run s1_$k /tmp/s1/$k/image.tif /tmp/s1/$k/labels.tif; done
else
  for v in touching default halo histology soft_cells nested lesion cavity speckle thin gradient dark_in_texture; do run val_$v runs/val/$v/image.tif runs/val/$v/labels.tif; done
fi
