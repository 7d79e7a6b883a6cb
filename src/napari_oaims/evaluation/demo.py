"""``oaims demo``: the main job on the bundled nuclei sample.

With a display (and without ``--headless``) it opens napari with the sample and the annotator.
Otherwise it runs the same annotation with the simulated user (seed 000 robot): the frozen model
and the adapting one (OAIMS) on the same targets, saves Dice-vs-clicks results and a plot, and the
adapting run's session (accepted labels, interaction log, adapted weights) as ``.oaims.zarr``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np


def has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


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
            object_id = self.session.object_id
            self.session.accept()
            self.store.commit_object(object_id, mask)
        else:
            self.session.clear()


def run_headless(out: Path, objects: int, clicks: int, seed: int, device: str) -> dict:
    from tqdm import tqdm

    from napari_oaims.data import sample_nuclei
    from napari_oaims.evaluation.common import ModelMethod, format_table, plot_curves, run_targets, summary_row, target_ids, write_json
    from napari_oaims.engine import Engine
    from napari_oaims.simulate.robot import Robot

    image, labels = sample_nuclei()
    ids = target_ids(labels)
    ids = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))][:objects]
    out.mkdir(parents=True, exist_ok=True)
    rows, curves = {}, {}
    for mode in ("none", "oaims"):
        engine = Engine.pretrained(device=device, adaptation=mode)
        method = _StoredMethod(engine, image, out / "demo.oaims.zarr") if mode == "oaims" else ModelMethod(engine, image)
        bar = tqdm(total=len(ids), desc=f"robot user, adaptation={mode}", unit="object")
        res = run_targets(method, labels, ids, Robot(seed=seed), clicks, progress=lambda i, n: bar.update(1))
        bar.close()
        name = "frozen" if mode == "none" else "oaims (learning)"
        rows[name] = summary_row(res, ks=(1, 3, 5))
        rows[name]["updates"] = engine.updates
        curves[name] = res["curves"]
        if mode == "oaims":
            method.store.save_model(engine)
    cols = ["dice@1", "dice@3", "dice@5", "noc@0.85", "auc", "latency_p50_ms", "updates"]
    print(format_table(rows, cols))
    write_json({"objects": ids, "clicks": clicks, "rows": rows, "curves": curves}, out / "demo_results.json")
    plot_curves(curves, out / "demo_dice_vs_clicks.png", f"nuclei sample: {len(ids)} objects, robot user")
    print(f"saved {out / 'demo_results.json'}, {out / 'demo_dice_vs_clicks.png'} and the session {out / 'demo.oaims.zarr'}")
    return rows


def run(args: argparse.Namespace) -> int:
    if args.headless or not has_display():
        if not args.headless:
            print("no display found: running the annotation headless with the simulated user")
        run_headless(Path(args.out), args.objects, args.clicks, args.seed, args.device)
        return 0
    import napari

    from napari_oaims.data import sample_nuclei
    from napari_oaims.plugin.api import annotate

    image, _ = sample_nuclei()
    annotate(image, device=args.device, adaptation="oaims")
    napari.run()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job: napari on the nuclei sample, or headless with a simulated user")
    p.add_argument("--headless", action="store_true", help="no GUI: annotate with the simulated user")
    p.add_argument("--out", default="results/demo")
    p.add_argument("--objects", type=int, default=30)
    p.add_argument("--clicks", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)
