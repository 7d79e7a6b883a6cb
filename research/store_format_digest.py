"""Digest of every file a fixed sequence of store calls writes, to compare two versions of the store.

Usage: ``PYTHONPATH=SRC python research/store_format_digest.py OUT.oaims.zarr`` with each source
tree, then ``diff`` the two outputs. The calls: create from a 96 x 96 crop of the nuclei sample,
70 events (the journal is compacted once), three ``commit_object``, ``write_prompts``, close,
reopen, ``write_labels``, one more event (left in the journal). Printed: sha256 (12 hex digits)
per file, with the root attributes' ``session_id`` and ``created`` left out and ``writer.lock``
skipped, then what the store reads back.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from napari_oaims.data import sample_nuclei
from napari_oaims.store.session_store import SessionStore


def main(out: Path) -> None:
    image, labels = sample_nuclei()
    image, labels = image[:96, :96], labels[:96, :96]
    store = SessionStore.create(out, image)
    event = {
        "time": 1.0,
        "kind": "click",
        "object": 1,
        "plane": [],
        "coords": [3, 4],
        "label": 1,
        "latency_ms": 2.5,
        "weights": "abc",
        "extra": {"k": 1},
    }
    for i in range(70):
        store.append_event({**event, "seq": i, "time": float(i)})
    for i in [int(i) for i in np.unique(labels) if i][:3]:
        store.commit_object(i, labels == i, class_id=2, class_name="n")
    store.write_prompts([[1.0, 2.0], [3.0, 4.0]], [True, False], [np.array([[0, 0], [0, 5], [5, 5]])], ["path"])
    store.close()
    store = SessionStore.open(out)
    store.write_labels(labels.astype(np.uint32))
    store.append_event({**event, "seq": 70, "time": 70.0})  # no close: a journal remains
    digests = {}
    for f in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = str(f.relative_to(out))
        data = f.read_bytes()
        if rel == "writer.lock":
            continue
        if rel == "zarr.json":
            meta = json.loads(data)
            for key in ("session_id", "created"):
                meta["attributes"]["napari_oaims"].pop(key)
            data = json.dumps(meta, sort_keys=True).encode()
        digests[rel] = hashlib.sha256(data).hexdigest()[:12]
    print(json.dumps(digests, indent=0, sort_keys=True))
    print(repr(store).split(",", 1)[1], len(store.events()), store.objects(), store.prompts().points.tolist())
    store.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
