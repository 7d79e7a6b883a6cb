"""``oaims bench propagate``: the 3D effort protocol for propagation methods (plain functions).

The robot annotates the object's largest slice (clicks at the centre of the largest error, up to
``anchor_clicks``, until that slice reaches Dice ``anchor_target``), propagates, then clicks at
the centre of the largest error on the slice with the most wrong voxels (or on the slice
:meth:`Session.suggest_slice` names, for ``ema+suggest``), re-propagating after each click, until
the object reaches 3D Dice ``target`` (cap ``cap`` clicks, anchor clicks included).

Reported per case and method: clicks to the target (``cap`` when not reached), first Dice, the
worst drop of 3D Dice after a correction and how many corrections lowered it by more than
:data:`DROP`, voxels of other objects inside the mask (first, final), refused clicks, slices
touched, Dice per slice by distance to the nearest anchor (drift), ms per slice and per click.
Data: the procedural suites of :mod:`napari_oaims.training.volumes`, or a labelled 3D stack (the
``max_objects`` largest objects). Many objects at once: :mod:`.propagate_objects`; memory: :mod:`.propagate_memory`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_oaims.core.progress import CancelLike, Progress, check_cancel, emit
from napari_oaims.evaluation.metrics import dice
from napari_oaims.simulate.clicks import click_in_region, largest_error_component

#: Methods of the benchmark: the propagation methods, and ``ema`` steered by ``suggest_slice``.
BENCH_METHODS = ("ema", "frozen", "registration", "copy", "ema+suggest")
#: A correction that lowers 3D Dice by more than this counts as a drop.
DROP = 0.01


def _click(session, coords, positive, latencies: list[float]):
    t0 = time.perf_counter()
    out = session.click(coords, positive=positive)
    latencies.append((time.perf_counter() - t0) * 1e3)
    return out


def _full(axis_pos: int, yx, axis: int = 0) -> tuple[int, int, int]:
    return (axis_pos, int(yx[0]), int(yx[1]))


def run_case(
    engine,
    image: np.ndarray,
    target: np.ndarray,
    method: str = "ema",
    target_dice: float = 0.9,
    cap: int = 50,
    anchor_clicks: int = 5,
    anchor_target: float = 0.9,
    settings: dict | None = None,
    first_only: bool = False,
    cancel: CancelLike = None,
    keep_mask: bool = False,
    others: np.ndarray | None = None,
) -> dict[str, Any]:
    """The protocol on one object (``target``, bool, the image's shape; propagation along axis 0
    with planes (1, 2)). Returns the case's numbers (see the module docstring); ``first_only``:
    stop after the first propagation; ``keep_mask``: add the final mask as ``"mask"``; ``cancel`` is
    checked before each correction (:class:`~napari_oaims.core.progress.Cancelled`); ``others``: the
    voxels of other objects (bool), counted when the mask takes them."""
    if method not in BENCH_METHODS:
        raise ValueError(f"unknown benchmark method {method!r}; use one of {BENCH_METHODS}")
    target = np.asarray(target, bool)
    if target.ndim != 3 or not target.any():
        raise ValueError("the target must be a non-empty 3D mask")
    prop_method = "ema" if method == "ema+suggest" else method
    session = engine.session(image, plane_axes=(1, 2))
    areas = target.sum((1, 2))
    z0 = int(np.argmax(areas))
    latencies: list[float] = []
    clicks = refused = 0
    mask = np.zeros(target.shape, bool)

    def click(z, yx, positive):
        nonlocal refused
        try:
            return _click(session, _full(z, yx), positive, latencies).mask
        except ValueError:  # the session refused the click: counted, the robot goes on
            refused += 1
            return session.mask

    for _ in range(min(anchor_clicks, cap)):
        err = largest_error_component(mask[z0], target[z0])
        if err is None:
            break
        yx = click_in_region(err[0])
        mask = click(z0, yx, err[1])
        clicks += 1
        if dice(mask[z0], target[z0]) >= anchor_target:
            break
    anchor_dice = dice(mask[z0], target[z0])
    prop_ms: list[float] = []
    touched = {z0}

    def propagate():
        res = session.propagate(axis=0, method=prop_method, settings=settings)
        if res.info.get("ms_per_slice") is not None:
            prop_ms.append(res.info["ms_per_slice"])
        return res.mask

    mask = propagate()
    first_mask = mask
    first = dice(mask, target)
    drift = _drift(mask, target, sorted(k[0] for k, st in session.planes.items() if st.prompts))
    curve = [first]
    suggested = 0
    while not first_only and dice(mask, target) < target_dice and clicks < cap:
        check_cancel(cancel)
        wrong = (mask ^ target).sum((1, 2))
        if not wrong.any():
            break
        z = int(np.argmax(wrong))
        if method == "ema+suggest":
            zs = session.suggest_slice(axis=0)
            if zs is not None and wrong[zs] > 0:
                z, suggested = zs, suggested + 1
        err = largest_error_component(mask[z], target[z])
        yx = click_in_region(err[0])
        click(z, yx, err[1])
        clicks += 1
        touched.add(z)
        mask = propagate()
        curve.append(dice(mask, target))
    final = dice(mask, target)
    reached = final >= target_dice
    steps = np.diff(curve) if len(curve) > 1 else np.zeros(0)
    others = np.zeros(target.shape, bool) if others is None else np.asarray(others, bool) & ~target
    return {
        "method": method,
        "clicks": clicks if reached else cap,
        "reached": bool(reached),
        "clicks_used": clicks,
        "anchor_dice": round(anchor_dice, 4),
        "first_dice": round(first, 4),
        "final_dice": round(final, 4),
        "slices_touched": len(touched),
        "object_slices": int((areas > 0).sum()),
        "curve": [round(c, 4) for c in curve],
        "worst_drop": round(float(max(0.0, -steps.min())), 4) if len(steps) else 0.0,
        "drops": int((steps < -DROP).sum()),
        "corrections": len(steps),
        "refused": refused,
        "taken_first": int((first_mask & others).sum()),
        "taken_final": int((mask & others).sum()),
        "drift": drift,
        "ms_per_slice": float(np.mean(prop_ms)) if prop_ms else None,
        "click_ms": float(np.median(latencies)) if latencies else None,
        "suggested": suggested,
        **({"mask": mask} if keep_mask else {}),
    }


def _drift(mask: np.ndarray, target: np.ndarray, anchors: Sequence[int]) -> list[list[float]]:
    """``[distance to the nearest anchor, Dice]`` for every slice holding the object or the mask."""
    out = []
    for z in range(target.shape[0]):
        if (target[z].any() or mask[z].any()) and anchors:
            d = min(abs(z - a) for a in anchors)
            out.append([int(d), round(dice(mask[z], target[z]), 4)])
    return out


def procedural_cases(
    n_per_kind: int = 2, shape=(24, 64, 64), seed: int = 0, kinds=None, failures: bool = False
) -> list[dict]:
    """Cases of the procedural suite (``failures``: of the failure kinds, whose default shape is
    :data:`~napari_oaims.training.volumes.FAILURE_SHAPE`): ``{"name", "kind", "image", "target",
    "others", "spec"}``."""
    from napari_oaims.training.volumes import KINDS, failure_suite, make_volume, suite

    specs = (
        failure_suite(n_per_kind, tuple(shape), seed)
        if failures
        else suite(n_per_kind, tuple(shape), seed, kinds or KINDS)
    )
    out = []
    for i, spec in enumerate(specs):
        image, labels = make_volume(spec)
        out.append(
            {
                "name": f"{spec.kind}_{i}",
                "kind": spec.kind,
                "image": image,
                "target": labels == 1,
                "others": labels > 1,
                "labels": labels,
                "spec": spec.to_dict(),
            }
        )
    return out


def stack_cases(
    image_path: str | Path,
    labels_path: str | Path,
    max_objects: int | None = 8,
    min_slices: int = 3,
    crop_margin: int = 12,
) -> list[dict]:
    """Cases from a labelled 3D stack: the ``max_objects`` largest objects spanning at least
    ``min_slices`` slices, each in a crop around it (the whole z range; ``crop_margin`` px in y/x)."""
    from napari_oaims.core.files import read_array

    image, labels = read_array(image_path), read_array(labels_path)
    if labels.ndim != 3 or labels.shape != image.shape[:3]:
        raise ValueError(f"need a 3D image and matching labels, got {image.shape} and {labels.shape}")
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    order = [int(i) for i in ids[np.argsort(counts)[::-1]]]
    out = []
    for lid in order:
        m = labels == lid
        zs = np.flatnonzero(m.any((1, 2)))
        if len(zs) < min_slices:
            continue
        ys, xs = np.flatnonzero(m.any((0, 2))), np.flatnonzero(m.any((0, 1)))
        y0, y1 = max(ys[0] - crop_margin, 0), min(ys[-1] + 1 + crop_margin, m.shape[1])
        x0, x1 = max(xs[0] - crop_margin, 0), min(xs[-1] + 1 + crop_margin, m.shape[2])
        out.append(
            {
                "name": f"object_{lid}",
                "kind": "stack",
                "image": np.asarray(image[:, y0:y1, x0:x1]),
                "target": m[:, y0:y1, x0:x1],
                "others": (labels[:, y0:y1, x0:x1] > 0) & ~m[:, y0:y1, x0:x1],
                "labels": labels[:, y0:y1, x0:x1],
                "spec": {"label": lid, "crop": [int(y0), int(y1), int(x0), int(x1)]},
            }
        )
        if max_objects is not None and len(out) >= max_objects:
            break
    return out


def load_cases(
    data: str, n_per_kind: int = 2, shape=None, stack=None, max_objects: int | None = 8, seed: int = 0
) -> list[dict]:
    """The cases of ``data``: ``"procedural"``, ``"failures"`` (volumes drawn with ``seed``) or
    ``"stack"`` (``stack``: paths)."""
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a whole number, at least 0; got {seed!r}")
    if data == "procedural":
        return procedural_cases(n_per_kind, shape or (24, 64, 64), seed)
    if data == "failures":
        from napari_oaims.training.volumes import FAILURE_SHAPE

        return procedural_cases(n_per_kind, shape or FAILURE_SHAPE, seed, failures=True)
    if data == "stack":
        if stack is None:
            raise ValueError("data='stack' needs stack=(image path, labels path)")
        return stack_cases(*stack, max_objects=max_objects)
    raise ValueError(f"unknown data {data!r}; use 'procedural', 'failures' or 'stack'")


def summarise(rows: list[dict], smooth_kinds=("ellipsoid", "abrupt")) -> dict[str, dict]:
    """Per method: median clicks, mean first-propagation Dice, medians on smooth shapes, slices
    touched, cost per slice and per click, and drift (mean Dice by distance to the anchor)."""
    out: dict[str, dict] = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method]
        smooth = [r for r in rs if r.get("kind") in smooth_kinds]
        drift: dict[int, list[float]] = {}
        for r in rs:
            for d, v in r["drift"]:
                drift.setdefault(int(d), []).append(v)
        ms = [r["ms_per_slice"] for r in rs if r["ms_per_slice"] is not None]
        cms = [r["click_ms"] for r in rs if r["click_ms"] is not None]
        out[method] = {
            "cases": len(rs),
            "clicks_median": float(np.median([r["clicks"] for r in rs])),
            "clicks_mean": float(np.mean([r["clicks"] for r in rs])),
            "reached": float(np.mean([r["reached"] for r in rs])),
            "first_dice": float(np.mean([r["first_dice"] for r in rs])),
            "final_dice": float(np.mean([r["final_dice"] for r in rs])),
            "smooth_clicks_median": float(np.median([r["clicks"] for r in smooth])) if smooth else float("nan"),
            "smooth_first_dice": float(np.mean([r["first_dice"] for r in smooth])) if smooth else float("nan"),
            "slices_touched": float(np.mean([r["slices_touched"] for r in rs])),
            "worst_drop": float(max(r.get("worst_drop", 0.0) for r in rs)),
            "drop_share": float(sum(r.get("drops", 0) for r in rs) / max(sum(r.get("corrections", 0) for r in rs), 1)),
            "refused": int(sum(r.get("refused", 0) for r in rs)),
            "taken_first": float(np.mean([r.get("taken_first", 0) for r in rs])),
            "taken_final": float(np.mean([r.get("taken_final", 0) for r in rs])),
            "ms_per_slice": float(np.median(ms)) if ms else float("nan"),
            "click_ms": float(np.median(cms)) if cms else float("nan"),
            "drift": {d: round(float(np.mean(v)), 4) for d, v in sorted(drift.items())},
        }
        out[method]["slice_per_click"] = out[method]["ms_per_slice"] / out[method]["click_ms"]
    return out


def bench_propagate(
    methods: Sequence[str] = BENCH_METHODS,
    data: str = "procedural",
    n_per_kind: int = 2,
    shape=None,
    stack: tuple[str, str] | None = None,
    max_objects: int | None = 8,
    target_dice: float = 0.9,
    cap: int = 50,
    device: str = "cpu",
    weights: str | None = None,
    settings: dict | None = None,
    first_only: bool = False,
    out: str | Path | None = None,
    progress: Progress | None = None,
    cancel: CancelLike = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the protocol for ``methods`` on ``data`` (``"procedural"`` or ``"failures"``, volumes
    drawn with ``seed``, or ``"stack"`` with ``stack=(image path, labels path)``); write
    ``propagate_<data>.json`` and a plot into ``out``.

    Returns ``{"settings", "rows", "summary", "table"}``.
    """
    from napari_oaims.engine import Engine

    unknown = [m for m in methods if m not in BENCH_METHODS]
    if unknown:
        raise ValueError(f"unknown benchmark methods {unknown}; use some of {BENCH_METHODS}")
    if seed and data == "stack":
        raise ValueError("seed draws procedural volumes; a stack has none to draw")
    cases = load_cases(data, n_per_kind, shape, stack, max_objects, seed)
    rows = []
    total = len(cases) * len(methods)
    for m in methods:
        for case in cases:
            check_cancel(cancel)
            engine = Engine.pretrained(device=device, weights=weights)  # fresh weights per case: no learning
            t0 = time.perf_counter()
            row = run_case(
                engine,
                case["image"],
                case["target"],
                m,
                target_dice,
                cap,
                settings=settings,
                first_only=first_only,
                cancel=cancel,
                others=case.get("others"),
            )
            row.update({"case": case["name"], "kind": case["kind"], "seconds": round(time.perf_counter() - t0, 2)})
            rows.append(row)
            emit(progress, len(rows), total, "propagate")
    summary = summarise(rows)
    result = {
        "settings": {
            "methods": list(methods),
            "data": data,
            "n_per_kind": n_per_kind,
            "seed": seed,
            "shape": list(shape) if shape else None,
            "stack": list(stack) if stack else None,
            "max_objects": max_objects,
            "target_dice": target_dice,
            "cap": cap,
            "device": device,
            "weights": weights,
            "propagate_settings": settings,
            "first_only": first_only,
        },
        "rows": rows,
        "summary": summary,
        "table": format_summary(summary),
        "cases_table": format_cases(rows),
    }
    if out is not None:
        from napari_oaims.evaluation.common import write_json

        out = Path(out)
        write_json(result, out / f"propagate_{data}.json")
        plot_summary(rows, out / f"propagate_{data}.png", f"propagation, {data} ({len(cases)} objects)")
    return result


