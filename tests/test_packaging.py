"""pyproject.toml declares every package faceinpaint imports: a fresh `pip install -e .` must
run every default table (a reused environment hides a dependency dropped from the list)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

from faceinpaint.ops.fills import FILL_PACKAGES, FILLS_WITHOUT_BANK

REPO = Path(__file__).resolve().parents[1]
# modules whose distribution ships no top_level.txt, so packages_distributions cannot map them
DISTRIBUTION_OF = {"dlib": "dlib-bin"}


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _normalised(re.match(r"\s*([A-Za-z0-9_.-]+)", requirement).group(1))


def _declared() -> tuple[set[str], set[str]]:
    """(runtime dependencies, those of every extra), as normalised distribution names."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = {_requirement_name(r) for r in project["dependencies"]}
    extras = {
        _requirement_name(r) for group in project["optional-dependencies"].values() for r in group
    }
    return runtime, extras


def _imported_modules() -> set[str]:
    """Top-level modules the package imports: import statements anywhere (functions included)
    and the modules the fills import by name."""
    modules = {module.split(".")[0] for module, _ in FILL_PACKAGES.values()}
    for path in (REPO / "faceinpaint").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"faceinpaint", "__future__"}


def test_every_third_party_import_is_a_declared_dependency():
    runtime, extras = _declared()
    distributions = importlib.metadata.packages_distributions()
    undeclared = {}
    for module in sorted(_imported_modules()):
        names = distributions.get(module) or [DISTRIBUTION_OF.get(module, f"<{module}: unknown>")]
        if not {_normalised(name) for name in names} & (runtime | extras):
            undeclared[module] = names
    assert not undeclared, (
        f"imported but not in pyproject.toml (module: distributions): {undeclared}"
    )


def test_the_default_tables_fills_are_runtime_dependencies_not_extras():
    runtime, _ = _declared()
    needed = {FILL_PACKAGES[name][1] for name in FILLS_WITHOUT_BANK if name in FILL_PACKAGES}
    assert needed, "no fill of the default tables imports a package of its own"
    missing = sorted(name for name in needed if _normalised(name) not in runtime)
    assert not missing, f"the default tables fill with {missing}, absent from dependencies"


def test_the_docker_constraints_pin_every_dependency_and_extra():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [
        line
        for extra, lines in project["optional-dependencies"].items()
        if extra != "dev"  # the image has no test tools
        for line in lines
    ]
    lines = (REPO / "docker/constraints.txt").read_text().splitlines()
    pinned = {_normalised(line.split("==")[0]) for line in lines if "==" in line}
    missing = sorted({_requirement_name(r) for r in wanted} - pinned)
    assert not missing, f"docker/constraints.txt lacks {missing}: python docker/freeze.py"
