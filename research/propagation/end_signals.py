"""Record, for every outward chain of the ``stacked`` volumes (one click at the deepest point of
each nucleus's fullest slice, one frozen propagation, the shipped stop rules) and of the
procedural and failure suites (the benchmark's anchor), what the stop rules see per slice (area,
contrast over the anchor's, mean inside the mask) next to what the slice's mask holds (own truth,
other objects and which, background), so that an extra stop rule can be judged offline
(``--variants``: the slices from its cut on taken out of each object's mask; an extra rule only
ever stops a chain earlier, so the slices before are those recorded).

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/propagation/end_signals.py OUT.json [--n 6]
    python research/propagation/end_signals.py OUT.json --variants

``--n``: volumes per failure kind drawn for the ``stacked`` volumes (``failure_suite(n)``).
Per leaked chain it also names the nucleus it ran into: dimmer or brighter than the target
(mean image over each truth), larger or smaller (voxels).
"""

from __future__ import annotations

import argparse
import importlib
import json

import numpy as np


def record(out_path: str, n: int) -> None:
    import torch

    from napari_oaims import Engine
    from napari_oaims.core.clicks import click_in_region
    from napari_oaims.evaluation.propagate import procedural_cases, run_case
    from napari_oaims.propagate import stops
    from napari_oaims.training.volumes import FAILURE_SHAPE, failure_suite, make_volume

    torch.set_num_threads(1)
    eng = Engine.pretrained(device="cpu")
    calls: dict[int, list] = {}
    real = stops.stop_reason

    def spy(ctx, key, mask, prev, track, pos):
        c, mean = ctx.contrast_of(key, mask)
        before = {"prev_mean": track.mean, "prev_peak": int(track.peak), "c0": track.contrast}
        reason = real(ctx, key, mask, prev, track, pos)
        calls.setdefault(id(track), []).append(
            {
                "pos": int(pos),
                "area": int(mask.area),
                "c": None if c is None or track.contrast is None else float(c / track.contrast),
                "mean": mean,
                "stop": reason,
                "cut": track.cut if reason else None,
                **before,
            }
        )
        return reason

    importlib.import_module("napari_oaims.propagate.run").stop_reason = spy
    rows = []

    def chains(mask, labels, lab, name, image):
        level = {int(v): float(image[labels == v].mean()) for v in np.unique(labels) if v > 0}
        size = {int(v): int((labels == v).sum()) for v in np.unique(labels) if v > 0}
        for seq in calls.values():
            for sl in seq:
                m = mask[sl["pos"]]
                other = m & (labels[sl["pos"]] > 0) & (labels[sl["pos"]] != lab)
                ids, counts = np.unique(labels[sl["pos"]][other], return_counts=True)
                sl.update(
                    kept=bool(m.any()),
                    own=int((m & (labels[sl["pos"]] == lab)).sum()),
                    other=int(other.sum()),
                    mask_area=int(m.sum()),
                    into=int(ids[np.argmax(counts)]) if len(ids) else None,
                )
            into = [sl["into"] for sl in seq if sl["into"] is not None]
            other_id = max(set(into), key=into.count) if into else None
            rows.append(
                {
                    "case": name,
                    "object": lab,
                    "truth": size[lab],
                    "mask": int(mask.sum()),
                    "mask_own": int((mask & (labels == lab)).sum()),
                    "into": other_id,
                    "into_level": None if other_id is None else level[other_id] / level[lab],
                    "into_size": None if other_id is None else size[other_id] / size[lab],
                    "slices": seq,
                }
            )

    specs = [sp for sp in failure_suite(n) if sp.kind == "stacked"]
    for v, spec in enumerate(specs):
        img, labels = make_volume(spec)
        for lab in [int(x) for x in np.unique(labels) if x > 0]:
            truth = labels == lab
            z = int(np.argmax(truth.sum((1, 2))))
            s = eng.session(img, plane_axes=(1, 2))
            s.click((z, *click_in_region(truth[z])))
            calls.clear()
            m = np.asarray(s.propagate(axis=0, method="frozen").mask, bool)
            chains(m, labels, lab, f"stacked/{v}", img)
    guard = procedural_cases(3, (24, 64, 64)) + [
        c for c in procedural_cases(3, FAILURE_SHAPE, failures=True) if c["kind"] != "stacked"
    ]
    for c in guard:
        calls.clear()
        r = run_case(eng, c["image"], c["target"], "frozen", first_only=True, keep_mask=True)
        chains(r["mask"], c["labels"], 1, c["kind"] + "/" + c["name"], c["image"])
    with open(out_path, "w") as f:
        json.dump(rows, f)


