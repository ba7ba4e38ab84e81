"""``msge``: Depth Pro's mean squared gradient error on inverse depth (:func:`depthloss.functional.msge`)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings

import depthloss
import depthloss.functional as DF
import reference as R
from helpers import MASKS, build, loss_inputs
from loss_testing import (
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
from strategies import affine_params, loss_cases

NAME = "msge"
VARIANTS = [{"num_scales": 1}, {"num_scales": 3}, {}]


class TestMSGE:
    def test_smoke(self) -> None:
        check_smoke(NAME, num_scales=2)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME,
            [({"num_scales": 0}, ValueError, "num_scales"), ({"num_scales": 1.5}, TypeError, "num_scales")],
            functional=DF.msge,
        )

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        check_values(DF.msge, R.msge, VARIANTS, mask_kind, dtype)

    def test_gradient_oracle(self) -> None:
        check_gradient(DF.msge, R.msge, {"num_scales": 2}, shape=(2, 1, 6, 7))
        check_gradient(
            DF.msge, R.msge, {"reduction": "pixel-mean", "num_scales": 2}, mask_kind="one_empty", shape=(2, 1, 6, 6),
            wrt="target",
        )  # fmt: skip

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME, num_scales=2)

    def test_module_equals_functional(self) -> None:
        check_module_equals_functional(
            NAME,
            {"num_scales": 3},
            lambda p, t, m, s, pr: DF.msge(inverse_of(p, s), inverse_of(t, s), m, 3, reduction="none"),
        )

    def test_metrics(self) -> None:
        check_metrics(NAME, {"loss"}, num_scales=2)

    def test_hand_computed(self) -> None:
        """One wrong pixel in a ramp: level 0: Σ (tap x 0.5 / 32)² over the windows holding it, in x and in y, over 16 stencils; level 1 adds 0."""
        target = torch.arange(36.0, dtype=torch.float64).reshape(1, 6, 6) / 4.0 + 1.0
        pred = target.clone()
        pred[:, 2, 2] += 0.5
        assert float(DF.msge(pred, target, num_scales=2)) == pytest.approx(
            (4 * (3**2 + 10**2 + 3**2) * (0.5 / 32) ** 2) / 16 / 2, rel=1e-12
        )
        assert float(DF.msge(target + 0.25, target)) == 0.0

    def test_level_without_stencil_counts_in_the_mean_over_levels(self) -> None:
        """``1 / M`` over all ``M`` levels, also those too small for a stencil (the paper's ``1 / M``)."""
        inputs = loss_inputs(NAME, shape=(1, 1, 6, 6), dtype=torch.float64, density=1.0)
        one = DF.msge(inputs.pred, inputs.target, num_scales=1)
        # 6x6 -> 3x3 (one stencil) -> 2x2 -> 1x1 (none)
        two = DF.msge(inputs.pred, inputs.target, num_scales=2)
        four = DF.msge(inputs.pred, inputs.target, num_scales=4)
        torch.testing.assert_close(four, two / 2.0)
        assert float(one) > 0

    def test_compile_fullgraph(self) -> None:
        torch._dynamo.reset()
        module = build(NAME, "inverse", num_scales=3, reduction="pixel-mean")
        compiled = torch.compile(module, fullgraph=True, backend="eager", dynamic=True)
        for b in (2, 3):
            inputs = loss_inputs(NAME, shape=(b, 1, 10, 12), seed=b)
            torch.testing.assert_close(inputs.call(compiled), inputs.call(module))
        torch._dynamo.reset()

    @settings(max_examples=15, deadline=None)
    @given(case=loss_cases(dtype=torch.float64, space="inverse", mask_kind="random", min_side=3, max_side=9),
           ab=affine_params(scale_range=(1.0, 1.0), max_shift=2.0))  # fmt: skip
    def test_shift_invariance(self, case, ab) -> None:
        """Declared ``("shift",)``: a constant offset of the prediction has no derivative."""
        assert depthloss.loss_info(NAME).invariances == ("shift",)
        _, b = ab
        module = build(NAME, "inverse", reduction="none", num_scales=3)
        target = torch.where(case.mask, case.target, 0.0)
        before = module(case.pred, target)
        after = module(case.pred + b, target)
        torch.testing.assert_close(after, before, rtol=1e-6, atol=1e-8 * (1.0 + float(before.abs().max())))
