"""No import circle in the package: the module import graph of oneword/, read from the source, has no cycle.

Every import counts, at module level and inside functions alike (an import deferred into a function still ties
the two modules together); only imports under `if TYPE_CHECKING:` do not, since they never run. `from A import B`
is an edge to the module A.B when B is one, else to A. Importing a submodule also runs its package's
`__init__`, but that implicit edge is not counted: a package may import its own modules.

And the command line's modules reach none of the heavy libraries (torch, diffusers...) through the imports that
run when they load: at module level, where a package's `__init__` counts too (tests/cli/test_light_cli.py checks
the same by running `--help`; this one names the chain).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "oneword"


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _type_checking_only(tree: ast.AST) -> set[int]:
    """Ids of the nodes inside `if TYPE_CHECKING:` blocks."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return skipped


def _inside_functions(tree: ast.AST) -> set[int]:
    """Ids of the nodes inside function bodies (imports there run only when the function is called)."""
    return {id(inner) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            for statement in node.body for inner in ast.walk(statement)}


def imported_names(name: str, path: Path, at_load: bool = False) -> list[str]:
    """Every dotted name the module `name` imports (module level and inside functions; with `at_load`, only what
    runs when the module loads), `from A import B` as A.B."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skipped = _type_checking_only(tree) | (_inside_functions(tree) if at_load else set())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names.extend(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports."""
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in imported_names(name, path):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
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
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_package_has_no_import_circle():
    graph = import_graph(module_files())
    circles = cycles(graph)
    report = "\n".join(
        " <-> ".join(c) + "\n" + "\n".join(f"    {m} imports {', '.join(sorted(graph[m] & set(c)))}" for m in c)
        for c in circles
    )
    assert not circles, f"import circles in oneword/:\n{report}"


HEAVY = ("torch", "diffusers", "transformers", "gradio", "matplotlib")
"""What `oneword --help` must not load: seconds and hundreds of MB before the first line."""


def heavy_chains(modules: dict[str, Path], roots: list[str]) -> list[str]:
    """`heavy <- module <- ... <- root` for each module that the roots load (imports at module level, a module's
    packages' `__init__` too) and that imports a heavy library at module level."""
    parent: dict[str, str | None] = dict.fromkeys(roots)
    queue, chains = list(roots), []
    while queue:
        name = queue.pop(0)
        targets = []
        for imported in imported_names(name, modules[name], at_load=True):
            if imported.split(".")[0] in HEAVY:
                chain, at = [imported.split(".")[0]], name
                while at is not None:
                    chain.append(at)
                    at = parent[at]
                chains.append(" <- ".join(chain))
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            parts = imported.split(".")
            targets += [".".join(parts[:i]) for i in range(1, len(parts) + 1)]  # the packages' __init__ run first
        for target in targets:
            if target in modules and target not in parent:
                parent[target] = name
                queue.append(target)
    return sorted(set(chains))


def test_the_command_line_loads_no_heavy_library():
    modules = module_files()
    chains = heavy_chains(modules, [name for name in modules if name.split(".")[:2] == ["oneword", "cli"]])
    assert not chains, "the command line imports a heavy library when it loads:\n" + "\n".join(chains)


def test_heavy_chains_follow_module_level_imports_and_packages(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("import torch\n")
    (package / "sub" / "b.py").write_text("")
    (package / "a.py").write_text("from pkg.sub.b import thing\ndef f():\n    import diffusers\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n"
                                  "def g():\n    import pkg.sub\n")
    modules = module_files(package)
    assert heavy_chains(modules, ["pkg.a"]) == ["torch <- pkg.sub <- pkg.a"]
    assert heavy_chains(modules, ["pkg.c"]) == []


def test_the_graph_sees_imports_inside_functions_and_skips_type_checking_blocks(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n"
                                          "from .. import a\n")
    (package / "c.py").write_text("import pkg.a\nfrom pkg.sub.b import thing\n")
    graph = import_graph(module_files(package))
    assert graph == {"pkg": set(), "pkg.sub": set(), "pkg.a": {"pkg.sub.b"}, "pkg.sub.b": {"pkg.a"},
                     "pkg.c": {"pkg.a", "pkg.sub.b"}}
    assert cycles(graph) == [["pkg.a", "pkg.sub.b"]]
