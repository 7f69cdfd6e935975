"""The package's layers, checked from the source: no import circles, imports flow one way.

Every ``import`` counts, including those under ``TYPE_CHECKING`` and inside functions: a
circle that only type checkers see still ties two layers together.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "sim"

#: The layers from the bottom up; a module may import its own layer and those below it.
LAYERS = (
    # the foundation: user-facing errors, the projection maths (pure functions of numbers)
    # and the switch for compiled kernels, which any layer's loops may use
    ("sim.errors", "sim.world.geo", "sim.compiled"),
    ("sim.scenario",),
    ("sim.world",),
    ("sim.rules",),
    ("sim.tactics",),
    ("sim.engine",),
    ("sim.experiments",),
    ("sim.analysis",),
    ("sim.app",),
    ("sim.cli", "sim"),
)


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PACKAGE.rglob("*.py"):
        name = ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = p
    return mods


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (resolved to the longest existing module)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join([*parts, base] if base else parts)
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                while name and name not in mods:
                    name = name.rpartition(".")[0]
                if name and name != mod:
                    graph[mod].add(name)
    return graph


def _layer(mod: str) -> int:
    for i, prefixes in enumerate(LAYERS):
        if any(mod == p or mod.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{mod} belongs to no layer: add it to LAYERS")


def test_no_import_circles():
    graph = import_graph()
    # Tarjan-free: a module is in a circle when it can reach itself
    circles = set()
    for start in graph:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt == start:
                    circles.add(start)
                elif nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
    assert not circles, f"modules in an import circle: {sorted(circles)}"


def test_imports_flow_down_the_layers():
    graph = import_graph()
    upward = [
        f"{mod} imports {dep}"
        for mod, deps in graph.items()
        for dep in deps
        if dep != "sim" and _layer(dep) > _layer(mod)
    ]
    assert not upward, "imports against the layers: " + "; ".join(sorted(upward))


def test_the_checks_see_a_circle():
    """The graph builder resolves relative, nested and TYPE_CHECKING imports (so the two
    tests above can fail)."""
    graph = import_graph()
    assert "sim.errors" in graph["sim.scenario.loading"]
    assert all(_layer(m) >= 0 for m in graph)
