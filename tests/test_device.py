"""How the CPU allocator keeps memory (faceinpaint.device.keep_freed_memory)."""

import os
import resource
import subprocess
import sys

import pytest
import torch

from faceinpaint.device import (
    MALLOC_ENV,
    configure_malloc,
    keep_freed_memory,
    malloc_setting,
    malloc_tunable,
)

glibc = pytest.mark.skipif(not malloc_tunable(), reason="glibc's malloc only")


def page_faults_of_reallocating(megabytes: int = 64, rounds: int = 8, counted: int = 3) -> int:
    """Minor page faults in the last ``counted`` of ``rounds`` rounds of a step's pattern: two
    tensors of ``megabytes`` allocated and written, a third made from them, all freed."""
    count = megabytes * 2**20 // 4
    faults = []
    for _ in range(rounds):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        a = torch.empty(count).fill_(1.0)
        b = torch.empty(count).fill_(1.0)
        c = a + b
        del a, b, c
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return sum(faults[-counted:])


@glibc
def test_kept_memory_is_reused_instead_of_faulted_in_again():
    pages = 64 * 2**20 // resource.getpagesize()  # of one tensor
    try:
        assert keep_freed_memory(False)
        system = page_faults_of_reallocating()
        assert keep_freed_memory(True)
        kept = page_faults_of_reallocating()
        assert malloc_setting() == "freed memory kept"
    finally:
        keep_freed_memory(False)
    assert malloc_setting() == "glibc defaults"
    assert system >= 3 * 3 * pages  # a fresh mmap per tensor, zero-filled page by page
    assert kept < pages // 10  # the freed blocks, reused


@glibc
def test_the_command_keeps_memory_unless_told_otherwise(monkeypatch):
    monkeypatch.setenv(MALLOC_ENV, "system")
    assert not configure_malloc()
    monkeypatch.setenv(MALLOC_ENV, "banana")
    with pytest.raises(ValueError, match="FACEINPAINT_MALLOC must be 'kept' or 'system'"):
        configure_malloc()


def test_a_bad_malloc_choice_is_one_line_before_any_work():
    done = subprocess.run(
        [sys.executable, "-m", "faceinpaint", "--help"],
        env={**os.environ, MALLOC_ENV: "banana"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "faceinpaint: error: FACEINPAINT_MALLOC must be 'kept' or 'system', got 'banana'"
    ]
