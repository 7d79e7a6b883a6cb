"""The library and the command line work without napari or Qt (a batch worker has neither)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCK = textwrap.dedent(
    """
    import importlib.abc, sys

    class _NoGui(importlib.abc.MetaPathFinder):
        BLOCKED = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "superqt", "vispy")

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.BLOCKED:
                raise ImportError(f"{name} is not installed (blocked by the test)")
            return None

    sys.meta_path.insert(0, _NoGui())
    """
)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK + textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )


def test_library_works_without_napari_or_qt():
    result = _run(
        """
        import numpy as np
        import napari_oaims
        from napari_oaims import Engine, sample_nuclei
        image, labels = sample_nuclei()
        s = Engine.pretrained(device="cpu").session(image[:128, :128])
        ys, xs = np.nonzero(labels[:128, :128] == np.bincount(labels[:128, :128].ravel())[1:].argmax() + 1)
        r = s.click((int(np.median(ys)), int(np.median(xs))))
        assert r.mask.any()
        s.accept()
        loaded = [m for m in sys.modules if m.split(".")[0] in ("napari", "PyQt6", "qtpy")]
        assert not loaded, loaded
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ok" in result.stdout


def test_command_line_works_without_napari_or_qt():
    result = _run(
        """
        import sys
        from napari_oaims.cli import main
        sys.argv = ["oaims", "--help"]
        try:
            main(["--help"])
        except SystemExit as exit:
            assert exit.code == 0
        for sub in ("bench", "replay", "demo", "train", "synth"):
            try:
                main([sub, "--help"])
            except SystemExit as exit:
                assert exit.code == 0, sub
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ok" in result.stdout
