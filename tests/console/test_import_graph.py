"""A static scan of the apps' imports: no module may import itself back, even lazily.

The scan reads the source with `ast` and never imports it, so a cycle Python happens to
survive today (because of the order in which modules load) still fails here. An import inside
a function counts too: deferring an import hides a cycle, it does not remove it. Only imports
under `if TYPE_CHECKING:` are left out (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("imp_admin", "topology", "messaging", "dbmerge", "api")


def app_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the apps by dotted name (migrations included: they load too)."""
    modules = {}
    for app in APPS:
        for path in sorted((root / app).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module):
    """Every import statement of the module, except those under `if TYPE_CHECKING:`."""
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
        else:
            pending.extend(ast.iter_child_nodes(node))


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the apps' modules it imports.

    `from package import name` points at `package.name` when that is a module, otherwise at
    the package itself (its `__init__` runs, and whatever that imports).
    """
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        edges = set()
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names if alias.name in modules)
                continue
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:
                    edges.add(submodule)
                elif base in modules:
                    edges.add(base)
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        # Iterative, so a deep chain of imports cannot hit the recursion limit.
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            module, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[module] = min(low[module], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def test_no_import_cycle_among_the_apps_modules():
    found = cycles(import_graph(app_modules()))
    assert found == [], "import cycles among the apps' modules:\n" + "\n".join(" ↔ ".join(c) for c in found)


def test_the_scan_finds_a_cycle_when_there_is_one(tmp_path):
    """The scan itself can fail: two modules importing each other are reported, the lazy import
    inside a function included; an import only for type checking is not one."""
    app = tmp_path / "dbmerge"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "tasks.py").write_text("from dbmerge.jobrunner import run_job\n")
    (app / "jobrunner.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from dbmerge.views import JobView\n"
        "def enqueue():\n    from . import tasks\n"
    )
    (app / "views.py").write_text("from .jobrunner import enqueue\n")
    assert cycles(import_graph(app_modules(tmp_path))) == [["dbmerge.jobrunner", "dbmerge.tasks"]]
