W=/work/wt/c35model/runs/c35/candidate2.safetensors
run() { OMP_NUM_THREADS=1 oaims bench clicks --image $1/image.tif --labels $1/labels.tif --methods model --clicks 10 --max-targets 30 --weights $W --device cpu --out /tmp/c2/$2.json > /tmp/c2/$2.log 2>&1; }
(run /tmp/s1/lesions les_s1; run runs/suites/lesions les_s0; run /tmp/s1/neighbours nb_s1) &
(run /tmp/s1/cavities cav_s1; run /tmp/s1/organs org_s1; run runs/suites/neighbours nb_s0) &
wait
