"""``oaims demo``: the main job on the bundled nuclei sample.

With a display, :func:`open_in_napari` opens napari with the sample and the annotator. Without
one, :func:`run_headless` runs the same annotation with a simulated user (the seed 000 robot):
the frozen model and the learning one (OAIMS) on the same nuclei; it saves Dice-vs-clicks results
and a plot, and the learning run's session (accepted labels, interaction log, adapted weights) as
``.oaims.zarr``. :func:`summary_table` says in plain words how the two did.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from napari_oaims.core.progress import Progress, scoped

#: An outline is "good" when its Dice overlap with the expert's outline reaches this.
GOOD_DICE = 0.85
#: Click latencies of this many first objects are left out of the typical time (warm-up).
WARMUP_OBJECTS = 1
NAMES = {"none": "frozen model", "oaims": "learning model (OAIMS)"}


def has_display() -> bool:
    """Whether a window can be opened (always on macOS and Windows; X11 or Wayland on Linux)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_in_napari(device: str = "auto") -> None:
    """Open napari on the nuclei sample with the annotator (learning from clicks) and run it."""
    import napari

    from napari_oaims.data import sample_nuclei
    from napari_oaims.plugin.api import annotate

    image, _ = sample_nuclei()
    annotate(image, device=device, adaptation="oaims")
    napari.run()


class _StoredMethod:
    """The model through a session that autosaves into a :class:`SessionStore`."""

    def __init__(self, engine, image, store_path: Path):
        from napari_oaims.store.session_store import SessionStore

        self.session = engine.session(image)
        self.store = SessionStore.create(store_path, image, engine=engine, session=self.session, overwrite=True)

    def start(self) -> None:
        pass

    def click(self, c):
        return self.session.click((c.y, c.x), positive=c.positive).mask

    def finish(self, mask: np.ndarray) -> None:
        if mask.any():
            self.session.accept()  # the store autosaves the accepted object
        else:
            self.session.clear()


def plain_summary(
    curves: list[list[float]], target_latency_ms: list[list[float]], updates: int, ks: tuple[int, ...]
) -> dict:
    """What :func:`summary_table` shows for one model: ``good_within`` (k -> nuclei whose outline was
    good after at most k clicks; a user would accept it then), the mean clicks to a good outline
    over the nuclei that got one, the nuclei that ``never_good``, the median click latency after
    :data:`WARMUP_OBJECTS` warm-up objects and the number of updates."""
    reached = [next((k + 1 for k, d in enumerate(c) if d >= GOOD_DICE), None) for c in curves]
    hits = [r for r in reached if r is not None]
    timed = target_latency_ms[WARMUP_OBJECTS:] if len(target_latency_ms) > WARMUP_OBJECTS else target_latency_ms
    ms = [v for per in timed for v in per]
    return {
        "objects": len(curves),
        "good_within": {str(k): sum(r is not None and r <= k for r in reached) for k in ks},
        "clicks_to_good_mean": float(np.mean(hits)) if hits else float("nan"),
        "never_good": len(curves) - len(hits),
        "click_ms_median": float(np.median(ms)) if ms else float("nan"),
        "updates": int(updates),
    }


