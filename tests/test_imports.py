"""The modules of fluxops form a layered dependency graph: no import cycle, and `comfy` never imports `doctor`.

What counts as a dependency: every `import X` and `from X import n` anywhere in a module, at the top, inside a
function or a try block alike. An import inside a function is deferred, not absent: it runs when the function
does, and a cycle through it is still two modules that cannot be understood, changed or tested one without the
other. The only imports left out are those under `if TYPE_CHECKING:`, which never run.

How an import maps to a module: `import a.b.c` depends on the deepest fluxops module it names; `from a.b import
n` depends on `a.b.n` when that is a module (a submodule import), else on `a.b` (a name defined there);
relative imports are resolved against the importing module's package. Importing `a.b.c` does not add edges to
the packages `a` and `a.b` whose `__init__` Python runs on the way: a package whose `__init__` gathers its
submodules (`fluxops/doctor/__init__.py` imports its checks, which import `fluxops.doctor.result`) would
otherwise be a cycle by construction, while a real one (`__init__` importing a module that imports a name
from that `__init__`) is still an explicit edge both ways and is caught.

A cycle is a strongly connected component of that graph with more than one module, or a module importing
itself.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fluxops"


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package's name maps to its __init__)."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under `node` that can run (those under `if TYPE_CHECKING:` cannot)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _runtime_imports_of(other)
            continue
        yield from _runtime_imports_of(child)


def _runtime_imports_of(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    yield from _runtime_imports(node)


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The deepest module of the package that `name` names (None for anything outside it)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `module` depends on."""
    path = modules[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        found |= {known for target in targets if (known := _known(target, modules)) is not None}
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    return {module: imports_of(module, modules) for module in modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module, or a module importing itself (Tarjan's
    algorithm, iterative so a deep graph cannot hit the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.get(target, ())))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    found.append(sorted(component))
    return found


def _edges_within(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    members = set(component)
    return [f"{a} -> {b}" for a in component for b in sorted(graph[a] & members)]


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph(module_files())
    found = cycles(graph)
    assert not found, "import cycles (each with the imports that close it):\n" + "\n".join(
        "  " + "; ".join(_edges_within(component, graph)) for component in found
    )


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same graph with each module folded into its part of fluxops (`fluxops.hub.partial` -> `fluxops.hub`;
    top-level modules such as `fluxops.errors` stay themselves)."""
    def part(module: str) -> str:
        return ".".join(module.split(".")[:2])

    folded: dict[str, set[str]] = {}
    for module, targets in graph.items():
        folded.setdefault(part(module), set()).update(part(t) for t in targets if part(t) != part(module))
    return folded


def test_the_packages_are_layered_too() -> None:
    """No two parts of fluxops lean on each other (e.g. `models` using `hub` while `hub` uses `models`): each
    part can be read with only the parts below it."""
    graph = package_graph(import_graph(module_files()))
    found = cycles(graph)
    assert not found, "package cycles:\n" + "\n".join(
        "  " + "; ".join(_edges_within(component, graph)) for component in found
    )


def test_comfy_never_imports_doctor() -> None:
    graph = import_graph(module_files())
    wrong = [
        f"{module} imports {target}"
        for module, targets in sorted(graph.items())
        if module == "fluxops.comfy" or module.startswith("fluxops.comfy.")
        for target in sorted(targets)
        if target == "fluxops.doctor" or target.startswith("fluxops.doctor.")
    ]
    assert not wrong, "comfy must not depend on doctor (doctor checks comfy, not the other way):\n" + "\n".join(wrong)


def test_the_walk_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    """The walk itself: a cycle closed only inside a function, or through a relative import, is found; an
    import under TYPE_CHECKING is not a dependency."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from . import low\n")
    (package / "top.py").write_text("from pkg.sub import low\n")
    (package / "sub" / "low.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import typed\n"
        "def late():\n    from ..top import x\n"
    )
    (package / "typed.py").write_text("import pkg.sub.low\n")
    modules = module_files(package)
    graph = import_graph(modules)
    assert graph["pkg.sub"] == {"pkg.sub.low"}
    assert graph["pkg.sub.low"] == {"pkg.top"}  # the function-level, relative one; not the TYPE_CHECKING one
    assert cycles(graph) == [["pkg.sub.low", "pkg.top"]]