def format_summary(summary: dict[str, dict]) -> str:
    """A markdown table of :func:`summarise`."""
    cols = [
        "cases",
        "clicks_median",
        "clicks_mean",
        "reached",
        "first_dice",
        "final_dice",
        "worst_drop",
        "drop_share",
        "taken_first",
        "taken_final",
        "refused",
        "smooth_clicks_median",
        "smooth_first_dice",
        "slices_touched",
        "ms_per_slice",
        "click_ms",
        "slice_per_click",
    ]
    lines = ["| method | " + " | ".join(cols) + " |", "|" + " --- |" * (len(cols) + 1)]
    for m, row in summary.items():
        cells = [f"{row[c]:.3g}" if isinstance(row[c], float) else str(row[c]) for c in cols]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_cases(rows: list[dict]) -> str:
    """A markdown table of every case: clicks, first and final Dice, worst drop, drops, voxels taken."""
    head = ["method", "case", "clicks", "first Dice", "final Dice", "worst drop", "drops", "taken first"]
    head += ["taken final", "refused"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r.get('case', '')} | {r['clicks']} | {r['first_dice']:.3f} | {r['final_dice']:.3f} | "
            f"{r.get('worst_drop', 0):.3f} | {r.get('drops', 0)}/{r.get('corrections', 0)} | "
            f"{r.get('taken_first', 0)} | {r.get('taken_final', 0)} | {r.get('refused', 0)} |"
        )
    return "\n".join(lines)


def plot_summary(rows: list[dict], path: str | Path, title: str) -> None:
    """Clicks to the target per method (box plot) and drift (mean Dice vs distance to the anchor)."""
    from napari_oaims.evaluation.common import pyplot

    plt = pyplot()

    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.boxplot([[r["clicks"] for r in rows if r["method"] == m] for m in methods])
    a1.set_xticks(range(1, len(methods) + 1), methods, rotation=20)
    a1.set_ylabel("clicks to 3D Dice target")
    a1.set_title(title)
    a1.grid(alpha=0.3)
    summary = summarise(rows)
    for m in methods:
        d = summary[m]["drift"]
        a2.plot(list(d), list(d.values()), marker="o", ms=3, label=m)
    a2.set_xlabel("slices from the anchor (first propagation)")
    a2.set_ylabel("mean slice Dice")
    a2.grid(alpha=0.3)
    a2.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