def run_headless(
    out: str | Path,
    objects: int = 30,
    clicks: int = 5,
    seed: int = 0,
    device: str = "auto",
    progress: Progress | None = None,
) -> dict:
    """Annotate ``objects`` seeded random nuclei of the sample, at most ``clicks`` robot clicks
    each, with the frozen model and then the learning one (``progress(done, total, model)``
    counts objects).

    Writes ``demo_results.json`` (everything returned), ``demo_dice_vs_clicks.png`` and the
    learning run's session ``demo.oaims.zarr`` into ``out``. Returns ``objects`` (ids),
    ``clicks``, ``good_dice``, ``warmup_objects``, per model ``rows`` (the benchmark metrics,
    :func:`~napari_oaims.evaluation.common.summary_row`), ``plain`` (:func:`plain_summary`),
    ``curves`` and ``latency_ms`` (per object), and ``files``.
    """
    from napari_oaims.data import sample_nuclei
    from napari_oaims.engine import Engine
    from napari_oaims.evaluation.common import (
        ModelMethod,
        plot_curves,
        run_targets,
        summary_row,
        target_ids,
        write_json,
    )
    from napari_oaims.simulate.robot import Robot

    if objects < 1 or clicks < 1:
        raise ValueError(f"objects and clicks must be at least 1, got {objects} and {clicks}")
    out = Path(out)
    image, labels = sample_nuclei()
    ids = target_ids(labels)
    ids = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))][:objects]
    ks = tuple(sorted({k for k in (1, 3, 5, 10) if k <= clicks} | {clicks}))
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "results": out / "demo_results.json",
        "plot": out / "demo_dice_vs_clicks.png",
        "session": out / "demo.oaims.zarr",
    }
    rows, plain, curves, latency = {}, {}, {}, {}
    for mode, name in NAMES.items():
        engine = Engine.pretrained(device=device, adaptation=mode)
        method = _StoredMethod(engine, image, files["session"]) if mode == "oaims" else ModelMethod(engine, image)
        step = scoped(progress, name)
        res = run_targets(method, labels, ids, Robot(seed=seed), clicks, progress=step)
        rows[name] = summary_row(res, ks=ks)
        rows[name]["updates"] = engine.updates
        plain[name] = plain_summary(res["curves"], res["target_latency_ms"], engine.updates, ks)
        curves[name] = res["curves"]
        latency[name] = [[round(v, 2) for v in per] for per in res["target_latency_ms"]]
        if mode == "oaims":
            method.store.save_model(engine)
            method.store.close()
    results = {
        "objects": ids,
        "clicks": clicks,
        "good_dice": GOOD_DICE,
        "warmup_objects": WARMUP_OBJECTS,
        "rows": rows,
        "plain": plain,
        "curves": curves,
        "latency_ms": latency,
        "files": {k: str(v) for k, v in files.items()},
    }
    write_json(results, files["results"])
    plot_curves(curves, files["plot"], f"nuclei sample: {len(ids)} objects, robot user")
    return results


def summary_table(results: dict) -> str:
    """The two models side by side in plain words, each line explained below the table."""
    n, clicks = len(results["objects"]), results["clicks"]
    plain = results["plain"]
    ks = list(next(iter(plain.values()))["good_within"])
    measures = [
        (f"good outline within {k} click{'s' if k != '1' else ''}", lambda p, k=k: f"{p['good_within'][k]} of {n}")
        for k in ks
    ]
    measures += [
        ("clicks to a good outline (mean)", lambda p: f"{p['clicks_to_good_mean']:.1f}"),
        (f"never good within {clicks} clicks", lambda p: str(p["never_good"])),
        ("ms per click (median)", lambda p: f"{p['click_ms_median']:.0f}"),
        ("times the model learned", lambda p: str(p["updates"])),
    ]
    first = max(len(label) for label, _ in measures) + 2
    widths = [max(len(name), 8) for name in plain]
    lines = [
        (
            f"{n} nuclei of the sample, at most {clicks} clicks each (a simulated user clicks on the biggest "
            "mistake each time)"
        ),
        "",
    ]
    lines.append(" " * first + "   ".join(f"{name:>{w}}" for name, w in zip(plain, widths)))
    for label, cell in measures:
        lines.append(f"{label:<{first}}" + "   ".join(f"{cell(p):>{w}}" for p, w in zip(plain.values(), widths)))
    warm = results["warmup_objects"]
    warm = "one warm-up nucleus" if warm == 1 else f"{warm} warm-up nuclei"
    lines += [
        "",
        (
            f"good outline: Dice overlap with the expert's outline of at least {results['good_dice']} "
            "(1 is a perfect match); within k clicks: after at most k (a user would accept it then)."
        ),
        "clicks to a good outline: mean over the nuclei that got one; those that never did are counted below it.",
        (
            f"ms per click: time from a click to its outline, median after {warm}; the learning model's time "
            "includes learning from the click."
        ),
        (
            "times the model learned: updates from the corrections (while clicking and when a nucleus is "
            "accepted); the frozen model never learns."
        ),
    ]
    return "\n".join(lines)
