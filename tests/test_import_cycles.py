"""No import cycle among the modules of stage5cli, and no command module importing another.

The graph is built from the source with `ast` (nothing is imported). Edges:

- `import stage5cli.a.b` and `from stage5cli.a import b` / `from .a import b` (relative imports are
  resolved against the importing module's package); `from P import n` is an edge to the module
  `P.n` when that is a module, else to `P`;
- at module level (including class bodies and `try`/`if` blocks) AND inside functions: a lazy
  import only postpones a cycle to the first call, and a cycle is a cycle. Imports under
  `if TYPE_CHECKING:` never run and are left out;
- the implicit import of a parent package (importing `stage5cli.cli.app` first runs
  `stage5cli/cli/__init__.py`) is not an edge: the parent is already initialising when a module
  of it imports a sibling, and a module that needs a name from its parent package says so with an
  explicit import, which is an edge.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "stage5cli"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
COMMANDS = f"{PACKAGE}.cli.commands"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    lazy: bool  # inside a function

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} (line {self.line}{', in a function' if self.lazy else ''})"


def module_files(root: Path = ROOT) -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is_package) for every .py file of the package."""
    out: dict[str, tuple[Path, bool]] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        out[".".join(parts)] = (path, is_package)
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """(node, lazy) for every import statement that can run, lazy = inside a function."""

    def visit(node: ast.AST, lazy: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, lazy
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.orelse:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), lazy)
            else:
                inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
                yield from visit(child, inner)

    yield from visit(tree, False)


def _known(name: str, modules: dict) -> str | None:
    """The longest prefix of a dotted name that is one of our modules."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def build_graph(modules: dict[str, tuple[Path, bool]] | None = None) -> list[Edge]:
    modules = module_files() if modules is None else modules
    edges: list[Edge] = []
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, lazy in _imports(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = package.split(".")
                    if node.level > 1:
                        base = base[: -(node.level - 1)]
                    parent = ".".join(base + ([node.module] if node.module else []))
                else:
                    parent = node.module or ""
                for alias in node.names:
                    sub = f"{parent}.{alias.name}"
                    targets.append(sub if sub in modules else parent)
            for t in targets:
                hit = _known(t, modules) if t.split(".")[0] == PACKAGE else None
                if hit is not None and hit != name:
                    edges.append(Edge(name, hit, node.lineno, lazy))
                elif hit == name:
                    edges.append(Edge(name, hit, node.lineno, lazy))  # a self-import
    return edges


def find_cycles(edges: list[Edge]) -> list[tuple[list[str], list[Edge]]]:
    """Per strongly connected component with more than one module (or a self-import): its
    modules and one concrete cycle through them, as edges. Tarjan's algorithm, iterative."""
    graph: dict[str, list[Edge]] = {}
    for e in edges:
        graph.setdefault(e.source, []).append(e)
        graph.setdefault(e.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            recurse = False
            for j in range(i, len(graph[node])):
                nxt = graph[node][j].target
                if nxt not in index:
                    work.append((node, j + 1))
                    work.append((nxt, 0))
                    recurse = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recurse:
                continue
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                components.append(comp)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    cycles = []
    for comp in components:
        members = set(comp)
        self_loops = [e for e in graph[comp[0]] if e.target == comp[0]]
        if len(comp) == 1 and not self_loops:
            continue
        if len(comp) == 1:
            cycles.append((comp, self_loops[:1]))
            continue
        start = min(comp)  # a stable choice; walk the shortest way back to it (BFS)
        prev: dict[str, Edge] = {}
        frontier = [start]
        found = None
        while frontier and found is None:
            nxt_frontier = []
            for node in frontier:
                for e in graph[node]:
                    if e.target not in members:
                        continue
                    if e.target == start:
                        found = e
                        break
                    if e.target not in prev:
                        prev[e.target] = e
                        nxt_frontier.append(e.target)
                if found:
                    break
            frontier = nxt_frontier
        path = [found]
        while path[0].source != start:
            path.insert(0, prev[path[0].source])
        cycles.append((sorted(comp), path))
    return cycles


def _describe(cycles: list[tuple[list[str], list[Edge]]]) -> str:
    return "\n".join(f"cycle among {', '.join(members)}:\n  " + "\n  ".join(map(str, path))
                     for members, path in cycles)


# ---- the checker itself --------------------------------------------------------------------


def _fake_package(tmp_path: Path, files: dict[str, str]) -> dict[str, tuple[Path, bool]]:
    for rel, text in files.items():
        f = tmp_path / PACKAGE / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return module_files(tmp_path / PACKAGE)


def test_checker_finds_module_and_function_level_cycles(tmp_path):
    modules = _fake_package(tmp_path, {
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "def f():\n    from stage5cli.sub.c import x\n",
        "sub/__init__.py": "",
        "sub/c.py": "from ..a import thing\nimport os\n",
        "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import e\n",
        "e.py": "from .d import y\n",
        "f.py": "from stage5cli import f\n",
    })
    edges = build_graph(modules)
    assert {(e.source, e.target, e.lazy) for e in edges} == {
        ("stage5cli.a", "stage5cli.b", False),
        ("stage5cli.b", "stage5cli.sub.c", True),
        ("stage5cli.sub.c", "stage5cli.a", False),
        ("stage5cli.e", "stage5cli.d", False),  # d -> e is under TYPE_CHECKING: no edge
        ("stage5cli.f", "stage5cli.f", False),
    }
    cycles = find_cycles(edges)
    assert sorted([e.source for e in path] for _, path in cycles) == [
        ["stage5cli.a", "stage5cli.b", "stage5cli.sub.c"], ["stage5cli.f"]]
    assert find_cycles([e for e in edges if not e.lazy]) == [
        (["stage5cli.f"], [Edge("stage5cli.f", "stage5cli.f", 1, False)])]
    assert "stage5cli.b -> stage5cli.sub.c (line 2, in a function)" in _describe(cycles)


# ---- the package ---------------------------------------------------------------------------


def test_the_graph_sees_the_package():
    edges = build_graph()
    assert len(module_files()) > 40
    pairs = {(e.source, e.target) for e in edges}
    assert ("stage5cli.cli", "stage5cli.cli.commands.project") in pairs
    assert ("stage5cli.cli.commands.project", "stage5cli.cli.app") in pairs
    assert ("stage5cli.cli.commands.curation", "stage5cli.curation") in pairs  # from stage5cli import curation


def test_no_import_cycles():
    cycles = find_cycles(build_graph())
    assert not cycles, "import cycles in stage5cli:\n" + _describe(cycles)


def test_command_modules_import_only_the_app_and_the_core():
    bad = [e for e in build_graph() if e.source.startswith(COMMANDS + ".")
           and (e.target.startswith(COMMANDS) or e.target == "stage5cli.cli")]
    assert not bad, "a command module imports another one (share it via stage5cli.cli.app " \
                    "or the core instead):\n" + "\n".join(map(str, bad))


def test_the_core_never_imports_the_cli():
    def in_cli(m: str) -> bool:
        return m == "stage5cli.cli" or m.startswith("stage5cli.cli.")

    bad = [e for e in build_graph() if not in_cli(e.source) and in_cli(e.target)
           and e.source != "stage5cli.__main__"]
    assert not bad, "the core imports the command line:\n" + "\n".join(map(str, bad))
