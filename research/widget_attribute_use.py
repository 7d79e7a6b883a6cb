"""Which attributes of the whole annotator widget each part of ``napari_oaims.plugin.widget`` reaches,
and what each part's constructor takes.

Usage: ``python research/widget_attribute_use.py [GIT_REF]`` (default: the working tree). Reads the
modules of ``src/napari_oaims/plugin/widget`` (at ``GIT_REF`` with ``git show``) and prints one
Markdown table row per module other than ``annotator.py``: the distinct attributes it uses on the
widget (``self._w.X``, or ``X`` on a name bound to the widget: a parameter annotated
``AnnotatorWidget`` or ``name = self._w``), and the parameters of its classes' ``__init__``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = "src/napari_oaims/plugin/widget"


def sources(ref: str | None) -> dict[str, str]:
    """Module file name -> source, at ``ref`` (None: the working tree)."""
    if ref is None:
        return {p.name: p.read_text() for p in sorted((ROOT / FOLDER).glob("*.py"))}
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", f"{ref}:{FOLDER}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()

    def show(name: str) -> str:
        return subprocess.run(
            ["git", "show", f"{ref}:{FOLDER}/{name}"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout

    return {n: show(n) for n in sorted(names) if n.endswith(".py")}


def _is_widget_ref(node: ast.AST) -> bool:
    """``self._w``."""
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "_w"
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    )


def widget_use(tree: ast.Module) -> set[str]:
    """The attributes used on the widget in ``tree``."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for arg in node.args.args + node.args.kwonlyargs:
                if arg.annotation is not None and "AnnotatorWidget" in ast.unparse(arg.annotation):
                    bound.add(arg.arg)
        elif isinstance(node, ast.Assign) and _is_widget_ref(node.value):
            bound.update(t.id for t in node.targets if isinstance(t, ast.Name))
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (
            _is_widget_ref(node.value) or (isinstance(node.value, ast.Name) and node.value.id in bound)
        ):
            used.add(node.attr)
    return used


def constructor_params(tree: ast.Module) -> dict[str, list[str]]:
    """Class name -> parameters of its ``__init__`` (without ``self``), for classes that define one."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    args = item.args.args[1:] + item.args.kwonlyargs
                    out[node.name] = [a.arg for a in args]
    return out


def table(ref: str | None) -> list[tuple[str, list[str], dict[str, list[str]]]]:
    """(module, widget attributes used, constructor parameters per class) per module but annotator.py."""
    rows = []
    for name, text in sources(ref).items():
        if name in ("annotator.py", "__init__.py"):
            continue
        tree = ast.parse(text)
        rows.append((name, sorted(widget_use(tree)), constructor_params(tree)))
    return rows


def main(ref: str | None) -> None:
    print(f"At {ref or 'the working tree'}:\n")
    print("| module | widget attributes used | constructors |")
    print("|---|---|---|")
    total = set()
    for name, used, params in table(ref):
        total.update(used)
        ctors = "; ".join(f"{cls}({', '.join(args)})" for cls, args in params.items()) or "-"
        print(f"| {name} | {len(used)}{': ' + ', '.join(used) if used else ''} | {ctors} |")
    print(f"\nDistinct widget attributes reached from outside annotator.py: {len(total)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
