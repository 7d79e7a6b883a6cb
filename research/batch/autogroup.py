"""Why 2 local workers scale poorly on a shared Linux machine: the kernel's autogroup scheduler.

With ``/proc/sys/kernel/sched_autogroup_enabled`` = 1, CPU time is shared fairly between
*sessions*, not processes. A LocalCluster's worker processes are in the driver's session, so
under load from other sessions they share one session's CPU share, however many there are.
This runs the 4-volume ``frozen`` scaling (the ``oaims bench batch`` jobs, warm workers) three
interleaved rounds with the workers in the driver's session ("shared"), then again after each
worker moved to a session of its own with ``os.setsid()`` ("own").

    OMP_NUM_THREADS=1 .venv/bin/python research/batch/autogroup.py shared own
"""

import os
import sys
import tempfile
from pathlib import Path

from napari_oaims.evaluation import batch as eb


def group() -> str:
    """This process's autogroup."""
    return Path("/proc/self/autogroup").read_text().split()[0]


def own_session() -> str:
    """Move this (worker) process to a new session, hence a new autogroup."""
    os.setsid()
    return group()


if __name__ == "__main__":  # worker processes re-import this file
    root = Path(tempfile.mkdtemp())
    manifest, truth = eb.write_volumes(root / "data", 4, (16, 96, 96), 0)
    print("driver", group())
    clusters = {n: eb._cluster(n) for n in (1, 2)}
    for n, (_, client) in clusters.items():
        eb._warm(client, None, "cpu")
        print(n, "workers in", sorted(client.run(group).values()))
    walls: dict[tuple[str, int], list[float]] = {}
    for mode in sys.argv[1:]:
        if mode == "own":
            for n, (_, client) in clusters.items():
                print(n, "workers now in", sorted(client.run(own_session).values()))
        for _ in range(3):
            for n, (_, client) in clusters.items():
                r = eb._scaling_run(client, manifest, root / f"out{n}", truth, "frozen", None, "cpu")
                walls.setdefault((mode, n), []).append(r["wall_s"])
        ratios = sorted(a / b for a, b in zip(walls[(mode, 1)], walls[(mode, 2)]))
        print(
            mode,
            {n: [round(w, 2) for w in walls[(mode, n)]] for n in (1, 2)},
            "speed-ups",
            [round(x, 2) for x in ratios],
            "load",
            [round(v, 2) for v in os.getloadavg()],
        )
    for cluster, client in clusters.values():
        client.close()
        cluster.close()
