"""The package's layout: no import cycles between lspguard's modules, and few top-level modules.

The import graph is read from the source with `ast`, so it counts every import: at module level,
under `if TYPE_CHECKING:`, and inside functions (lazy imports). A cycle through a lazy or
type-only import does not fail at run time, but it still ties the modules' concerns together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import lspguard

PACKAGE = Path(lspguard.__file__).resolve().parent
MAX_TOP_LEVEL_MODULES = 12


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imported(node: ast.Import | ast.ImportFrom, name: str, is_package: bool,
              modules: dict[str, Path]) -> list[str]:
    """The lspguard modules one import statement in module `name` refers to."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    # `from pkg import sub` imports the module pkg.sub; `from mod import name`, the module mod.
    return [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
            for alias in node.names]


def import_graph(*, module_level_only: bool = False) -> dict[str, set[str]]:
    """Module -> the lspguard modules it imports: every import statement, or (module_level_only)
    only those run when the module is imported (not under `if TYPE_CHECKING:`, not in a def)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), str(path))
        nodes = _module_level(tree.body) if module_level_only else ast.walk(tree)
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _imported(node, name, is_package, modules):
                    if target in modules and target != name:
                        graph[name].add(target)
    return graph


def _module_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements run at import time, into if/try blocks but not TYPE_CHECKING ones."""
    found: list[ast.stmt] = []
    for stmt in body:
        if isinstance(stmt, ast.If):
            if not (isinstance(stmt.test, ast.Name) and stmt.test.id == "TYPE_CHECKING"):
                found += _module_level(stmt.body)
            found += _module_level(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, stmt.orelse, stmt.finalbody,
                          *(handler.body for handler in stmt.handlers)):
                found += _module_level(block)
        else:
            found.append(stmt)
    return found


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module."""
    return [_cycle_in(graph, component) for component in strongly_connected(graph)]


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _cycle_in(graph: dict[str, set[str]], component: set[str],
              start: str | None = None) -> list[str]:
    """A shortest cycle through `start` (default: the component's first module)."""
    start = start or min(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph[node] & component):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if succ not in parents:
                    parents[succ] = node
                    following.append(succ)
        frontier = following
    raise AssertionError(f"no cycle in component {sorted(component)}")


def _show(graph: dict[str, set[str]], components: list[set[str]]) -> str:
    lines = []
    for component in components:
        start = min(component)
        lines.append(" -> ".join(_cycle_in(graph, component, start))
                     + f"  (component: {', '.join(sorted(component))})")
    return "import cycles:\n" + "\n".join(lines)


def test_the_import_graph_has_no_cycles() -> None:
    """Counting type-only and lazy imports: the session's collaborators see it through
    Protocols (RelayHost, Supervised, EvidenceHost, WatchTarget), never as `Session`."""
    graph = import_graph()
    assert "lspguard.session.session" in graph  # the walk found the package's modules
    components = strongly_connected(graph)
    assert not components, _show(graph, components)


def test_the_imports_run_at_import_time_have_no_cycles() -> None:
    graph = import_graph(module_level_only=True)
    components = strongly_connected(graph)
    assert not components, _show(graph, components)


def test_find_cycles_reports_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]


#: lspguard's sub-packages from the bottom up (its __init__ docstring says what each layer is).
LAYERS: list[set[str]] = [
    {"protocol", "config", "status", "procfs", "trace", "gopls"},
    {"causes"},
    {"proxy"},
    {"supervise", "incident"},
    {"control"},
    {"session"},
    {"shim", "demo", "doctor", "replay"},
    {"cli"},
]
#: Top-level modules anyone may import (they import only each other).
BASE = {"lspguard", "lspguard.errors", "lspguard.paths", "lspguard.logs", "lspguard.redact",
        "lspguard.argtypes"}


def _layer_of(module: str) -> int:
    """-1 for the base modules; else the index in LAYERS of the module's sub-package."""
    if module in BASE:
        return -1
    if module == "lspguard.__main__":
        return len(LAYERS)
    package = module.split(".")[1]
    for i, layer in enumerate(LAYERS):
        if package in layer:
            return i
    raise AssertionError(f"{module}: its package {package!r} is in no layer of LAYERS")


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports that go up a layer, or sideways to another package of the same layer."""
    found = []
    for module, targets in sorted(graph.items()):
        here = _layer_of(module)
        for target in sorted(targets):
            there = _layer_of(target)
            same_package = module.split(".")[:2] == target.split(".")[:2]
            if there > here or (there == here and not same_package and here >= 0):
                found.append(f"{module} -> {target} (layer {here} -> {there})")
    return found


def test_imports_go_down_the_layers() -> None:
    """Counting lazy and type-only imports: a lower package never knows a higher one."""
    violations = layer_violations(import_graph())
    assert not violations, "imports against the layers:\n" + "\n".join(violations)


def test_layer_violations_are_found() -> None:
    graph = {"lspguard.proxy.relay": {"lspguard.supervise.watchdog", "lspguard.errors"},
             "lspguard.doctor.cli": {"lspguard.shim.main"},
             "lspguard.cli.main": {"lspguard.shim.main", "lspguard.cli.argtypes"},
             "lspguard.errors": set()}
    assert layer_violations(graph) == [
        "lspguard.doctor.cli -> lspguard.shim.main (layer 6 -> 6)",
        "lspguard.proxy.relay -> lspguard.supervise.watchdog (layer 2 -> 3)"]


def test_lspguard_has_few_top_level_modules() -> None:
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


# doctor's __init__ loads its names on first use (importlib only; nothing at import time).
_LAZY_INITS = {"doctor/__init__.py"}


def test_package_inits_import_nothing() -> None:
    """Importing `lspguard.proxy.proctitle` (the shim's first step) must stay cheap: no package
    __init__ below lspguard imports anything, so importing a module costs only its own imports."""
    for init in sorted(PACKAGE.glob("*/**/__init__.py")):
        if init.relative_to(PACKAGE).as_posix() in _LAZY_INITS:
            continue
        tree = ast.parse(init.read_text())
        imports = [node for node in ast.walk(tree)
                   if isinstance(node, (ast.Import, ast.ImportFrom))]
        assert not imports, f"{init.relative_to(PACKAGE.parent)} imports something"
