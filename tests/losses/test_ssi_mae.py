"""``ssi_mae`` (functional only): trimmed MAE between median/MAD-normalized maps, the data term of ``ssi-trim``."""

from __future__ import annotations

import pytest
import torch

import depthloss.functional as DF
import reference as R
from helpers import MASKS, accel_mode
from loss_testing import check_gradient, check_values

ACCEL = [pytest.param(True, id="accel"), pytest.param(False, id="reference")]

VARIANTS = [
    {},
    {"trim": 0.0},
    {"trim": 0.29, "eps": 1e-3},
    {"trim": 0.9999999},
    {"data_scale": 0.5, "trim_denominator": "valid"},
    {"trim_rounding": "floor", "trim": 0.3},
    {"median_over": "all-pixels"},
    {"trim_scope": "batch", "trim_denominator": "valid"},
]


@pytest.mark.parametrize("accel", ACCEL)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("mask_kind", sorted(MASKS))
def test_oracle(mask_kind: str, dtype: torch.dtype, accel: bool) -> None:
    check_values(DF.ssi_mae, R.ssi_mae, VARIANTS, mask_kind, dtype, accel=accel)


@pytest.mark.parametrize("accel", ACCEL)
def test_gradient_oracle(accel: bool) -> None:
    check_gradient(DF.ssi_mae, R.ssi_mae, {"trim": 0.25}, accel=accel)
    check_gradient(DF.ssi_mae, R.ssi_mae, {"trim": 0.0, "scope": "batch"}, wrt="target", accel=accel)


@pytest.mark.parametrize("accel", ACCEL)
def test_ties_and_integer_values(accel: bool) -> None:
    """Heavy ties (integer maps): the trim is exact, ties at the cut-off share the kept slots."""
    g = torch.Generator().manual_seed(4)
    pred = torch.randint(1, 4, (3, 1, 6, 7), generator=g).double()
    target = torch.randint(1, 4, (3, 1, 6, 7), generator=g).double()
    mask = torch.rand(3, 1, 6, 7, generator=g) < 0.7
    with accel_mode(accel):
        for kw in ({"trim": 0.3}, {"trim": 0.3, "trim_scope": "batch"}, {"trim": 0.5, "trim_rounding": "floor"}):
            torch.testing.assert_close(
                DF.ssi_mae(pred, target, mask, **kw, reduction="none"),
                R.ssi_mae(pred, target, mask, **kw, reduction="none"),
            )


def test_trim_close_to_one_keeps_the_smallest_residual() -> None:
    """trim < 1 always keeps k = n - floor(trim n) >= 1 residuals (a trim rounded up to 1 kept none)."""
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0]]], dtype=torch.float64)
    y = torch.tensor([[[3.0, 2.0, 1.0, 4.0, 50.0]]], dtype=torch.float64)
    # x_hat = (x - 3) / 1.2; y_hat = (y - 3) / 10.2; the smallest residual is 2 / 10.2
    for trim in (0.8, 0.9999999):
        torch.testing.assert_close(DF.ssi_mae(x, y, trim=trim), torch.tensor(2 / 10.2, dtype=torch.float64))


def test_floor_rounding_may_keep_nothing() -> None:
    """trim_rounding='floor' keeps floor((1 - trim) n): 0 of 1 pixel at trim 0.5 -> 0, not NaN."""
    x = torch.tensor([[[1.0, 2.0]]], dtype=torch.float64)
    mask = torch.tensor([[[True, False]]])
    out = DF.ssi_mae(x, x + 1.0, mask, trim=0.5, trim_rounding="floor")
    assert torch.isfinite(out) and float(out) == 0.0


def test_hand_computed() -> None:
    target = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    assert float(DF.ssi_mae(3.0 * target + 1.0, target)) == 0.0
    outlier = torch.tensor([[[1.0, 2.0], [3.0, 9.0]]])
    assert float(DF.ssi_mae(outlier, target, trim=0.0)) == pytest.approx(0.5556, abs=1e-4)
    assert float(DF.ssi_mae(outlier, target, trim=0.25)) == pytest.approx(0.3704, abs=1e-4)
