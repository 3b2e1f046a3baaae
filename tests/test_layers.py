"""The package's floors and its import graph (README, "Architecture").

Every module's imports (module level and inside functions) are read with ``ast``. An import of a
module on a higher floor than the importer's fails, naming both; so does any cycle in the graph
module -> imported modules, naming the modules around it (STYLE habit 14: no cycle, not even
inside a folder, and an import inside a function that dodges one is still one).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "faceinpaint"

# Low to high; a module's floor is the first entry its dotted name starts with.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("batch", "io", "provenance", "device", "paths", "safe_load", "settings"),
    ("models",),
    ("ops",),
    ("metrics",),
    ("landmarks",),
    ("losses",),
    ("data",),
    ("latent_search",),
    ("lit",),
    ("eval",),
    ("photo",),
    ("bench",),  # times everything below, the photo command included
    ("commands",),
    ("cli", "__main__", "__init__"),
)


def floor_of(module: str) -> int:
    """The floor of ``faceinpaint.<module>`` (dotted, without the package)."""
    top = module.split(".")[0]
    for number, names in enumerate(FLOORS):
        if top in names:
            return number
    raise KeyError(f"faceinpaint.{module} is on no floor: add it to FLOORS")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def is_module(name: str) -> bool:
    """Whether ``name`` (dotted, ``faceinpaint.`` first) is a module or package of the package."""
    path = PACKAGE.joinpath(*name.split(".")[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of each ``faceinpaint`` module that ``path`` imports.

    ``from faceinpaint.x import y`` names ``faceinpaint.x.y`` where ``y`` is a submodule, else
    ``faceinpaint.x`` (``faceinpaint`` alone is the package's ``__init__``).
    """
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [
                f"{node.module}.{alias.name}"
                if is_module(f"{node.module}.{alias.name}")
                else node.module
                for alias in node.names
            ]
        else:
            continue
        found += [
            (node.lineno, name)
            for name in names
            if name == "faceinpaint" or name.startswith("faceinpaint.")
        ]
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_floor():
    for path in MODULES:
        floor_of(module_name(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    importer = module_name(path)
    upward = [
        f"line {line}: {name}"
        for line, name in imported(path)
        if floor_of(name.removeprefix("faceinpaint").removeprefix(".") or "__init__")
        > floor_of(importer)
    ]
    assert not upward, f"faceinpaint.{importer} imports from a higher floor: {upward}"


def test_an_upward_import_is_found(tmp_path, monkeypatch):
    """The check itself: a lower module importing a higher one is reported."""
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path)
    (tmp_path / "ops").mkdir()
    source = tmp_path / "ops" / "fills.py"
    source.write_text("def f():\n    from faceinpaint.eval.runner import evaluate\n")
    with pytest.raises(AssertionError, match="line 2: faceinpaint.eval.runner"):
        test_imports_point_down(source)


def import_graph() -> dict[str, set[str]]:
    """Each module (``faceinpaint.x.y``; a package's ``__init__`` is the package) -> the modules
    it imports.

    Every ``import`` statement counts, at module level, inside a function, or under
    ``if TYPE_CHECKING:``: a guarded import does not run, but the two modules still know each
    other, and that coupling is what habit 14 forbids. Not edges: the parent packages that
    ``import faceinpaint.x.y`` initialises on the way (a package holds its modules; every one of
    them would otherwise loop through it), and modules named by a string at run time (a
    checkpoint's class path, a package's lazy exports).
    """
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        importer = "faceinpaint" if name == "__init__" else f"faceinpaint.{name}"
        graph[importer] = {module for _, module in imported(path)}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """The modules ``start`` imports, directly or through others (itself only via a cycle)."""
    reached: set[str] = set()
    frontier = list(graph.get(start, ()))
    while frontier:
        module = frontier.pop()
        if module not in reached:
            reached.add(module)
            frontier += graph.get(module, ())
    return reached


def shortest_cycle(graph: dict[str, set[str]], start: str) -> list[str]:
    """``[start, ..., start]``, the fewest imports that lead from ``start`` back to it."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        step = []
        for module in frontier:
            for target in sorted(graph.get(module, ())):
                if target == start:
                    chain = [module]
                    while chain[-1] != start:
                        chain.append(parents[chain[-1]])
                    return chain[::-1] + [start]
                if target not in parents:
                    parents[target] = module
                    step.append(target)
        frontier = step
    raise ValueError(f"{start} is on no cycle")


def cycles(graph: dict[str, set[str]]) -> list[str]:
    """A line per group of modules that import each other (a strongly connected component): the
    shortest cycle from the group's first module in sorted order, then the group's other modules.
    """
    found = []
    grouped: set[str] = set()
    for start in sorted(graph):
        reach = reachable(graph, start)
        if start in grouped or start not in reach:
            continue
        group = {module for module in reach if start in reachable(graph, module)}
        grouped |= group
        cycle = shortest_cycle(graph, start)
        others = sorted(group - set(cycle))
        found.append(
            " -> ".join(cycle) + (f" (also on a cycle: {', '.join(others)})" * bool(others))
        )
    return found


def test_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(found)


def test_a_cycle_is_found(tmp_path, monkeypatch):
    """The check itself: a cycle closed by an import inside a function is reported with the other
    modules of its group, a package's ``__init__`` is a module of its own, a module importing itself
    is a cycle, and a module that only imports into a cycle (``e``) is not on it."""
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path)
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "__init__.py").write_text("")
    (tmp_path / "data" / "a.py").write_text("from faceinpaint.data import b\n")
    (tmp_path / "data" / "b.py").write_text("def f():\n    import faceinpaint.data.c\n")
    (tmp_path / "data" / "c.py").write_text(
        "from faceinpaint.data.a import g\nimport faceinpaint.data.d\n"
    )
    (tmp_path / "data" / "d.py").write_text("from faceinpaint.data.c import h\n")
    (tmp_path / "data" / "e.py").write_text("from faceinpaint.data import d\n")
    (tmp_path / "ops.py").write_text("from faceinpaint import ops\n")
    (tmp_path / "landmarks").mkdir()
    (tmp_path / "landmarks" / "__init__.py").write_text("from faceinpaint.landmarks.net import N\n")
    (tmp_path / "landmarks" / "net.py").write_text("from faceinpaint.landmarks import SIZE\n")
    with pytest.raises(AssertionError) as failure:
        test_no_import_cycle()
    assert [line.strip() for line in str(failure.value).splitlines()[1:4]] == [
        "faceinpaint.data.a -> faceinpaint.data.b -> faceinpaint.data.c -> faceinpaint.data.a"
        " (also on a cycle: faceinpaint.data.d)",
        "faceinpaint.landmarks -> faceinpaint.landmarks.net -> faceinpaint.landmarks",
        "faceinpaint.ops -> faceinpaint.ops",
    ]
