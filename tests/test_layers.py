"""The package's floors: an import only ever points down (README, "Architecture").

Every module's imports (module level and inside functions) are read with ``ast``; an import of a
module on a higher floor than the importer's fails, naming both.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "faceinpaint"

# Low to high; a module's floor is the first entry its dotted name starts with.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("batch", "io", "provenance", "device", "paths", "safe_load"),
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


def imported(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of each ``faceinpaint`` module that ``path`` imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "faceinpaint":
                names = [f"faceinpaint.{alias.name}" for alias in node.names]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.startswith("faceinpaint.")]
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
        if floor_of(name.removeprefix("faceinpaint.")) > floor_of(importer)
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
