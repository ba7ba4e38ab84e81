"""Depth building blocks: near-field weights and depth <-> inverse depth against the oracles."""

from __future__ import annotations

from typing import Optional, Tuple

import pytest
import torch

import depthloss.functional as DF
import reference as R
from cases import (
    DTYPE_IDS,
    DTYPES,
    INF,
    NAN,
    assert_matches,
    log_uniform,
)


def depth_grid(dtype: torch.dtype, threshold: float, transition: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(15)
    t, tau = threshold, transition
    special = [NAN, INF, -INF, 0.0, -1.0, t, t - tau, t + tau, t - tau / 2, t + tau / 3, 1e-3, 1e3]
    values = torch.cat([torch.tensor(special, dtype=torch.float64), log_uniform((24,), 1e-3, 1e3, gen, torch.float64)])
    return values.to(dtype).reshape(2, 3, 6)


@pytest.mark.parametrize("threshold_kind", ("float", "tensor"))
@pytest.mark.parametrize("params", ((1.0, 5.0, 0.3), (2.5, 3.0, 0.5), (1.0, 1.0, 0.25)), ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("mode", ("smooth", "linear", "step"))
def test_near_field_weights(
    mode: str, dtype: torch.dtype, params: Tuple[float, float, float], threshold_kind: str
) -> None:
    threshold, near_weight, transition = params
    depth = depth_grid(dtype, threshold, transition)
    t_arg = threshold if threshold_kind == "float" else torch.tensor(threshold, dtype=torch.float64)
    for d in (depth, depth.unsqueeze(1)):
        out = DF.near_field_weights(d, t_arg, near_weight, transition, mode)
        assert torch.isfinite(out).all()
        assert_matches(out, R.near_field_weights(d, threshold, near_weight, transition, mode), dtype)


def test_near_field_weights_hand_computed() -> None:
    d = torch.tensor([[[0.5, 1.0, 1.2, 1.5, NAN, -INF]]], dtype=torch.float64)
    # linear, t = 1, tau = 0.5, w_n = 3: 3 at d <= 0.5, 2 at 1.0, 1.6 at 1.2, 1 at >= 1.5; non-finite 1
    expected = torch.tensor([[[3.0, 2.0, 1.6, 1.0, 1.0, 1.0]]], dtype=torch.float64)
    torch.testing.assert_close(DF.near_field_weights(d, 1.0, 3.0, 0.5, "linear"), expected)
    step = DF.near_field_weights(d, 1.0, 3.0, 0.5, "step")
    assert torch.equal(step, torch.tensor([[[3.0, 1.0, 1.0, 1.0, 1.0, 1.0]]], dtype=torch.float64))


CONVERSION_VALUES = [NAN, INF, -INF, 0.0, -0.0, -2.0, 1e-9, 1e-6, 1e-3, 0.05, 0.5, 1.0, 2.0, 7.5, 80.0, 1e3, 1e6]


@pytest.mark.parametrize("clamp", ((None, None), (0.1, None), (None, 50.0), (0.5, 10.0)), ids=str)
@pytest.mark.parametrize("eps", (1e-6, 1e-2))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("func", ("depth_to_inv", "inv_to_depth"))
def test_conversions(func: str, dtype: torch.dtype, eps: float, clamp: Tuple[Optional[float], Optional[float]]) -> None:
    min_depth, max_depth = clamp
    x = torch.tensor(CONVERSION_VALUES, dtype=dtype)
    x = torch.cat([x, x.flip(0)]).reshape(2, 1, 1, len(CONVERSION_VALUES))
    kernel, oracle = getattr(DF, func), getattr(R, func)
    for inp in (x, x[:, 0]):
        out = kernel(inp, eps, min_depth, max_depth)
        expected = oracle(inp, eps, min_depth, max_depth)
        assert_matches(out, expected, dtype, atol=0.0)
        invalid = ~(inp > 0)
        assert torch.equal(out[invalid], torch.zeros_like(out[invalid]))


def test_conversions_hand_computed() -> None:
    d = torch.tensor([[[0.5, 0.0, 4.0, -1.0, NAN, 1e-9]]], dtype=torch.float64)
    expected = torch.tensor([[[2.0, 0.0, 0.25, 0.0, 0.0, 1e6]]], dtype=torch.float64)
    torch.testing.assert_close(DF.depth_to_inv(d), expected)
    torch.testing.assert_close(
        DF.inv_to_depth(torch.tensor([[[2.0, 0.0, 0.25]]]), max_depth=3.0), torch.tensor([[[0.5, 0.0, 3.0]]])
    )
    torch.testing.assert_close(
        DF.depth_to_inv(torch.tensor([[[0.5, 100.0]]]), min_depth=1.0, max_depth=10.0), torch.tensor([[[1.0, 0.1]]])
    )
