"""Shared pytest configuration: hypothesis profiles and common fixtures."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

# CI: modest, derandomized example counts so the whole suite stays within minutes on 2 cores.
settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


#: modules that time or train on realistic sizes keep torch's threads
_MANY_THREADS = {"test_demo.py", "test_synthetic.py", "test_benchmarks.py", "test_examples.py", "test_gpu_check.py"}


@pytest.fixture(autouse=True)
def _one_thread(request: pytest.FixtureRequest):
    """Tiny tensors: intra-op threads only add synchronization (a lot of it on a loaded 2-core
    machine), so the unit tests run on one thread (restored afterwards)."""
    if request.path.name in _MANY_THREADS:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
