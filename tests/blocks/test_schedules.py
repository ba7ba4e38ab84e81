"""Schedules: ``schedule`` and ``scale_weights`` against the oracles of ``reference.py``.

``schedule()`` returns a 0-dim tensor whatever ``progress`` is (float, int, NumPy scalar or a
0-dim tensor): float32 for a Python number, the tensor's dtype otherwise. ``scale_weights`` is
unchanged.
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np
import pytest
import torch

import depthloss.functional as DF
import reference as R
from cases import DTYPES, assert_matches

PROGRESSES = (-0.5, 0.0, 0.1, 0.25, 0.5, 0.7, 1.0, 1.5)
KINDS = ("constant", "linear", "cosine", "step")


@pytest.mark.parametrize(
    "start_end_milestone", ((1.0, 0.0, 0.5), (0.2, 3.0, 0.3), (-1.0, 2.0, 0.0), (5.0, 5.0, 1.0)), ids=str
)
@pytest.mark.parametrize("kind", KINDS)
def test_schedule(kind: str, start_end_milestone: Tuple[float, float, float]) -> None:
    start, end, milestone = start_end_milestone
    for p in PROGRESSES:
        expected = torch.tensor(R.schedule(p, kind, start, end, milestone), dtype=torch.float64)
        out = DF.schedule(p, kind, start, end, milestone)
        assert isinstance(out, torch.Tensor) and out.shape == () and out.dtype == torch.float32, (p, out)
        assert_matches(out, expected, torch.float32)
        assert_matches(DF.schedule(np.float32(p), kind, start, end, milestone), expected, torch.float32)
        assert_matches(
            DF.schedule(p, kind, start, end, milestone, dtype=torch.float64),
            expected,
            torch.float64,
            rtol=1e-6,
            atol=1e-7,
        )
        for dtype in DTYPES:
            out_t = DF.schedule(torch.tensor(p, dtype=dtype), kind, start, end, milestone)
            assert out_t.shape == () and out_t.dtype == dtype
            assert_matches(out_t, expected, dtype)


def test_step_schedule_keeps_float64() -> None:
    for p in (0.3, 0.7):
        out = DF.schedule(torch.tensor(p, dtype=torch.float64), "step", 0.1, 0.7)
        assert out.dtype == torch.float64
        assert float(out) == (0.1 if p < 0.5 else 0.7)


def test_schedule_hand_computed() -> None:
    assert float(DF.schedule(0.25, "linear", 1.0, 0.0)) == 0.75
    assert float(DF.schedule(0.5, "cosine", 1.0, 0.0)) == pytest.approx(0.5)
    assert float(DF.schedule(0.5, "step", 1.0, 0.0)) == 0.0  # "from the milestone on"
    assert float(DF.schedule(0.49, "step", 1.0, 0.0)) == 1.0
    assert float(DF.schedule(2.0, "linear", 1.0, 0.0)) == 0.0  # clamped
    assert float(DF.schedule(0, "linear")) == 1.0  # an int progress is a real number


def test_schedule_follows_a_tensor_progress_device_and_dtype() -> None:
    p = torch.tensor(0.3, dtype=torch.float64)
    assert DF.schedule(p, "cosine").dtype == torch.float64
    assert DF.schedule(0.3, "linear", device=torch.device("meta")).device.type == "meta"
    x = torch.tensor(0.3, requires_grad=True)
    DF.schedule(x, "linear", 2.0, -1.0).backward()
    assert float(x.grad) == pytest.approx(-3.0)  # differentiable in progress


@pytest.mark.parametrize("num_scales", (1, 2, 3, 5))
@pytest.mark.parametrize("kind", KINDS)
def test_scale_weights(kind: str, num_scales: int) -> None:
    for p in PROGRESSES:
        expected = R.scale_weights(p, num_scales, kind)
        assert math.isclose(float(expected.sum()), 1.0, rel_tol=1e-12)
        out = DF.scale_weights(p, num_scales, kind)
        assert out.shape == (num_scales,)
        assert_matches(out, expected, torch.float32)
        assert_matches(
            DF.scale_weights(p, num_scales, kind, dtype=torch.float64), expected, torch.float64, rtol=1e-6, atol=1e-7
        )
        for dtype in DTYPES:
            assert_matches(
                DF.scale_weights(torch.tensor(p, dtype=dtype), num_scales, kind), expected, dtype, rtol=1e-6, atol=1e-7
            )


def test_scale_weights_hand_computed() -> None:
    torch.testing.assert_close(DF.scale_weights(0.0, 3), torch.tensor([1.0, 2.0, 4.0]) / 7.0)
    torch.testing.assert_close(DF.scale_weights(1.0, 3), torch.tensor([4.0, 2.0, 1.0]) / 7.0)
    torch.testing.assert_close(DF.scale_weights(0.5, 2), torch.tensor([0.5, 0.5]))


def test_gradcheck() -> None:
    p = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: tuple(DF.schedule(x, k, 2.0, -1.0) for k in ("linear", "cosine")), (p,))
    assert torch.autograd.gradcheck(lambda x: (DF.scale_weights(x, 4), DF.scale_weights(x, 3, "cosine")), (p,))
