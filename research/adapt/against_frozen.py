"""MI (or any method) against frozen at Dice@1/5/10, per shift: the frozen curves of a reference
``oaims bench adapt`` result, the method's from other results.

    python research/adapt/against_frozen.py REFERENCE.json[.gz] METHOD RESULT.json [RESULT.json ...]
"""

import gzip
import json
import sys

import numpy as np


def load(path: str) -> dict:
    with (gzip.open if path.endswith(".gz") else open)(path, "rt") as f:
        return json.load(f)


def main() -> None:
    ref, method, *paths = sys.argv[1:]
    frozen = {sh: np.array(v["main"]["methods"]["none"]["curves"]) for sh, v in load(ref)["shifts"].items()}
    for path in paths:
        for sh, v in load(path)["shifts"].items():
            c = np.array(v["main"]["methods"][method]["curves"])
            gaps = [100 * (c[:, k - 1] - frozen[sh][:, k - 1]).mean() for k in (1, 5, 10)]
            print(f"{path}  {sh:8s} {method}-frozen at 1/5/10: " + " / ".join(f"{g:+.1f}" for g in gaps))


if __name__ == "__main__":
    main()
