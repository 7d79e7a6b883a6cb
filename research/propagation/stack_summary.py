"""Summary of ``sample_leak.py --json`` on a labelled stack, and how visible the objects' ends are
along z in the image (no model): per object end, the share of its end slice's footprint that
another object covers on the next slice, and the image mean in that footprint on the next slice
over the end slice's.

    python research/propagation/stack_summary.py SAMPLE_LEAK_JSON IMAGE LABELS
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import numpy as np

from napari_oaims.core.files import read_array


def main() -> None:
    with open(sys.argv[1]) as f:
        rows = json.load(f)
    img = np.asarray(read_array(sys.argv[2]), float)
    labels = np.asarray(read_array(sys.argv[3]))
    d = np.array([r["dice"] for r in rows])
    sd = np.array([r["slice_dice"] for r in rows])
    last = len(labels) - 1
    beyond = np.array(
        [
            max(r["truth_z"][0] - r["mask_z"][0], 0) + max(r["mask_z"][1] - r["truth_z"][1], 0)
            for r in rows
            if r["mask_z"]
        ]
    )
    to_end = sum(
        (r["mask_z"][0] == 0 and r["truth_z"][0] > 0) or (r["mask_z"][1] == last and r["truth_z"][1] < last)
        for r in rows
        if r["mask_z"]
    )
    short = [
        r["nucleus"]
        for r in rows
        if r["mask_z"] and (r["mask_z"][0] > r["truth_z"][0] or r["mask_z"][1] < r["truth_z"][1])
    ]
    leak = sum(lr["leak"] for r in rows for lr in r["leaks"])
    outside = sum(lr["outside_prev_dilated"] for r in rows for lr in r["leaks"])
    entered = [len({i for lr in r["leaks"] for i in lr["into"]}) for r in rows]
    out = {
        "objects": len(rows),
        "mean_dice": round(float(d.mean()), 3),
        "median_dice": round(float(np.median(d)), 3),
        "min_dice": round(float(d.min()), 3),
        "below_0.5": int((d < 0.5).sum()),
        "mean_slice_dice": round(float(sd.mean()), 3),
        "slice_dice_below_0.8": int((sd < 0.8).sum()),
        "voxels_in_others": int(sum(r["in_others"] for r in rows)),
        "objects_in_others": int(sum(r["in_others"] > 0 for r in rows)),
        "leak_outside_prev_mask_dilated": int(outside),
        "leak_total": int(leak),
        "other_nuclei_entered_median": float(np.median(entered)),
        "other_nuclei_entered_max": int(max(entered)),
        "slices_beyond_truth_median": float(np.median(beyond)),
        "objects_3_or_more_slices_beyond": int((beyond >= 3).sum()),
        "objects_to_stack_end_beyond_truth": int(to_end),
        "objects_ending_short_of_truth": short,
        "stops": dict(Counter(str(s) for r in rows for s in r["stops"])),
    }
    cover, ratio = [], []
    for lab in np.unique(labels)[1:]:
        m = labels == lab
        zs = np.flatnonzero(m.any((1, 2)))
        for end, nxt in ((zs[-1], zs[-1] + 1), (zs[0], zs[0] - 1)):
            if 0 <= nxt < len(labels):
                fp = m[end]
                cover.append(float(((labels[nxt][fp] > 0) & (labels[nxt][fp] != lab)).mean()))
                ratio.append(float(img[nxt][fp].mean() / img[end][fp].mean()))
    out["image"] = {
        "background_mean": round(float(img[labels == 0].mean()), 1),
        "nuclei_mean": round(float(img[labels > 0].mean()), 1),
        "ends_with_next_slice": len(cover),
        "end_footprint_covered_by_other_next_slice_median": round(float(np.median(cover)), 2),
        "ends_covered_over_0.3": int(sum(c > 0.3 for c in cover)),
        "next_over_end_image_mean_median": round(float(np.median(ratio)), 2),
        "next_over_end_image_mean_range": [round(min(ratio), 2), round(max(ratio), 2)],
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
