"""Which ``self`` attributes each class of ``napari_oaims.store`` uses that it does not define itself.

Usage: ``python research/store_attribute_use.py [SRC_DIR]`` (default: the ``src/napari_oaims/store``
folder next to this script). Prints one Markdown table row per class: the attributes it reads or
writes on ``self``, and those among them defined in no method or class body of that class
(assigned ``self.X = ...``, a method, a property or a class attribute).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def class_use(cls: ast.ClassDef) -> tuple[set[str], set[str]]:
    """(attributes used on ``self``, attributes the class defines)."""
    defined = set()
    for item in cls.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defined.add(item.name)
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            defined.add(item.target.id)
        elif isinstance(item, ast.Assign):
            defined.update(t.id for t in item.targets if isinstance(t, ast.Name))
    used = set()
    for node in ast.walk(cls):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            used.add(node.attr)
            if isinstance(node.ctx, ast.Store):
                defined.add(node.attr)
    return used, defined


def main(folder: Path) -> None:
    print("| module | class | attributes used on self | used but defined elsewhere |")
    print("|---|---|---|---|")
    for path in sorted(folder.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                used, defined = class_use(node)
                foreign = sorted(used - defined)
                print(f"| {path.name} | {node.name} | {len(used)} | {len(foreign)}: {', '.join(foreign) or '-'} |")


if __name__ == "__main__":
    here = Path(__file__).resolve().parents[1] / "src" / "napari_oaims" / "store"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else here)
