"""Run ``napari_oaims.evaluation.batch.run`` (the ``oaims bench batch`` benchmark) and save it.

    .venv/bin/python research/batch/bench.py '{"volumes": 4, "shape": [16, 96, 96], "large_gib": 1}' OUT.json
"""

import json
import sys
import time

from napari_oaims.evaluation import batch

if __name__ == "__main__":  # worker processes re-import this file
    kw = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    t0 = time.time()
    result = batch.run(**kw)
    result["total_s"] = round(time.time() - t0, 1)
    print(batch.table(result))
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as fh:
            json.dump(result, fh, indent=2)
