"""``oaims bench propagate --all-objects``: every object of one slice carried at once
(:meth:`Session.propagate_objects`, *Propagate all*), seeded exactly from the truth on that slice.

Two seeds slices per volume: the target's fullest slice, and its last slice (where it is an
end-cap and the neighbour that touches it along the axis begins). Reported per object: 3D Dice
against its truth, the voxels it took from other objects' truth, and its seed's size; per method:
mean and lowest Dice, objects below Dice 0.5, voxels taken, seconds per call.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_oaims.core.progress import CancelLike, Progress, check_cancel, emit
from napari_oaims.evaluation.metrics import dice


def seeds_slices(target: np.ndarray) -> dict[str, int]:
    """The seeds slices of a case: ``{"fullest": z, "end": z}`` (one entry when they coincide)."""
    areas = target.sum(axis=(1, 2))
    out = {"fullest": int(np.argmax(areas)), "end": int(np.flatnonzero(areas)[-1])}
    return out if out["end"] != out["fullest"] else {"fullest": out["fullest"]}


def object_rows(engine, case: dict, method: str, settings: dict | None = None) -> list[dict]:
    """One ``propagate_objects`` call per seeds slice of ``case``; a row per object."""
    image, labels = case["image"], case["labels"]
    rows = []
    for where, z in seeds_slices(case["target"]).items():
        session = engine.session(image, plane_axes=(1, 2))
        t0 = time.perf_counter()
        out = session.propagate_objects(labels[z], plane=(z,), axis=0, method=method, settings=settings)
        seconds = time.perf_counter() - t0
        for accepted, label in zip(out.objects, out.labels):
            truth = labels == label
            rows.append(
                {
                    "method": method,
                    "case": case["name"],
                    "seeds": where,
                    "slice": z,
                    "object": int(label),
                    "seed_px": int((labels[z] == label).sum()),
                    "dice": round(float(dice(accepted.mask, truth)), 4),
                    "taken": int((accepted.mask & (labels > 0) & ~truth).sum()),
                    "seconds": round(seconds, 2),
                }
            )
    return rows


def bench_objects(
    cases: list[dict],
    methods: Sequence[str],
    device: str = "cpu",
    weights: str | None = None,
    settings: dict | None = None,
    progress: Progress | None = None,
    cancel: CancelLike = None,
) -> dict[str, Any]:
    """Rows (:func:`object_rows`) for every case and method, their summary and tables."""
    from napari_oaims.engine import Engine

    rows = []
    for m in methods:
        for i, case in enumerate(cases):
            check_cancel(cancel)
            engine = Engine.pretrained(device=device, weights=weights)  # fresh weights per case: no learning
            rows += object_rows(engine, case, m, settings)
            emit(progress, i + 1, len(cases), f"propagating all objects ({m})")
    summary = {}
    for m in methods:
        rs = [r for r in rows if r["method"] == m]
        calls = {(r["case"], r["seeds"]): r["seconds"] for r in rs}
        summary[m] = {
            "objects": len(rs),
            "mean_dice": round(float(np.mean([r["dice"] for r in rs])), 4) if rs else float("nan"),
            "min_dice": round(float(min(r["dice"] for r in rs)), 4) if rs else float("nan"),
            "below_0.5": int(sum(r["dice"] < 0.5 for r in rs)),
            "taken": int(sum(r["taken"] for r in rs)),
            "s_per_call": round(float(np.median(list(calls.values()))), 2) if calls else float("nan"),
        }
    return {"rows": rows, "summary": summary, "table": format_objects(rows, summary)}


def format_objects(rows: list[dict], summary: dict[str, dict]) -> str:
    """Markdown tables: every object, then the summary per method."""
    head = ["method", "case", "seeds", "object", "seed px", "3D Dice", "taken"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [r["method"], r["case"], f"{r['seeds']} ({r['slice']})", r["object"], r["seed_px"]]
        lines.append("| " + " | ".join(map(str, [*cells, f"{r['dice']:.3f}", r["taken"]])) + " |")
    cols = ["objects", "mean_dice", "min_dice", "below_0.5", "taken", "s_per_call"]
    lines += ["", "| method | " + " | ".join(cols) + " |", "|" + " --- |" * (len(cols) + 1)]
    for m, row in summary.items():
        lines.append(f"| {m} | " + " | ".join(str(row[c]) for c in cols) + " |")
    return "\n".join(lines)
