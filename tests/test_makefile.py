"""`make help`: the user targets only, every variable shown with its value."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
USER_TARGETS = {
    "help",
    "setup",
    "demo",
    "demo-train",
    "eval",
    "bench",
    "test",
    "test-all",
    "lint",
    "format",
    "preview",
    "clean-cache",
}


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_help_lists_the_user_targets_with_expanded_values() -> None:
    help_text = subprocess.run(
        ["make", "-s", "help", "VENV=/opt/venv-x", "OUT=/tmp/out-x"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    targets = {line.split()[0] for line in help_text.splitlines() if line.strip()}
    assert targets == USER_TARGETS
    assert "$(" not in help_text and "$$" not in help_text
    assert "create /opt/venv-x" in help_text and "/tmp/out-x/demo/" in help_text
    assert re.search(r"protocols thesis vaegan-paper free-form", help_text)
    declared = set(re.findall(r"^([a-z-]+):", (REPO / "Makefile").read_text(), re.M))
    assert USER_TARGETS <= declared
