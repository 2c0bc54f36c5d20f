"""Layering: no import cycle, imports at the top, every module importable on its own.

The modules are discovered, not listed: every ``*.py`` under the project's
packages is a node of the import graph read from the source (the AST), so a
module added later is checked with no change here.
"""

import ast
import graphlib
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The import graph spans these; the imports-at-the-top rule and the import check
# cover the library and the experiments (benchmarks import jax inside functions on
# purpose: XLA_FLAGS must be set first).
GRAPH_PACKAGES = ("regan_jax", "experiments", "benchmarks")
TOP_PACKAGES = ("regan_jax", "experiments")
# Top-level packages a function may import: optional dependencies only, none of
# them installed by `pip install regan_jax`. torch is the `bench` extra (the
# PyTorch reference); PIL is not listed: matplotlib requires pillow, so it is
# always there and goes to the top like any required dependency.
OPTIONAL_DEPENDENCIES = frozenset({"torch"})


def module_name(path: pathlib.Path, root: pathlib.Path = ROOT) -> str:
    """``regan_jax/data/builders.py`` -> ``regan_jax.data.builders`` (``__init__``: the package)."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules(packages=GRAPH_PACKAGES) -> dict[str, pathlib.Path]:
    """Every module of ``packages``: its dotted name -> its file."""
    return {
        module_name(p): p for package in packages for p in sorted((ROOT / package).rglob("*.py"))
    }


def _package_of(name: str, path: pathlib.Path) -> str:
    """The package a module's relative imports start from."""
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _prefixes(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _from_module(name: str, path: pathlib.Path, node: ast.ImportFrom) -> str:
    """The absolute name of the module a ``from M import x`` in ``name`` reads."""
    if not node.level:
        return node.module
    package = _package_of(name, path).split(".")
    return ".".join(package[: len(package) - node.level + 1] + [node.module] * bool(node.module))


def imports(name: str, path: pathlib.Path, modules) -> set[str]:
    """The project modules that importing (or calling into) ``name`` executes.

    Module-level and function-level imports alike. ``import a.b.c`` and
    ``from a.b import c`` execute ``a``, ``a.b`` (and ``a.b.c`` if a module);
    a package that encloses ``name`` is not an edge when only its submodules
    are taken from it (Python returns those from a package still importing),
    but is one when a name defined by its ``__init__`` is.
    """
    ancestors = set(_prefixes(name)[:-1])
    edges = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                edges.update(p for p in _prefixes(alias.name) if p not in ancestors)
        elif isinstance(node, ast.ImportFrom):
            base = _from_module(name, path, node)
            submodules = {f"{base}.{a.name}" for a in node.names} & modules.keys()
            takes_attribute = len(submodules) < len(node.names)
            edges.update(
                p for p in _prefixes(base) if p not in ancestors or (p == base and takes_attribute)
            )
            edges.update(submodules)
    return {m for m in edges if m in modules and m != name}


def import_graph(modules=None) -> dict[str, set[str]]:
    modules = project_modules() if modules is None else modules
    return {name: imports(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's strongly connected components of two or more modules (Tarjan), sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
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
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def function_level_imports(path: pathlib.Path) -> list[tuple[int, str, str]]:
    """``(line, imported module, statement)`` of every import inside a function of a module."""
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if in_function and isinstance(child, ast.Import):
                found.extend((child.lineno, a.name, f"import {a.name}") for a in child.names)
            elif in_function and isinstance(child, ast.ImportFrom):
                module = "." * child.level + (child.module or "")
                names = ", ".join(a.name for a in child.names)
                found.append((child.lineno, module, f"from {module} import {names}"))
            visit(
                child,
                in_function
                or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)),
            )

    visit(ast.parse(path.read_text(), str(path)), False)
    return found


def shadowed_submodules(name: str, path: pathlib.Path, modules) -> list[tuple[int, str]]:
    """``(line, name)`` where a package's ``__init__`` binds a submodule's name to something else.

    ``from experiments import train`` returns whatever ``experiments.train`` is
    bound to once the package is imported, so ``from regan_jax import train``
    in ``experiments/__init__.py`` would hide the entry point ``experiments.train``.
    """
    if path.name != "__init__.py":
        return []
    found = []
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Import):
            bound = [(a.asname or a.name.split(".")[0], a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _from_module(name, path, node)
            bound = [(a.asname or a.name, f"{base}.{a.name}") for a in node.names]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound = [(node.name, None)]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound = [(n.id, None) for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        else:
            continue
        found.extend(
            (node.lineno, local)
            for local, value in bound
            if f"{name}.{local}" in modules and value != f"{name}.{local}"
        )
    return found


_IMPORT_EACH = """
import importlib, sys, traceback
project = {packages!r}
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] in project]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except BaseException:
        failed.append(name + ": " + traceback.format_exc().strip().splitlines()[-1])
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_the_project_has_modules_to_check():
    modules = project_modules()
    assert {
        "regan_jax.config",
        "regan_jax.penalties.builder",
        "regan_jax.data",
        "experiments.train",
        "benchmarks.run",
    } <= modules.keys()
    assert "regan_jax.penalties" in import_graph(modules)["regan_jax.config"]


def test_imports_resolve_to_the_modules_they_execute(tmp_path):
    files = {
        "pkg/__init__.py": "from pkg.sub import thing\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/a.py": "from . import b\nfrom .b import name\nfrom .. import other\n"
        "def later():\n    import pkg.deep.c\n",
        "pkg/sub/b.py": "from pkg.sub import VALUE\nimport numpy\n",
        "pkg/other.py": "from pkg import sub\n",
        "pkg/deep/__init__.py": "",
        "pkg/deep/c.py": "",
    }
    modules = {}
    for relative, text in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        modules[module_name(path, tmp_path)] = path
    graph = {name: imports(name, path, modules) for name, path in modules.items()}
    assert graph["pkg"] == {"pkg.sub"}  # a name from pkg.sub runs pkg.sub's __init__
    # Sibling submodules (relative, or a function's import of another package).
    assert graph["pkg.sub.a"] == {"pkg.sub.b", "pkg.other", "pkg.deep", "pkg.deep.c"}
    # A name defined by the enclosing package's __init__: that __init__ is an edge.
    assert graph["pkg.sub.b"] == {"pkg.sub"}
    assert graph["pkg.other"] == {"pkg.sub"}
    assert cycles(graph) == []
    (tmp_path / "pkg/deep/c.py").write_text("from pkg.sub.a import later\n")
    graph = {name: imports(name, path, modules) for name, path in modules.items()}
    assert cycles(graph) == [["pkg.deep.c", "pkg.sub.a"]]


def test_cycles_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"f"}, "f": {"e"}}
    assert cycles(graph) == [["a", "b", "c"], ["e", "f"]]
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter(graph).prepare()


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    found = cycles(graph)
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as e:
        pytest.fail(
            f"import cycle: {' -> '.join(reversed(e.args[1]))}; every group of modules "
            f"that import each other: {found}"
        )
    assert not found


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Edges against the layering: the library importing the experiments, or the
    study importing a command module (``experiments.<command>``; the package
    ``experiments`` itself, the config parser, is allowed)."""

    def is_command(module):
        return (
            module.startswith("experiments.")
            and not module.startswith("experiments.study")
            and not module.startswith("experiments.configs")
        )

    return sorted(
        f"{a} -> {b}"
        for a, deps in graph.items()
        for b in deps
        if (a.split(".")[0] == "regan_jax" and b.split(".")[0] == "experiments")
        or (a.startswith("experiments.study") and is_command(b))
    )


def test_layer_violations_are_found():
    graph = {
        "regan_jax.train": {"experiments"},
        "experiments.study.tables": {"experiments.sweep"},
        "experiments.study.runner": {"experiments", "experiments.study.sweeps"},
        "experiments.sweep": {"experiments.study.sweeps", "regan_jax.train"},
    }
    assert layer_violations(graph) == [
        "experiments.study.tables -> experiments.sweep",
        "regan_jax.train -> experiments",
    ]


def test_the_library_never_imports_the_experiments_nor_the_study_a_command():
    assert not layer_violations(import_graph())


def test_function_level_imports_are_found(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(
        "import os\nif os:\n    import sys\n\n"
        "def f():\n    import json\n    def g():\n        from . import x\n\n"
        "class C:\n    def h(self):\n        from a.b import c, d\n"
    )
    assert function_level_imports(path) == [
        (6, "json", "import json"),
        (8, ".", "from . import x"),
        (12, "a.b", "from a.b import c, d"),
    ]


def test_imports_sit_at_the_top_of_every_module():
    modules = {str(p.relative_to(ROOT)): p for p in project_modules(TOP_PACKAGES).values()}
    found = {relative: function_level_imports(path) for relative, path in modules.items()}
    hidden = [
        f"{relative}:{line}: {statement}"
        for relative, entries in found.items()
        for line, module, statement in entries
        if module.split(".")[0] not in OPTIONAL_DEPENDENCIES
    ]
    assert not hidden, (
        "imports inside functions (move them to the top; where that makes a "
        "cycle, move the code to the module it belongs in):\n" + "\n".join(hidden)
    )


def test_no_package_hides_one_of_its_submodules(tmp_path):
    (tmp_path / "pkg").mkdir()
    init = tmp_path / "pkg" / "__init__.py"
    init.write_text(
        "from other import train\nfrom pkg import sample\nfrom . import sweep as sweep\n"
        "import sweep\ndef load():\n    pass\n"
    )
    modules = {
        f"pkg.{m}": tmp_path / "pkg" / f"{m}.py" for m in ("train", "sample", "sweep", "load")
    } | {"pkg": init}
    assert shadowed_submodules("pkg", init, modules) == [(1, "train"), (4, "sweep"), (5, "load")]
    hidden = [
        f"{path.relative_to(ROOT)}:{line}: {local}"
        for name, path in project_modules().items()
        for line, local in shadowed_submodules(name, path, project_modules())
    ]
    assert not hidden, f"package __init__ names that hide a submodule: {hidden}"


def test_every_module_imports_first_in_a_fresh_interpreter():
    # One interpreter; before each module every project module is dropped from
    # sys.modules, so each is imported first, with the order its own imports give
    # (third-party packages stay loaded: they are not what this checks).
    names = sorted(project_modules(TOP_PACKAGES))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH.format(packages=TOP_PACKAGES), *names],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"modules that fail to import first:\n{result.stdout}{result.stderr[-2000:]}"
    )
