"""Write the versions installed here of faceinpaint's dependencies (every extra but ``dev``,
recursively) as a pip constraints file: ``python docker/freeze.py > docker/constraints.txt``.

Run it in the environment the tests passed in; the Docker image installs with these pins.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def project() -> dict:
    return tomllib.loads(PYPROJECT.read_text())["project"]


def project_requirements(extras: set[str]) -> list[str]:
    """The requirement lines of pyproject.toml: dependencies plus those of ``extras``."""
    spec = project()
    optional = spec.get("optional-dependencies", {})
    unknown = sorted(extras - set(optional))
    if unknown:
        raise SystemExit(
            f"freeze: pyproject.toml has no extras {unknown}; it has {sorted(optional)}"
        )
    return spec["dependencies"] + [line for extra in extras for line in optional[extra]]


def closure(extras: set[str]) -> dict[str, str]:
    """name -> installed version of the project's requirements (with ``extras``), recursively."""
    pins: dict[str, str] = {}
    todo: list[tuple[str | None, set[str]]] = [(None, extras)]
    while todo:
        name, wanted = todo.pop()
        lines = project_requirements(wanted) if name is None else metadata.requires(name) or []
        for line in lines:
            requirement = Requirement(line)
            marker = requirement.marker
            if (
                name is not None
                and marker is not None
                and not any(marker.evaluate({"extra": extra}) for extra in (wanted or {""}))
            ):
                continue
            key = re.sub(r"[-_.]+", "-", requirement.name).lower()
            if key in pins:
                continue
            try:
                pins[key] = metadata.version(requirement.name)
            except metadata.PackageNotFoundError:
                continue  # a platform-specific requirement not installed here
            todo.append((requirement.name, set(requirement.extras)))
    return pins


if __name__ == "__main__":
    pins = closure(set(project().get("optional-dependencies", {})) - {"dev"})
    print(f"# pip constraints: what the tests ran with (python {sys.version.split()[0]}).")
    print("# Regenerate: python docker/freeze.py > docker/constraints.txt")
    for name in sorted(pins):
        print(f"{name}=={pins[name]}")
