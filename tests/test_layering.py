"""The package's modules import each other without a cycle, and no module imports a layer
above its own (module-level and function-level imports; ``if TYPE_CHECKING:`` blocks and the
package ``__init__`` re-exports excluded)."""

import ast
from pathlib import Path

import spikegrad

ROOT = Path(spikegrad.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["spikegrad", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1]) if parts[-1] == "__init__" else ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """Modules of this package that ``module`` imports anywhere outside TYPE_CHECKING blocks."""
    found: set[str] = set()
    base = module.split(".") if is_package else module.split(".")[:-1]

    def visit(node):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("spikegrad"):
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("spikegrad"):
                found.add(target)
                for alias in node.names:                 # "from .pkg import submodule"
                    if f"{target}.{alias.name}" in known:
                        found.add(f"{target}.{alias.name}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in known and m != module}


def _graph() -> dict[str, set[str]]:
    files = sorted(ROOT.rglob("*.py"))
    known = {_module_name(f) for f in files}
    graph = {}
    for f in files:
        name = _module_name(f)
        if f.name == "__init__.py":
            graph[name] = set()                            # re-exports: excluded
            continue
        graph[name] = _imports(ast.parse(f.read_text(encoding="utf-8")), name, False, known)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def test_no_import_cycle_among_the_packages_modules():
    graph = _graph()
    assert "spikegrad.kernels.compiled" in graph and "spikegrad.events" in graph
    assert _cycle(graph) is None, " → ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_core_types_import_nothing_above_them():
    """events, errors, registry and the numba helpers sit at the bottom of the layering."""
    graph = _graph()
    core = {"spikegrad.errors", "spikegrad.registry", "spikegrad._numba", "spikegrad.events"}
    for module in core:
        assert graph[module] <= core, f"{module} imports {graph[module] - core}"


# The layers, bottom up (docs/ARCHITECTURE.md): a module may import its own layer and the
# ones below, never one above.  Sub-packages are matched by prefix.
LAYERS = [
    ("core", ["errors", "registry", "events", "_numba", "_autograd", "_format", "_optuna", "_optional", "allocator", "plugins"]),
    ("equations and data", ["surrogates", "dynamics", "data"]),
    ("kernels", ["kernels"]),
    ("nn", ["neurons", "network", "readouts", "init", "regularizers", "models"]),
    ("learning", ["losses", "rules", "optim"]),
    ("config", ["config"]),
    ("training", ["training"]),
    ("studies, figures and interop", ["sweeps", "paper_figures", "report", "figures", "interop"]),
    ("interface", ["cli"]),
]


def _layer(module: str) -> int:
    name = module.removeprefix("spikegrad.")
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"module {module} belongs to no layer of tests/test_layering.py::LAYERS")


def test_no_module_imports_a_higher_layer():
    graph = _graph()
    wrong = []
    for module, deps in graph.items():
        if module == "spikegrad":
            continue                                        # the package's re-exports
        for dep in deps:
            if dep != "spikegrad" and _layer(dep) > _layer(module):
                wrong.append(f"{module} ({LAYERS[_layer(module)][0]}) imports {dep} ({LAYERS[_layer(dep)][0]})")
    assert not wrong, "\n".join(sorted(wrong))
