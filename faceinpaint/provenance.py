"""Where a result came from: the code's revision, the hardware, the command line."""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
from pathlib import Path

import torch


def git_revision(directory: str | Path | None = None) -> str:
    """``git rev-parse HEAD`` of the package's checkout, or "unknown"."""
    directory = directory or Path(__file__).resolve().parent
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: torch.device) -> str:
    """The device in words, e.g. "NVIDIA H100 (cuda)" or "Intel Xeon CPU, 2 torch threads"."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (cuda)"
    return f"{cpu_name()} CPU, {torch.get_num_threads()} torch threads"


def command_line() -> str:
    """The command that is running, as ``faceinpaint ...`` when it is the package's CLI."""
    program = Path(sys.argv[0])
    if program.name == "faceinpaint" or program.parent.name == "faceinpaint":
        return shlex.join(["faceinpaint", *sys.argv[1:]])
    return shlex.join(sys.argv)
