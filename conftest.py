"""Root pytest configuration: names available to every doctest (README and docstrings)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace: dict) -> None:
    import depthloss
    import depthloss.functional as DF

    doctest_namespace.update(torch=torch, depthloss=depthloss, DF=DF)
    torch.manual_seed(0)
