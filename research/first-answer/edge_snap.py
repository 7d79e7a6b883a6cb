"""Does the model's answer get better where it is unsure if its edge follows the image's edges?

Replays the click benchmark (robot ``center``, fresh session per target unless ``--standard``)
with :func:`napari_oaims.answer.window_answer` patched per variant:

* ``none``: the package as it is;
* ``wsT``: a marker watershed on the window's gradient (scikit-image ``watershed(sobel(crop))``),
  markers: object where the model's logit > T (its kept part) and the positive clicks; background
  where the logit < -T, the negative clicks and the window's border. Only the band where the model
  is unsure (|logit| <= T) is decided by the image's edges.
* ``wsbT``: object markers are the positive clicks only (the classical baseline's), background as
  ``wsT``: the classical watershed, kept out of what the model is sure is background.
* ``wskT``: object markers are the model's whole kept answer (logit > 0) and the positive
  clicks, background as ``wsT``: the answer grows along the image's edges through the band where
  the model's logit lies between -T and 0 (it only grows);
* ``wsnT``: ``wskT``, keeping only grown pieces that meet the answer without a neck;
* ``wstT``: ``wskT`` only when the model's answer is thin (at most ``THIN_WIDTH`` px wide);
* ``voteT``: :class:`Vote` (with ``--standard``: objects accepted in turn), growing every answer;
  ``voteTF``: the object's first answer only; ``voteTP``: the first and positive corrections;
* a ``g`` suffix: only when the model is unsure of its answer (mean logit over it below
  ``SURE_LOGIT``).

    PYTHONPATH=src OMP_NUM_THREADS=1 python research/first-answer/edge_snap.py \
        --variants none,ws2,wsb2 --sets nuclei,runs/suites/cavities,... [--clicks 3] [--out F.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.draw import disk
from skimage.filters import sobel
from skimage.segmentation import watershed

from napari_oaims import answer
from napari_oaims.core import regions
from napari_oaims.evaluation.common import ModelMethod, Protocol, load_pair, run_targets, target_ids

NUCLEI = ("src/napari_oaims/data/nuclei2d_image.tif", "src/napari_oaims/data/nuclei2d_labels.tif")
SHIPPED = answer.window_answer
SHIPPED_RESCALE = answer.rescale
#: True while :func:`napari_oaims.answer.rescale` runs: the scale check sees the model's own answers.
IN_RESCALE = {"on": False}


def _rescale(*args):
    IN_RESCALE["on"] = True
    try:
        return SHIPPED_RESCALE(*args)
    finally:
        IN_RESCALE["on"] = False


def _snapped(variant: str):
    gated = variant.endswith("g")
    body = variant.removesuffix("g")
    clicks_only = body.startswith("wsb")
    necked = body.startswith("wsn")
    thin = body.startswith("wst")
    whole = body.startswith("wsk") or necked or thin
    t = float(body[3:] if clicks_only or whole else body[2:])

    def window_answer(session, key, prompts, window, logits):
        kept, (ys, xs) = SHIPPED(session, key, prompts, window, logits)
        if IN_RESCALE["on"]:
            return kept, (ys, xs)
        _, _, wy, wx = window.clip(session.source.plane_shape)
        p = logits[wy, wx]
        if gated and regions.sureness(p, kept) >= regions.SURE_LOGIT:
            return kept, (ys, xs)
        if thin and 2 * ndimage.distance_transform_edt(kept).max() > THIN_WIDTH:
            return kept, (ys, xs)
        crop = session.source.crop(key, window)[wy, wx]
        markers = np.zeros(crop.shape, np.int32)
        markers[p < -t] = 2
        markers[[0, -1], :] = 2
        markers[:, [0, -1]] = 2
        if whole:
            markers[kept] = 1
        elif not clicks_only:
            markers[kept & (p > t)] = 1
        for pr in prompts:
            if pr.kind != "click":
                continue
            cy, cx = int(pr.points[0, 0]) - ys.start, int(pr.points[0, 1]) - xs.start
            if 0 <= cy < crop.shape[0] and 0 <= cx < crop.shape[1]:
                rr, cc = disk((cy, cx), 2, shape=crop.shape)
                markers[rr, cc] = 1 if pr.positive else 2
        if not (markers == 1).any():
            return kept, (ys, xs)
        seg = watershed(sobel(crop), markers) == 1
        offset = np.array([ys.start, xs.start])
        if necked:
            seg = kept | _no_neck_pieces(seg & ~kept, kept)
        return regions.keep_prompted(seg, answer.positive_points(prompts) - offset), (ys, xs)

    return window_answer


#: ``wstT``: the answer grows only when the model's mask is at most this wide (px, widest inscribed disc).
THIN_WIDTH = 16.0
#: A grown piece joins the answer only when it meets it along at least this share of its own width.
NECK_SHARE = 0.7


def _no_neck_pieces(grown: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The pieces of ``grown`` that continue ``kept`` without a neck: the length of the seam where
    a piece meets ``kept`` is at least :data:`NECK_SHARE` of the piece's widest inscribed disc."""
    labels, n = ndimage.label(grown, structure=np.ones((3, 3), bool))
    if n == 0:
        return grown
    seam_px = ndimage.binary_dilation(kept, structure=np.ones((3, 3), bool)) & grown
    seam = ndimage.sum(seam_px, labels, np.arange(1, n + 1))
    width = 2 * ndimage.maximum(ndimage.distance_transform_edt(grown), labels, np.arange(1, n + 1))
    ok = np.flatnonzero(seam >= NECK_SHARE * np.maximum(width, 1)) + 1
    return np.isin(labels, ok)


