"""The annotators' parts get what they may use in their constructor: none takes or reaches the widget.

Read from the source (no Qt needed), for the napari widget and the notebook annotator: a part's module
never names the widget's class or module, never keeps a handle on it (``self._w``), and never reads an
attribute of ``self`` that its class does not define (the hidden state of a mixin); the widget, their
composition root, never hands itself to one.
"""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "src" / "napari_oaims"
WIDGET = PACKAGE / "plugin" / "widget"
ROOT = "annotator.py"
NOTEBOOK = PACKAGE / "notebook"
NOTEBOOK_ROOT = "widget.py"


def reaches_the_widget(source: str, root: str = "annotator", widget: str = "AnnotatorWidget") -> list[str]:
    """Where a part's module takes or reaches the whole widget (class ``widget`` in module ``root``;
    empty: nowhere)."""
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[-1] == root:
            found.append(f"line {node.lineno}: imports {node.module}")
        elif isinstance(node, ast.Name) and node.id == widget:
            found.append(f"line {node.lineno}: names {widget}")
        elif isinstance(node, ast.Attribute) and node.attr in ("_w", "_widget", "_annotator"):
            found.append(f"line {node.lineno}: keeps the widget as .{node.attr}")
        elif isinstance(node, ast.arg) and node.arg in ("annotator", "widget"):
            found.append(f"line {node.lineno}: takes a parameter '{node.arg}'")
        if isinstance(node, ast.arg) and node.annotation is not None and widget in ast.unparse(node.annotation):
            found.append(f"line {node.lineno}: parameter '{node.arg}' is an {widget}")
    return found


def _self_attribute(node: ast.AST, ctx: type) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ctx)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    )


def borrowed_attributes(source: str) -> list[str]:
    """Attributes that a class of the module reads from ``self`` but neither it nor its bases in the
    module define: state that a class mixed in beside it must provide (empty: none).

    Defined are methods, class attributes with a value (or a dataclass's fields) and attributes
    assigned to ``self``; a bare annotation (``session: Session``) is a promise, not a definition.
    Classes with a base from outside the module (a Qt widget, an exception) are not read.
    """
    tree = ast.parse(source)
    classes = {c.name: c for c in tree.body if isinstance(c, ast.ClassDef)}

    def defined(cls: ast.ClassDef) -> set[str]:
        fields = any("dataclass" in ast.unparse(d) for d in cls.decorator_list)
        names = set()
        for node in cls.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            elif (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and (node.value is not None or fields)
            ):
                names.add(node.target.id)
        names |= {node.attr for node in ast.walk(cls) if _self_attribute(node, ast.Store)}
        for base in cls.bases:
            if isinstance(base, ast.Name) and base.id in classes:
                names |= defined(classes[base.id])
        return names

    found = []
    for cls in classes.values():
        if any(not (isinstance(b, ast.Name) and b.id in classes) for b in cls.bases):
            continue
        have = defined(cls)
        found += [
            f"{cls.name} line {node.lineno}: self.{node.attr}"
            for node in ast.walk(cls)
            if _self_attribute(node, ast.Load) and node.attr not in have
        ]
    return found


def hands_itself_out(source: str) -> list[str]:
    """Calls in the composition root that pass the widget itself (``self``) to something other
    than Qt (a Qt layout or timer takes its parent widget) or a builtin (``hasattr(self, ...)``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        name = ast.unparse(node.func) if isinstance(node, ast.Call) else ""
        if name and not name.startswith("Q") and not hasattr(builtins, name):
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


def test_no_part_uses_state_it_does_not_have():
    parts = sorted(p for p in [*WIDGET.glob("*.py"), *NOTEBOOK.glob("*.py")] if p.name != "__init__.py")
    found = {p.name: borrowed_attributes(p.read_text()) for p in parts}
    assert {name: where for name, where in found.items() if where} == {}


def test_no_notebook_part_takes_or_reaches_the_annotator():
    parts = sorted(p for p in NOTEBOOK.glob("*.py") if p.name not in (NOTEBOOK_ROOT, "__init__.py"))
    assert {p.name for p in parts} >= {"stack.py", "saving.py", "objects.py", "jobs.py", "transport.py"}
    found = {p.name: reaches_the_widget(p.read_text(), "widget", "Annotator") for p in parts}
    assert {name: where for name, where in found.items() if where} == {}


def test_the_notebook_annotator_is_composed_not_mixed():
    source = (NOTEBOOK / NOTEBOOK_ROOT).read_text()
    assert hands_itself_out(source) == []
    (annotator,) = [c for c in ast.parse(source).body if isinstance(c, ast.ClassDef) and c.name == "Annotator"]
    assert [ast.unparse(b) for b in annotator.bases] == ["anywidget.AnyWidget"]


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


def test_the_check_finds_a_mixin_and_passes_a_part():
    mixin = """
class Actions:
    session: object

    def run(self):
        return self.session.propagate(), self.jobs.start()
"""
    assert borrowed_attributes(mixin) == ["Actions line 6: self.session", "Actions line 6: self.jobs"]
    part = """
from dataclasses import dataclass

@dataclass
class Hooks:
    say: object

class Actions(Base):
    pass

class Part:
    limit = 3

    def __init__(self, session, hooks):
        self._session, self._hooks = session, hooks

    def run(self):
        self._hooks.say(self.limit)
        return self._session.propagate(self.size())

    def size(self):
        return 1
"""
    assert borrowed_attributes(part) == []
