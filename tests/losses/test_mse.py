"""``mse``: masked mean squared error on the maps as given (:func:`depthloss.functional.mse`)."""

from __future__ import annotations

import pytest
import torch

import depthloss.functional as DF
import reference as R
from helpers import MASKS, assert_equal, build
from loss_testing import (
    WEIGHTS,
    check_bad_hyperparameters,
    check_bad_inputs,
    check_gradcheck,
    check_gradient,
    check_metrics,
    check_module_equals_functional,
    check_smoke,
    check_values,
)

NAME = "mse"


class TestMSE:
    def test_smoke(self) -> None:
        check_smoke(NAME)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME, [({"max_depth": 0.0}, ValueError, "max_depth"), ({"scope": "pixels"}, ValueError, "scope")]
        )

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        check_values(DF.mse, R.mse, [{}, {"weights": WEIGHTS}], mask_kind, dtype)

    def test_gradient_oracle(self) -> None:
        check_gradient(DF.mse, R.mse, {"weights": WEIGHTS})
        check_gradient(DF.mse, R.mse, {"reduction": "pixel-mean"}, mask_kind="one_empty", wrt="target")

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME)

    def test_module_equals_functional(self) -> None:
        check_module_equals_functional(NAME, {}, lambda p, t, m, s, pr: DF.mse(p, t, m, reduction="none"))

    def test_metrics(self) -> None:
        check_metrics(NAME, {"loss"})

    def test_hand_computed(self) -> None:
        assert_equal(DF.mse(torch.tensor([[[1.0, 2.0]]]), torch.tensor([[[2.0, 4.0]]])), torch.tensor(2.5))
        assert_equal(
            build(NAME, "depth")(torch.tensor([[[1.0, 2.0]]]), torch.tensor([[[2.0, 0.0]]])), torch.tensor(1.0)
        )

    def test_second_derivative(self) -> None:
        """Plain autograd: twice differentiable (the double backward is correct)."""
        p = (torch.rand(1, 1, 4, 4, dtype=torch.float64) + 0.5).requires_grad_(True)
        t = torch.rand(1, 1, 4, 4, dtype=torch.float64) + 0.5
        assert torch.autograd.gradgradcheck(lambda x: DF.mse(x, t), (p,))