#: ``voteT``: the edge answer is used once the accepted objects' first answers say it is better, by
#: this much Dice on average over the last :data:`VOTE_OBJECTS` accepted objects.
VOTE_MARGIN = 0.15
VOTE_OBJECTS = 5
#: ... and the grown answer was the closer one on at least this share of them.
VOTE_SHARE = 0.8


class Vote:
    """``voteT``: every answer is the model's until the objects accepted so far show that the
    first answer grown along the image's edges (``wskT``) was closer to what the user accepted
    than the model's own; from then on answers grow along edges while that stays so."""

    def __init__(self, t: float, which: str = "all"):
        self.grow = _snapped(f"wsk{t:g}")
        self.which = which  # "all" answers, the "first" only, or first and "positive" corrections
        self.gains: list[float] = []
        self.first: tuple | None = None  # (plane slices, model mask, grown mask) of the first click

    @property
    def on(self) -> bool:
        recent = self.gains[-VOTE_OBJECTS:]
        return (
            len(recent) >= 2
            and float(np.mean(recent)) > VOTE_MARGIN
            and float(np.mean(np.array(recent) > 0)) >= VOTE_SHARE
        )

    def window_answer(self, session, key, prompts, window, logits):
        kept, where = SHIPPED(session, key, prompts, window, logits)
        if IN_RESCALE["on"]:
            return kept, where
        grown, _ = self.grow(session, key, prompts, window, logits)
        if len(prompts) == 1:
            self.first = (where, kept, grown)
        use = self.which == "all" or len(prompts) == 1 or (self.which == "positive" and prompts[-1].positive)
        return (grown if self.on and use else kept), where

    def finish(self, mask: np.ndarray) -> None:
        if self.first is None:
            return
        (ys, xs), kept, grown = self.first
        full = np.asarray(mask, bool)
        rest = int(full.sum()) - int(full[ys, xs].sum())

        def dice(a):
            inter = int((a & full[ys, xs]).sum())
            return 2 * inter / max(1, int(a.sum()) + int(full[ys, xs].sum()) + rest)

        self.gains.append(dice(grown) - dice(kept))
        self.first = None


#: ``splitK``: a part of the answer brighter or darker than the click's part by more than K robust
#: noise deviations, reaching the answer's edge, is a touching neighbour and is dropped.
SPLIT_SHARE = 0.15


