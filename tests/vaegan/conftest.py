"""Every VAE-GAN test runs its tiny CPU networks on one thread (``one_cpu_thread``, tests/conftest.py)."""

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_cpu_thread):
    yield
