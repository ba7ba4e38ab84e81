"""``ssi_lsq`` (functional only): MSE after least-squares scale-and-shift alignment, the data term of ``midas``."""

from __future__ import annotations

import pytest
import torch

import depthloss.functional as DF
import reference as R
from helpers import MASKS
from loss_testing import WEIGHTS, check_gradient, check_values


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("mask_kind", sorted(MASKS))
def test_oracle(mask_kind: str, dtype: torch.dtype) -> None:
    tol = {"atol": 2e-5} if dtype == torch.float32 else {}
    check_values(DF.ssi_lsq, R.ssi_lsq, [{}, {"weights": WEIGHTS}], mask_kind, dtype, tolerance=lambda kw, e: tol)


def test_gradient_oracle() -> None:
    check_gradient(DF.ssi_lsq, R.ssi_lsq, {"weights": WEIGHTS})
    check_gradient(DF.ssi_lsq, R.ssi_lsq, {}, wrt="target", mask_kind="one_empty")


def test_hand_computed() -> None:
    target = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    assert float(DF.ssi_lsq(0.5 * target - 2.0, target)) == 0.0
    # constant prediction: s = 0, t = mean(target): the target's variance 1.25
    assert float(DF.ssi_lsq(torch.full_like(target, 3.0), target)) == pytest.approx(1.25)