def _split(k: float):
    from skimage.filters import threshold_otsu

    def window_answer(session, key, prompts, window, logits):
        kept, (ys, xs) = SHIPPED(session, key, prompts, window, logits)
        if IN_RESCALE["on"] or kept.sum() < 50:
            return kept, (ys, xs)
        _, _, wy, wx = window.clip(session.source.plane_shape)
        crop = session.source.crop(key, window)[wy, wx]
        smooth = ndimage.gaussian_filter(crop, 1.5)
        values = smooth[kept]
        t = threshold_otsu(values)
        noise = 1.4826 * np.median(np.abs(crop - smooth)[kept])
        low, high = values < t, values >= t
        if min(low.mean(), high.mean()) < SPLIT_SHARE or values[high].mean() - values[low].mean() < k * noise:
            return kept, (ys, xs)
        offset = np.array([ys.start, xs.start])
        pts = regions.inside_seeds(answer.positive_points(prompts) - offset, kept.shape)
        if len(pts) == 0:
            return kept, (ys, xs)
        click_high = smooth[pts[0, 0], pts[0, 1]] >= t
        other = kept & ((smooth < t) if click_high else (smooth >= t))
        other = ndimage.binary_opening(other, iterations=2)
        lab, n = ndimage.label(other)
        edge = kept & ~ndimage.binary_erosion(kept)
        touching = [i for i in range(1, n + 1) if (edge & (lab == i)).any()]
        if not touching:
            return kept, (ys, xs)
        out = kept & ~np.isin(lab, touching)
        out = ndimage.binary_opening(out, iterations=1)
        return regions.keep_prompted(out, answer.positive_points(prompts) - offset), (ys, xs)

    return window_answer


def run(variant: str, image: str, labels: str, clicks: int, fresh: bool, max_targets: int | None) -> dict:
    which = {"F": "first", "P": "positive"}.get(variant[-1], "all")
    vote = Vote(float(variant[4:].rstrip("FP")), which) if variant.startswith("vote") else None
    answer.window_answer = (
        SHIPPED
        if variant == "none"
        else vote.window_answer
        if vote
        else _split(float(variant[5:]))
        if variant.startswith("split")
        else _snapped(variant)
    )
    answer.rescale = _rescale
    protocol = Protocol(clicks=clicks, device="cpu")
    img, lab = load_pair(image, labels)
    ids = target_ids(lab)[:max_targets]
    method = ModelMethod(protocol.make_engine(), img)

    class Fresh:
        def start(self):
            if fresh:
                method.session = method.engine.session(img)

        def click(self, c):
            return method.click(c)

        def finish(self, mask):
            if vote is not None:
                vote.finish(mask)
            method.finish(mask)

    t0 = time.perf_counter()
    res = run_targets(Fresh(), lab, ids, protocol.make_robot(), clicks)
    curves = np.array([c + [c[-1]] * (clicks - len(c)) for c in res["curves"]])
    answer.window_answer, answer.rescale = SHIPPED, SHIPPED_RESCALE
    return {
        "targets": len(ids),
        "dice": [round(float(v), 4) for v in curves.mean(0)],
        "ms": round(1000 * float(np.median(res["latency_ms"])) / 1000, 1),
        "s": round(time.perf_counter() - t0, 1),
        **({"gains": [round(g, 3) for g in vote.gains]} if vote else {}),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="none,ws2,wsb2")
    p.add_argument("--sets", default="nuclei")
    p.add_argument("--clicks", type=int, default=3)
    p.add_argument("--max-targets", type=int, default=30)
    p.add_argument("--standard", action="store_true", help="one session, targets accepted in turn")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    sweep(
        args.sets,
        args.variants,
        args.out,
        lambda v, *pair: run(v, *pair, args.clicks, not args.standard, args.max_targets),
    )


def sweep(sets: str, variants: str, out: str | None, run_one) -> None:
    """``run_one(variant, image, labels)`` for each comma-separated set (``nuclei`` or a folder
    with image.tif/labels.tif) and variant: prints Dice after each click, and keeps every result
    in the JSON file ``out`` (added to what it holds)."""
    results = json.loads(Path(out).read_text()) if out and Path(out).is_file() else {}
    for s in sets.split(","):
        pair = NUCLEI if s == "nuclei" else (f"{s}/image.tif", f"{s}/labels.tif")
        for v in variants.split(","):
            r = run_one(v, *pair)
            results[f"{Path(s).name}/{v}"] = r
            d = " ".join(f"{x:.3f}" for x in r["dice"])
            print(f"{Path(s).name:<16} {v:<8} {d}  p50 {r['ms']} ms", flush=True)
            if out:
                Path(out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
