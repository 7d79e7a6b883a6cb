"""Package import graph of src/napari_oaims (runtime imports; TYPE_CHECKING blocks left out), line counts, modules over 500 lines and cycles: python3 research/import_graph.py"""
import ast, pathlib, collections, sys
root = pathlib.Path(__file__).resolve().parent.parent / "src" / "napari_oaims"
edges = collections.defaultdict(set); lines = collections.Counter(); big = []
def pkg(path):
    rel = path.relative_to(root).parts
    return rel[0].removesuffix(".py") if len(rel) > 1 or rel[0] != "__init__.py" else "__init__"
for f in root.rglob("*.py"):
    n = len(f.read_text().splitlines()); p = pkg(f); lines[p] += n
    if n > 500: big.append((n, str(f.relative_to(root))))
    tree = ast.parse(f.read_text())
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for b in node.body for n in ast.walk(b)}
    for node in ast.walk(tree):
        if id(node) in skip: continue
        mods = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("napari_oaims"):
            mods = [node.module]
        elif isinstance(node, ast.Import):
            mods = [a.name for a in node.names if a.name.startswith("napari_oaims")]
        for m in mods:
            parts = m.split(".")
            if len(parts) > 1 and parts[1] != pkg(f):
                edges[p].add(parts[1])
for p in sorted(lines): print(f"{p:12s} {lines[p]:6d} lines -> {', '.join(sorted(edges[p]))}")
print("over 500:", sorted(big, reverse=True))
# cycles
def reach(a, seen=None):
    seen = seen or set()
    for b in edges[a]:
        if b not in seen: seen.add(b); reach(b, seen)
    return seen
print("cycles:", [(a, b) for a in edges for b in edges[a] if a in reach(b)])
