"""``abs_rel``: ``|z_p - z_g| / z_g`` on depth (:func:`depthloss.functional.abs_rel`)."""

from __future__ import annotations

import pytest
import torch

import depthloss.functional as DF
import reference as R
from helpers import MASKS, build, loss_inputs
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
    depth_of,
)

NAME = "abs_rel"


class TestAbsRel:
    def test_smoke(self) -> None:
        check_smoke(NAME)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(NAME, [({"min_depth": 5.0, "max_depth": 1.0}, ValueError, "min_depth")])

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        check_values(DF.abs_rel, R.abs_rel, [{}, {"weights": WEIGHTS}], mask_kind, dtype)

    def test_gradient_oracle(self) -> None:
        check_gradient(DF.abs_rel, R.abs_rel, {"weights": WEIGHTS})
        check_gradient(DF.abs_rel, R.abs_rel, {}, mask_kind="sparse_rows", shape=(2, 1, 7, 6), wrt="target")

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME)

    def test_module_equals_functional(self) -> None:
        check_module_equals_functional(
            NAME, {}, lambda p, t, m, s, pr: DF.abs_rel(depth_of(p, s), depth_of(t, s), m, reduction="none")
        )
        # and the depth clamp of the module
        inputs = loss_inputs(NAME, "depth", low=0.2, high=9.0)
        got = build(NAME, "depth", min_depth=1.0, max_depth=4.0, reduction="none")(inputs.pred, inputs.target)
        want = DF.abs_rel(
            depth_of(inputs.pred, "depth", 1.0, 4.0),
            depth_of(inputs.target, "depth", 1.0, 4.0),
            inputs.valid,
            reduction="none",
        )
        torch.testing.assert_close(got, want)

    def test_metrics(self) -> None:
        check_metrics(NAME, {"loss"})

    def test_regression_divides_by_target(self) -> None:
        """The seed divided by the prediction (rewarding large predictions)."""
        pred = torch.tensor([[[2.0, 3.0]]])
        target = torch.tensor([[[1.0, 4.0]]])
        ours = build(NAME, "depth")(pred, target)
        assert float(ours) == pytest.approx((1.0 / 1.0 + 1.0 / 4.0) / 2.0)  # 0.625
        assert abs(float(ours) - (1.0 / 2.0 + 1.0 / 3.0) / 2.0) > 0.1  # |p - g| / p, the seed's
        assert float(build(NAME, "inverse")(1.0 / pred, 1.0 / target)) == pytest.approx(0.625)  # converted to depth

    def test_subnormal_target_is_finite(self) -> None:
        """Issue 12 item 6: a positive subnormal target (1e-42) gave inf; the target is floored at 1e-12."""
        target = torch.full((1, 1, 2, 2), 1e-42)
        pred = torch.ones(1, 1, 2, 2, requires_grad=True)
        for loss in (DF.abs_rel(pred, target), build(NAME, "depth")(pred, target)):
            assert torch.isfinite(loss)
            (g,) = torch.autograd.grad(loss, pred)
            assert torch.isfinite(g).all()
