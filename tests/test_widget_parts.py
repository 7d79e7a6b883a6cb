"""The annotator's parts get what they may use in their constructor: none takes or reaches the widget.

Read from the source (no Qt needed): a part's module never names the widget's class or module, never
keeps a handle on it (``self._w``), and the widget, their composition root, never hands itself to one.
"""

from __future__ import annotations

import ast
from pathlib import Path

WIDGET = Path(__file__).parents[1] / "src" / "napari_oaims" / "plugin" / "widget"
ROOT = "annotator.py"


def reaches_the_widget(source: str) -> list[str]:
    """Where a part's module takes or reaches the whole widget (empty: nowhere)."""
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[-1] == "annotator":
            found.append(f"line {node.lineno}: imports {node.module}")
        elif isinstance(node, ast.Name) and node.id == "AnnotatorWidget":
            found.append(f"line {node.lineno}: names AnnotatorWidget")
        elif isinstance(node, ast.Attribute) and node.attr in ("_w", "_widget", "_annotator"):
            found.append(f"line {node.lineno}: keeps the widget as .{node.attr}")
        elif isinstance(node, ast.arg) and node.arg in ("annotator", "widget"):
            found.append(f"line {node.lineno}: takes a parameter '{node.arg}'")
        if (
            isinstance(node, ast.arg)
            and node.annotation is not None
            and "AnnotatorWidget" in ast.unparse(node.annotation)
        ):
            found.append(f"line {node.lineno}: parameter '{node.arg}' is an AnnotatorWidget")
    return found


def hands_itself_out(source: str) -> list[str]:
    """Calls in the composition root that pass the widget itself (``self``) to something other
    than Qt (a Qt layout or timer takes its parent widget)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and not ast.unparse(node.func).startswith("Q"):
            args = list(node.args) + [k.value for k in node.keywords]
            if any(isinstance(a, ast.Name) and a.id == "self" for a in args):
                found.append(f"line {node.lineno}: {ast.unparse(node.func)}(self, ...)")
    return found


def test_no_part_takes_or_reaches_the_widget():
    parts = sorted(p for p in WIDGET.glob("*.py") if p.name not in (ROOT, "__init__.py"))
    assert len(parts) >= 10
    found = {p.name: reaches_the_widget(p.read_text()) for p in parts}
    assert {name: where for name, where in found.items() if where} == {}


def test_the_widget_hands_itself_to_no_part():
    assert hands_itself_out((WIDGET / ROOT).read_text()) == []


def test_the_checks_find_a_part_that_takes_the_widget():
    part = """
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from napari_oaims.plugin.widget.annotator import AnnotatorWidget

class Part:
    def __init__(self, annotator: "AnnotatorWidget"):
        self._w = annotator
"""
    assert len(reaches_the_widget(part)) == 4
    root = (
        "class W:\n    def __init__(self):\n        self.part = Part(self)\n        self.other = Other(owner=self)\n"
        "        layout = QVBoxLayout(self)\n"
    )
    assert len(hands_itself_out(root)) == 2
