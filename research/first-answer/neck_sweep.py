"""neck_bench.py (or another script of this folder) with the neck rule of necks.py in the answer
step, its share and smallest dropped part (px) from the command line; share 0 runs without it:

    PYTHONPATH=SRC python research/first-answer/neck_sweep.py SHARE MIN_PART neck_bench.py OUT.json \
        NAME=IMAGE,LABELS ...
    PYTHONPATH=SRC python research/first-answer/neck_sweep.py SHARE MIN_PART sample3d.py OUT.json
"""

import runpy
import sys

sys.path.insert(0, "research/first-answer")
import necks  # noqa: E402

share, min_part, script = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
if share > 0:
    necks.patch(share, min_part)
sys.argv = [script] + sys.argv[4:]
runpy.run_path(f"research/first-answer/{script}", run_name="__main__")
