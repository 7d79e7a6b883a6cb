"""The packages ``pip install napari-oaims`` (no extra) pulls, followed through the installed
packages' metadata, and which of the lab-bench and GUI packages are among them (none should be).

    python research/one-rule/core_dependencies.py
"""

import re
import tomllib
from importlib import metadata
from pathlib import Path

project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
todo = []
for req in project["dependencies"]:
    m = re.match(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?", req)
    todo.append((m.group(1), set(m.group(2)[1:-1].split(",")) if m.group(2) else set()))
seen, missing = set(), set()
while todo:
    name, extras = todo.pop()
    key = name.lower().replace("_", "-")
    if key in seen:
        continue
    seen.add(key)
    try:
        requirements = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        missing.add(key)
        continue
    for r in requirements:
        m = re.match(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?", r)
        marker = r.split(";", 1)[1] if ";" in r else ""
        wanted = re.findall(r"""extra\s*==\s*['"]([^'"]+)['"]""", marker)
        if "extra" in marker and not set(wanted) & extras:
            continue
        if "win32" in marker or "Windows" in marker:
            continue
        todo.append((m.group(1), set(m.group(2)[1:-1].split(",")) if m.group(2) else set()))
print(f"{len(seen)} packages: {', '.join(sorted(seen))}")
print("not installed here (not followed):", sorted(missing) or "none")
print("lab bench or GUI among them:", sorted(seen & {"matplotlib", "distributed", "tqdm", "psutil", "napari", "pyqt6"}))
