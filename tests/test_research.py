"""The scripts in research/ still run against the package: each compiles, every module it imports
exists, every name it takes from napari_oaims is there and public."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

RESEARCH = Path(__file__).parents[1] / "research"
SCRIPTS = sorted(RESEARCH.rglob("*.py"))


def _imports(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                yield node.module, alias.name


@pytest.mark.parametrize("script", SCRIPTS, ids=[str(s.relative_to(RESEARCH)) for s in SCRIPTS])
def test_research_script_imports(script):
    tree = ast.parse(script.read_text(), filename=str(script))
    compile(tree, str(script), "exec")
    problems = []
    for module, name in _imports(tree):
        top = module.split(".")[0]
        if top in ("matplotlib", "distributed", "psutil", "tqdm") or importlib.util.find_spec(top) is None:
            continue  # the lab-bench extras, or a module the script's folder provides
        try:
            mod = importlib.import_module(module)
        except ImportError as err:
            problems.append(f"import {module}: {err}")
            continue
        if module.startswith("napari_oaims"):
            if any(part.startswith("_") for part in module.split(".")):
                problems.append(f"{module} is private")
            if name is not None and name.startswith("_"):
                problems.append(f"{module}.{name} is private")
        if name is not None and name != "*" and not hasattr(mod, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                problems.append(f"{module} has no {name}")
    assert not problems, problems
