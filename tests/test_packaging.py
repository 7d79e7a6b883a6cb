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


# -- the core install and its extras -----------------------------------------------------------

#: Import names of what each extra installs, and modules of ours that use them.
EXTRAS = {
    "batch": (["distributed", "tqdm"], ["napari_oaims.batch.run"]),
    "bench": (
        ["matplotlib", "tqdm", "psutil", "distributed"],
        [f"napari_oaims.evaluation.{m}" for m in ("adapt", "batch", "clicks", "latency", "propagate", "store")],
    ),
    "train": (["tqdm"], ["napari_oaims.training.pretrain", "napari_oaims.cli.train"]),
    "napari": (["napari", "qtpy", "npe2"], ["napari_oaims.plugin.widget", "napari_oaims.plugin.reader"]),
    "qt": (["PyQt6"], []),
    "notebook": (["anywidget"], []),
}
LAB_BENCH = ("matplotlib", "distributed", "tqdm", "psutil")


def _project() -> dict:
    from pathlib import Path

    import tomllib

    return tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    import re

    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_core_install_leaves_out_the_lab_bench_and_each_extra_lists_it():
    project = _project()
    core = _names(project["dependencies"])
    assert not core & {*LAB_BENCH, "napari", "pyqt6", "qtpy", "anywidget"}, core
    extras = project["optional-dependencies"]
    assert set(EXTRAS) <= set(extras)
    assert {"distributed", "tqdm"} <= _names(extras["batch"])
    assert {"matplotlib", "tqdm", "napari-oaims"} <= _names(extras["bench"])
    testing = " ".join(extras["testing"]) + " ".join(extras["all"])
    assert all(name in testing for name in EXTRAS), "testing pulls every extra (through all)"


def test_each_extra_imports():
    code = "import importlib\n"
    for extra, (modules, ours) in EXTRAS.items():
        for m in modules + ours:
            code += f"importlib.import_module({m!r})  # [{extra}]\n"
    code += "print('ok')\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_core_works_without_the_extras_and_names_the_one_missing(tmp_path):
    """With the lab-bench packages blocked: annotate, save a session, propagate in 3D and run the
    command line; a plot, a batch run and a progress bar each fail with the extra to install."""
    blocked = "BLOCKED = (" + ", ".join(repr(m) for m in (*LAB_BENCH, "anywidget")) + ', "napari", "qtpy", "PyQt6")'
    block = "\n".join(
        line[: line.index("BLOCKED")] + blocked if "BLOCKED = " in line else line for line in BLOCK.splitlines()
    )
    assert blocked in block
    code = f"""
        import io

        import numpy as np
        import pytest
        from napari_oaims import Engine, sample_nuclei
        from napari_oaims.store import SessionStore
        from napari_oaims.cli import main

        image, labels = sample_nuclei()
        engine = Engine.pretrained(device="cpu", adaptation="oaims")
        s = engine.session(image[:128, :128])
        lab = labels[:128, :128]
        ys, xs = np.nonzero(lab == np.bincount(lab.ravel())[1:].argmax() + 1)
        assert s.click((int(np.median(ys)), int(np.median(xs)))).mask.any()
        s.accept()
        with SessionStore.create({str(tmp_path / "a.oaims.zarr")!r}, image[:128, :128]) as store:
            store.attach(s)
        vol = np.stack([image[:64, :64]] * 3)
        v = engine.session(vol, plane_axes=(1, 2))
        v.click((1, 32, 32))
        assert v.propagate(axis=0, method="copy").mask.any()
        for sub in ([], ["bench"], ["propagate"], ["train"]):
            try:
                main(sub + ["--help"])
            except SystemExit as exit:
                assert exit.code == 0, sub
        from napari_oaims.batch import propagate_many
        from napari_oaims.core.progress import TqdmProgress
        from napari_oaims.evaluation.common import pyplot
        class Terminal(io.StringIO):  # bars (tqdm) are drawn on a terminal; elsewhere plain lines
            def isatty(self):
                return True

        job = {{"image": "a.npy", "seeds": "b.npy", "name": "a"}}
        batch = lambda: propagate_many([job], {str(tmp_path / "o")!r})
        bars = lambda: TqdmProgress(file=Terminal())(1, 2, "x")
        for call, extra in ((pyplot, "bench"), (bars, "bench"), (batch, "batch")):
            with pytest.raises(ImportError, match=f"napari-oaims\\\\[{{extra}}\\\\]"):
                call()
        loaded = [m for m in sys.modules if m.split(".")[0] in {LAB_BENCH!r}]
        assert not loaded, loaded
        print("ok")
    """
    result = subprocess.run(
        [sys.executable, "-c", block + textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ok" in result.stdout
