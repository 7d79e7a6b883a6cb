"""One definition of each rule: the forward pass, the deepest-point click, painting, Dice."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from napari_oaims.core.clicks import click_in_region, deepest_point, deepest_points
from napari_oaims.core.labels import paint
from napari_oaims.core.overlap import dice

SRC = Path(__file__).parents[1] / "src" / "napari_oaims"


def _occurrences(pattern: str) -> list[str]:
    """The module of each line of the package that matches ``pattern`` (once per line)."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for line in path.read_text().splitlines():
            if re.search(pattern, line):
                found.append(str(path.relative_to(SRC)))
    return found


def test_each_low_level_rule_is_written_once():
    assert _occurrences(r"set_flush_denormal\(") == ["model/device.py"]
    assert _occurrences(r"distance_transform_edt\(np\.pad") == ["core/clicks.py"]  # the deepest point
    assert _occurrences(r"1\.0 / \(1\.0 \+ np\.exp\(-") == ["core/guidance.py"]  # sigmoid
    assert _occurrences(r"2\.0 \* (float\()?np\.sqrt\([^)]*/ np\.pi") == ["core/geometry.py"]  # diameter
    assert _occurrences(r"torch\.from_numpy\(np\.ascontiguousarray") == ["model/device.py"]  # tensor helper
    assert _occurrences(r"inference_mode\(\), autocast") == ["model/device.py"]  # the forward pass


def test_the_ema_teacher_and_the_engine_run_the_same_forward_pass(engine, nuclei_crop):
    from napari_oaims.propagate.ema import StudentTeacher
    from napari_oaims.propagate.settings import PropagateSettings

    image, _ = nuclei_crop
    s = engine.session(image)
    x = np.stack([s.view().encode([], s.view().window([], (40, 40, 80, 80)))] * 2)
    teacher = StudentTeacher(engine, PropagateSettings(), adapt=False)
    assert np.array_equal(teacher.predict(x), engine.predict(x))


def test_deepest_point_is_the_click_of_the_robot_and_of_propagation():
    region = np.zeros((20, 30), bool)
    region[2:12, 3:9] = True  # the larger component
    region[14:18, 20:28] = True
    assert deepest_point(region) == click_in_region(region, mode="center")
    pts = deepest_points(region, share=0.0)
    assert pts.shape == (2, 2) and tuple(pts[0]) == deepest_point(region[:, :15])
    assert deepest_points(region, share=0.9).shape == (1, 2)
    assert deepest_points(np.zeros((4, 4), bool)).shape == (0, 2)


def test_painting_keeps_or_overwrites_other_objects_as_asked():
    labels = np.zeros((6, 6), np.uint32)
    labels[:3] = 5
    mask = np.zeros((6, 6), bool)
    mask[2:4] = True
    n, taken, before = paint(labels.copy(), (slice(None), slice(None)), mask, 7, overwrite=True)
    assert n == 12 and taken == {5: 6} and np.array_equal(before, labels)
    kept = labels.copy()
    n, taken, _ = paint(kept, (slice(None), slice(None)), mask, 7, overwrite=False)
    assert n == 6 and taken == {} and (kept[2] == 5).all() and (kept[3] == 7).all()


def test_dice_is_one_function():
    a = np.zeros((4, 4), bool)
    a[:2] = True
    assert dice(a, a) == 1.0 and dice(a, ~a) == 0.0 and dice(np.zeros_like(a), np.zeros_like(a)) == 1.0
    import napari_oaims.adapt.guard as guard
    import napari_oaims.evaluation.batch as batch

    assert guard.dice is dice and batch.dice is dice


def test_adaptation_imports_no_simulated_user():
    code = (
        "import sys, napari_oaims.adapt, napari_oaims.engine; print(sorted(m for m in sys.modules if '.simulate' in m))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_replay_has_one_row_per_event_kind_that_changes_a_session():
    from napari_oaims.core.events import KINDS
    from napari_oaims.store.replay import _REPLAY

    # "session" starts a session; "predict" is the answer to a prompt, made again by the prompt's row.
    assert set(_REPLAY) == set(KINDS) - {"session", "predict"}


def test_comments_cite_papers_not_documents_outside_the_repository():
    """Papers are cited by authors and title (as the README does); "seed 00x" and "GUIDE x.y"
    name documents a reader of the package does not have."""
    found = []
    for path in sorted(SRC.rglob("*")):
        if path.suffix in (".py", ".json", ".yaml"):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"\bseed 0\d\d|\bGUIDE\b|algorithm \d of seed", line, re.IGNORECASE):
                    found.append(f"{path.relative_to(SRC)}:{n}")
    assert not found, found
