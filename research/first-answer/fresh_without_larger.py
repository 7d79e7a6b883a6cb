"""``oaims bench clicks --fresh`` with the larger-window rule switched off (``answer.checks_size``
patched to False): the first object of a session as it was answered before the rule.

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/first-answer/fresh_without_larger.py IMAGE LABELS OUT.json
"""

import sys

from napari_oaims import answer
from napari_oaims.evaluation import clicks
from napari_oaims.evaluation.common import Protocol

answer.checks_size = lambda *args: False
results = clicks.compare_methods(sys.argv[1], sys.argv[2], ["model"], Protocol(device="cpu", fresh=True), out=sys.argv[3])
print(clicks.report(results))
