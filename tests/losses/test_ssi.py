"""``ssi``: the seed's ``var(d) + alpha · mean(d)²`` on inverse depth (:func:`depthloss.functional.ssi`)."""

from __future__ import annotations

import pytest
import torch

import depthloss.functional as DF
import reference as R
from helpers import MASKS, loss_inputs
from loss_testing import (
    GLOBAL_SCOPE_REDUCTIONS,
    WEIGHTS,
    as_batch,
    check_bad_hyperparameters,
    check_bad_inputs,
    check_gradcheck,
    check_gradient,
    check_metrics,
    check_module_equals_functional,
    check_smoke,
    check_values,
    inverse_of,
)

NAME = "ssi"


class TestSSI:
    def test_smoke(self) -> None:
        check_smoke(NAME)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME,
            [({"alpha": -1.0}, ValueError, "alpha"), ({"alpha": float("nan")}, ValueError, "alpha"), ({"alpha": "0.5"}, TypeError, "alpha"),
             ({"alpha": True}, TypeError, "alpha")],
            functional=DF.ssi,
        )  # fmt: skip

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        variants = [{}, {"weights": WEIGHTS}, {"alpha": 0.0, "weights": WEIGHTS}, {"alpha": 1.0}]
        check_values(DF.ssi, as_batch(R.ssi), variants, mask_kind, dtype, scope_reductions=GLOBAL_SCOPE_REDUCTIONS)

    def test_gradient_oracle(self) -> None:
        check_gradient(DF.ssi, R.ssi, {"weights": WEIGHTS})
        check_gradient(
            DF.ssi, R.ssi, {"alpha": 0.3, "scope": "batch"}, mask_kind="sparse_rows", shape=(2, 1, 7, 6), wrt="target"
        )

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME)

    def test_module_equals_functional(self) -> None:
        check_module_equals_functional(
            NAME,
            {"alpha": 0.3},
            lambda p, t, m, s, pr: DF.ssi(inverse_of(p, s), inverse_of(t, s), m, 0.3, reduction="none"),
        )

    def test_metrics(self) -> None:
        check_metrics(NAME, {"loss"})

    def test_hand_computed(self) -> None:
        pred = torch.tensor([[[0.5, 0.6], [0.7, 0.8]]], dtype=torch.float64)
        assert float(DF.ssi(pred, pred - 0.1, alpha=0.0)) == pytest.approx(0.0, abs=1e-15)  # a constant offset is free
        assert float(DF.ssi(pred, pred - 0.1)) == pytest.approx(0.85 * 0.01, rel=1e-9)

    def test_alpha_one_is_mse(self) -> None:
        inputs = loss_inputs(NAME, dtype=torch.float64)
        torch.testing.assert_close(
            DF.ssi(inputs.pred, inputs.target, inputs.valid, alpha=1.0, reduction="none"),
            DF.mse(inputs.pred, inputs.target, inputs.valid, reduction="none"),
        )

    def test_second_derivative(self) -> None:
        p = (torch.rand(1, 1, 4, 4, dtype=torch.float64) + 0.5).requires_grad_(True)
        t = torch.rand(1, 1, 4, 4, dtype=torch.float64) + 0.5
        assert torch.autograd.gradgradcheck(lambda x: DF.ssi(x, t), (p,))
