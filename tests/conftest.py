"""Shared fixtures: the shipped nuclei sample and engines on the shipped weights (CPU)."""

from __future__ import annotations

import os
import subprocess
from importlib import resources

import numpy as np
import pytest
import tifffile


def _data(name: str) -> np.ndarray:
    return tifffile.imread(str(resources.files("napari_oaims") / "data" / name))


@pytest.fixture(scope="session")
def nuclei() -> tuple[np.ndarray, np.ndarray]:
    """The real 512 x 512 nuclei image and its instance labels (shipped with the package)."""
    return _data("nuclei2d_image.tif"), _data("nuclei2d_labels.tif")


@pytest.fixture(scope="session")
def nuclei_crop(nuclei) -> tuple[np.ndarray, np.ndarray]:
    """A 160 x 160 crop with several whole nuclei (fast tests)."""
    image, labels = nuclei
    return image[:160, :160].copy(), labels[:160, :160].copy()


@pytest.fixture
def engine():
    from napari_oaims import Engine

    return Engine.pretrained(device="cpu")


def object_centre(labels: np.ndarray, label_id: int) -> tuple[int, int]:
    from napari_oaims.simulate.clicks import click_in_region

    return click_in_region(labels == label_id)


def largest_ids(labels: np.ndarray, n: int) -> list[int]:
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    return [int(i) for i in ids[np.argsort(counts)[::-1][:n]]]


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 256 KiB tmpfs (needs root; the test is skipped where mounting is refused)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=False)  # a file still open: detach it anyway


def fill_disk(path):
    """Write ``path`` until the disk is full (remove the file to free the space again)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(OSError):
            while True:
                os.write(fd, b"x" * 4096)
    finally:
        os.close(fd)


def blind_engine(engine):
    """An engine on a copy of ``engine``'s network whose output bias is -50: it answers every prompt
    with background (a real model, for the paths that handle an empty answer)."""
    import copy

    import torch

    from napari_oaims import Engine

    model = copy.deepcopy(engine.model)
    with torch.no_grad():
        model.head.bias.fill_(-50.0)
    config = {k: v for k, v in engine.config.items() if k != "weights_hash"}
    return Engine(model, config=config, device="cpu")
