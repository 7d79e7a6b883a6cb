"""``oaims bench propagate --memory``: the peak-memory growth of one propagation through a lazily
read Zarr volume (plain functions)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from napari_oaims.simulate.clicks import click_in_region


def memory_check(
    workdir: str | Path, side: int = 1024, method: str = "ema", device: str = "cpu", weights: str | None = None
) -> dict[str, Any]:
    """Propagate through a lazily read Zarr volume of ``side**3`` float32 voxels (4 GiB for 1024)
    and report the growth of the process's peak memory (target: <= 300 MiB).

    The Zarr array is written sparsely (only the chunks around one procedural object; the rest is
    the fill value), so it costs little disk. The session's own per-plane masks are included in
    the growth (``side**2`` bytes for each slice the object reaches).
    """
    import resource

    import zarr

    from napari_oaims.engine import Engine
    from napari_oaims.training.volumes import VolumeSpec, make_volume

    if side < 128:
        raise ValueError("side must be at least 128")
    path = Path(workdir) / f"volume_{side}.zarr"
    obj, labels = make_volume(VolumeSpec(kind="ellipsoid", shape=(64, 128, 128), seed=1, neighbours=0))
    z0, y0 = side // 2 - 32, side // 2 - 64
    if not path.exists():
        arr = zarr.create_array(
            store=str(path),
            shape=(side, side, side),
            chunks=(1, 256, 256),
            dtype="float32",
            fill_value=float(np.median(obj)),
        )
        arr[z0 : z0 + 64, y0 : y0 + 128, y0 : y0 + 128] = obj
    arr = zarr.open_array(str(path), mode="r")
    target = labels == 1
    engine = Engine.pretrained(device=device, weights=weights)
    session = engine.session(arr, plane_axes=(1, 2))
    zc = int(np.argmax(target.sum((1, 2))))
    yx = click_in_region(target[zc])
    session.click((z0 + zc, y0 + yx[0], y0 + yx[1]))

    def peak_mib() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB

    before = peak_mib()
    t0 = time.perf_counter()
    res = session.propagate(axis=0, method=method)
    seconds = time.perf_counter() - t0
    after = peak_mib()
    got = {k[0] - z0: crop for k, (_, crop) in res.planes.items()}
    return {
        "volume_gib": side**3 * 4 / 2**30,
        "method": method,
        "peak_before_mib": round(before, 1),
        "peak_after_mib": round(after, 1),
        "growth_mib": round(after - before, 1),
        "seconds": round(seconds, 1),
        "slices": len(got),
        "object_slices": int(target.any((1, 2)).sum()),
        "ms_per_slice": res.info.get("ms_per_slice"),
    }
