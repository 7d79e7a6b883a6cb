"""Record, for every outward chain, the object's signal per slice (area times contrast over the
anchor's, as :func:`napari_oaims.propagate.stops.waist` sees it) with the waist rule off, next to
what each slice's mask holds (own truth, other objects, background), so that variants of the rule
can be judged without propagating again (``--variants``).

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/propagation/waist_signals.py OUT.json
    python research/propagation/waist_signals.py OUT.json --variants

Volumes: the ``stacked`` failure volumes (every nucleus, one click at the deepest point of its
fullest slice, as ``sample_leak.py``), and the procedural and failure suites (3 per kind, the
benchmark's anchor: up to 5 robot clicks on the fullest slice).
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def record(out_path: str) -> None:
    import torch

    from napari_oaims import Engine
    from napari_oaims.core.clicks import click_in_region
    from napari_oaims.evaluation.propagate import procedural_cases, run_case
    from napari_oaims.propagate import stops
    from napari_oaims.training.volumes import FAILURE_SHAPE

    torch.set_num_threads(1)
    eng = Engine.pretrained(device="cpu")
    calls: dict[int, list] = {}
    real = stops.waist

    def spy(track, signal, pos, settings):
        calls.setdefault(id(track), []).append(
            (int(pos), float(signal), float(track.signal_peak), float(track.contrast), float(track.mean))
        )
        return real(track, signal, pos, settings)

    stops.waist = spy
    off = {"waist": 0.0}  # the rule is asked (and the spy records), it never fires
    rows = []

    def chains(mask, labels, lab, name, image):
        for seq in calls.values():
            sl = []
            for pos, signal, *_ in seq:
                m = mask[pos]
                sl.append(
                    {
                        "pos": pos,
                        "signal": signal,
                        "mean": float(image[pos][m].mean()) if m.any() else None,
                        "area": int(m.sum()),
                        "own": int((m & (labels[pos] == lab)).sum()),
                        "other": int((m & (labels[pos] > 0) & (labels[pos] != lab)).sum()),
                    }
                )
            rows.append(
                {
                    "case": name,
                    "object": lab,
                    "truth": int((labels == lab).sum()),
                    "mask": int(mask.sum()),
                    "mask_own": int((mask & (labels == lab)).sum()),
                    "anchor_signal": seq[0][2],
                    "anchor_contrast": seq[0][3],
                    "anchor_mean": seq[0][4],
                    "slices": sl,
                }
            )

    stacked = [c for c in procedural_cases(3, FAILURE_SHAPE, failures=True) if c["kind"] == "stacked"]
    for c in stacked:
        img, labels = c["image"], c["labels"]
        for lab in [int(v) for v in np.unique(labels) if v > 0]:
            truth = labels == lab
            z = int(np.argmax(truth.sum((1, 2))))
            s = eng.session(img, plane_axes=(1, 2))
            s.click((z, *click_in_region(truth[z])))
            calls.clear()
            m = np.asarray(s.propagate(axis=0, method="frozen", **off).mask, bool)
            chains(m, labels, lab, "stacked/" + c["name"], img)
    guard = procedural_cases(3, (24, 64, 64)) + [
        c for c in procedural_cases(3, FAILURE_SHAPE, failures=True) if c["kind"] != "stacked"
    ]
    for c in guard:
        calls.clear()
        r = run_case(eng, c["image"], c["target"], "frozen", settings=off, first_only=True, keep_mask=True)
        chains(r["mask"], c["labels"], 1, c["kind"] + "/" + c["name"], c["image"])
    with open(out_path, "w") as f:
        json.dump(rows, f)


def fire(slices: list[dict], share: float, regrow: float, anchor_signal: float, rise: float = 0.0) -> int | None:
    """Index (into ``slices``) from which the rule drops the chain's slices, or None (``rise``:
    the signal must also grow by this share of its highest value)."""
    peak = low = anchor_signal
    low_at = None
    for i, sl in enumerate(slices):
        sig = sl["signal"]
        if low <= share * peak and sig >= regrow * max(low, 1e-6) and sig - low >= rise * peak:
            return low_at
        if sig > peak:
            peak = low = sig
            low_at = None
        elif sig <= low:
            low, low_at = sig, i
    return None


def variants(path: str) -> None:
    """Per rule variant, per volume group: mean 3D Dice of the objects (with the slices the rule
    drops taken out), voxels in other objects, and how many chains it stopped."""
    with open(path) as f:
        rows = json.load(f)
    grid = [(0.5, 1.2, 0.0), (0.5, 1.2, 0.05), (0.5, 1.2, 0.06), (0.5, 1.2, 0.08), (0.5, 1.0, 0.05), (0.5, 1.0, 0.08)]
    grid += [(0.5, 1.0, 0.1), (0.4, 1.2, 0.06), (0.6, 1.2, 0.0), (0.6, 1.2, 0.06)]
    for share, regrow, rise in [(0.0, 2.0, 0.0)] + grid:
        objects: dict[tuple, dict] = {}
        fired = {}
        for r in rows:
            key = (r["case"], r["object"])
            o = objects.setdefault(key, {"truth": r["truth"], "mask": r["mask"], "own": r["mask_own"], "other": 0})
            group = r["case"].split("/")[0]
            at = fire(r["slices"], share, regrow, r["anchor_signal"], rise) if share > 0 else None
            kept = r["slices"] if at is None else r["slices"][:at]
            for sl in r["slices"][len(kept) :]:
                o["mask"] -= sl["area"]
                o["own"] -= sl["own"]
            o["other"] += sum(sl["other"] for sl in kept)
            fired[group] = fired.get(group, 0) + (at is not None)
        out = {}
        for key, o in objects.items():
            group = key[0].split("/")[0]
            d = 2 * o["own"] / max(o["mask"] + o["truth"], 1)
            g = out.setdefault(group, [[], 0])
            g[0].append(d)
            g[1] += o["other"]
        print(
            f"share {share} regrow {regrow} rise {rise}: "
            + ", ".join(
                f"{g} {np.mean(v[0]):.4f} (min {min(v[0]):.3f}) other {v[1]} fired {fired[g]}"
                for g, v in sorted(out.items())
            )
        )


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--variants", action="store_true")
    a = p.parse_args()
    if a.variants:
        variants(a.out)
    else:
        record(a.out)