def variants(path: str) -> None:
    """Leaked chains by what they ran into, then per candidate rule (:data:`RULES`), per volume
    group: mean 3D Dice of the objects (the slices from the rule's cut on taken out), voxels in
    other objects, chains it stopped."""
    with open(path) as f:
        rows = json.load(f)
    leaked = [r for r in rows if r["case"].startswith("stacked") and r["into"] is not None]
    dim = [r for r in leaked if r["into_level"] < 0.97]
    print(
        f"stacked chains that took voxels of another nucleus: {len(leaked)}, of them into a dimmer one (mean"
        f" image < 0.97 of the target's): {len(dim)} ({sum(sl['other'] for r in dim for sl in r['slices'])} voxels),"
        f" into a larger one (> 1.3x voxels): {sum(r['into_size'] > 1.3 for r in leaked)}"
        f" ({sum(sl['other'] for r in leaked if r['into_size'] > 1.3 for sl in r['slices'])} voxels),"
        f" all: {sum(sl['other'] for r in leaked for sl in r['slices'])} voxels"
    )
    for name, rule in [("shipped", None), *RULES.items()]:
        objects: dict[tuple, dict] = {}
        fired: dict[str, int] = {}
        for r in rows:
            key = (r["case"], r["object"])
            o = objects.setdefault(key, {"truth": r["truth"], "mask": r["mask"], "own": r["mask_own"], "other": 0})
            group = r["case"].split("/")[0]
            kept = [sl for sl in r["slices"] if sl["kept"]]
            at = None if rule is None else rule(kept)
            for sl in kept[len(kept) if at is None else at :]:
                o["mask"] -= sl["mask_area"]
                o["own"] -= sl["own"]
            o["other"] += sum(sl["other"] for sl in (kept if at is None else kept[:at]))
            fired[group] = fired.get(group, 0) + (at is not None)
        out: dict[str, list] = {}
        for key, o in objects.items():
            g = out.setdefault(key[0].split("/")[0], [[], 0])
            g[0].append(2 * o["own"] / max(o["mask"] + o["truth"], 1))
            g[1] += o["other"]
        print(
            f"{name}: "
            + ", ".join(
                f"{g} {np.mean(v[0]):.4f} (min {min(v[0]):.3f}) other {v[1]} fired {fired[g]}"
                for g, v in sorted(out.items())
            )
        )


def ring_rise(share: float, smaller: bool = False):
    """A candidate rule: the mean image on the ring around the mask (its mean minus its contrast)
    rose above the anchor's ring by ``share`` of the anchor's contrast: the mask lies inside
    another object larger than itself; cut at that slice (``smaller``: only while the mask is no
    larger than the anchor's)."""

    def rule(kept: list[dict]):
        if not kept or kept[0]["c0"] is None or kept[0]["prev_mean"] is None:
            return None
        c0, ring0, area0 = kept[0]["c0"], kept[0]["prev_mean"] - kept[0]["c0"], kept[0]["prev_peak"]
        for i, sl in enumerate(kept):
            if sl["c"] is None or sl["mean"] is None or (smaller and sl["area"] > area0):
                continue
            if (sl["mean"] - sl["c"] * c0 - ring0) >= share * abs(c0):
                return i
        return None

    return rule


def engulfed(low: float, kept_mean: float):
    """A candidate rule: the mask's contrast fell below ``low`` times the anchor's while the mean
    inside it stayed within ``kept_mean`` times the anchor's contrast of the anchor's mean: the
    mask lies inside a larger object as bright as itself (an object's own end fades in both);
    cut at that slice."""

    def rule(kept: list[dict]):
        if not kept or kept[0]["c0"] is None or kept[0]["prev_mean"] is None:
            return None
        c0, mean0 = abs(kept[0]["c0"]), kept[0]["prev_mean"]
        for i, sl in enumerate(kept):
            if sl["c"] is None or sl["mean"] is None:
                continue
            if sl["c"] < low and sl["mean"] >= mean0 - kept_mean * c0:
                return i
        return None

    return rule


def plateau(share: float, flat: int, tol: float = 0.97):
    """A candidate rule for a mass against a wall: the mask's area fell below ``share`` of the
    largest area since the anchor and then stopped shrinking (each slice at least ``tol`` times
    the one before) for ``flat`` slices: what is left is not the object tapering to its end but
    something that goes on; cut at the first slice that stopped shrinking."""

    def rule(kept: list[dict]):
        if not kept:
            return None
        peak, prev, run = kept[0]["prev_peak"], None, 0
        for i, sl in enumerate(kept):
            a = sl["area"]
            peak = max(peak, a)
            if prev is not None and a <= share * peak and a >= tol * prev:
                run += 1
                if run >= flat:
                    return i - flat + 1
            else:
                run = 0
            prev = a
        return None

    return rule


RULES: dict = {f"ring rise {r}": ring_rise(r) for r in (0.2, 0.3, 0.4, 0.5, 0.7)}
RULES.update({f"plateau {sh} {f}": plateau(sh, f) for sh in (0.15, 0.2, 0.25, 0.3) for f in (2, 3)})
RULES.update({f"plateau {sh} 2 {t}": plateau(sh, 2, t) for sh in (0.2, 0.25, 0.3) for t in (0.95, 0.9)})
RULES.update({f"engulfed {lo} {m}": engulfed(lo, m) for lo in (0.5, 0.6, 0.7) for m in (0.1, 0.2, 0.3)})
RULES.update({f"ring rise {r}, no larger than the anchor": ring_rise(r, True) for r in (0.3, 0.5)})


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--n", type=int, default=6)
    p.add_argument("--variants", action="store_true")
    a = p.parse_args()
    if a.variants:
        variants(a.out)
    else:
        record(a.out, a.n)
