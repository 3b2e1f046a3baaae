"""Where the package's own files are: the shipped demo weights, and configs found beside the
checkout (so commands run from any folder)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSETS = Path(__file__).resolve().parent / "assets"


def resolve_config(path: str | Path) -> Path:
    """``path`` as given, else relative to the checkout (so commands run from any folder)."""
    given = Path(path)
    if given.is_file():
        return given
    beside_package = REPO / path
    if beside_package.is_file():
        return beside_package
    raise FileNotFoundError(f"config {str(path)!r} not found here nor in {REPO}")
