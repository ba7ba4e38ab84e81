"""``ssi-silog``: ``0.7 · SSI(inverse depth) + 0.3 · SILog(depth)`` (:func:`depthloss.functional.ssi_silog`)."""

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

NAME = "ssi-silog"


class TestSSISilog:
    def test_smoke(self) -> None:
        check_smoke(NAME)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME,
            [({"silog_ratio2": 2.0}, ValueError, "silog_ratio2"), ({"ssi_weight": float("nan")}, ValueError, "ssi_weight"),
             ({"silog_ratio": 0.0}, ValueError, "silog_ratio"), ({"alpha": -0.1}, ValueError, "alpha"),
             ({"silog_weight": -1.0}, ValueError, "silog_weight"), ({"min_depth": 3.0, "max_depth": 2.0}, ValueError, "min_depth")],
            functional=DF.ssi_silog,
        )  # fmt: skip

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        variants = [
            {},
            {"weights": WEIGHTS},
            {"alpha": 0.5, "silog_ratio": 5.0, "silog_ratio2": 0.6, "ssi_weight": 0.4, "silog_weight": 0.6},
            {"min_depth": 0.6, "max_depth": 2.0, "weights": WEIGHTS},
        ]
        check_values(
            DF.ssi_silog, as_batch(R.ssi_silog), variants, mask_kind, dtype, scope_reductions=GLOBAL_SCOPE_REDUCTIONS
        )

    def test_gradient_oracle(self) -> None:
        check_gradient(DF.ssi_silog, R.ssi_silog, {"weights": WEIGHTS})
        check_gradient(
            DF.ssi_silog, R.ssi_silog, {"min_depth": 0.6, "max_depth": 2.0}, mask_kind="one_empty", wrt="target"
        )

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME)

    def test_module_equals_functional(self) -> None:
        kwargs = {
            "alpha": 0.5,
            "silog_ratio": 5.0,
            "silog_ratio2": 0.6,
            "ssi_weight": 0.4,
            "silog_weight": 0.6,
            "min_depth": 0.8,
            "max_depth": 4.0,
        }
        check_module_equals_functional(
            NAME,
            kwargs,
            lambda p, t, m, s, pr: DF.ssi_silog(
                inverse_of(p, s, 0.8, 4.0), inverse_of(t, s, 0.8, 4.0), m, 0.5, 5.0, 0.6, 0.4, 0.6,
                min_depth=0.8, max_depth=4.0, reduction="none",
            ),
        )  # fmt: skip

    def test_metrics(self) -> None:
        check_metrics(NAME, {"ssi_component", "silog_component", "loss"})

    def test_terms_are_ssi_and_silog(self) -> None:
        """The two terms are the ``ssi`` kernel on inverse depth and the ``silog`` kernel on depth."""
        inputs = loss_inputs(NAME, dtype=torch.float64)
        p, t, m = inputs.pred, inputs.target, inputs.valid
        expected = 0.7 * DF.ssi(p, t, m, reduction="none") + 0.3 * DF.silog(
            1.0 / p, torch.where(m, 1.0 / t, 1.0), m, reduction="none"
        )
        torch.testing.assert_close(DF.ssi_silog(p, t, m, reduction="none"), expected)

    def test_hand_computed(self) -> None:
        inv = torch.tensor([[[0.5, 0.25], [1.0, 0.1]]], dtype=torch.float64)
        assert float(DF.ssi_silog(inv, inv)) == pytest.approx(0.3 * 10.0 * 1e-4)  # 0.3 · 10 · sqrt(1e-8)
