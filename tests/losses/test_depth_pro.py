"""``depth-pro``: Depth Pro's per-image trimmed MAE + MAGE + MALE + MSGE on inverse depth (:func:`depthloss.functional.depth_pro`).

The trims go through the CPU selection acceleration (``kth_smallest``): the oracle comparisons
run with accelerations on and off.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings

import depthloss.functional as DF
import reference as R
from helpers import MASKS, accel_mode, accel_modes, build, depth_case, loss_inputs, to_input_space
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
from strategies import loss_cases

NAME = "depth-pro"
ACCEL = accel_modes(NAME)

VARIANTS = [
    {"num_scales": 3},
    {"trim": 0.0, "num_scales": 2},
    {"trim": 0.35, "mae_weight": 2.0, "mage_weight": 0.5, "male_weight": 0.0, "msge_weight": 3.0, "num_scales": 2},
    {"mage_weight": 0.0, "male_weight": 0.0, "msge_weight": 0.0, "num_scales": 1},
]


class TestDepthPro:
    def test_smoke(self) -> None:
        check_smoke(NAME, num_scales=2)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME,
            [({"trim": 1.0}, ValueError, "trim"), ({"trim": -0.1}, ValueError, "trim"),
             ({"num_scales": 0}, ValueError, "num_scales"), ({"num_scales": 2.0}, TypeError, "num_scales"),
             ({"mae_weight": -1.0}, ValueError, "mae_weight"), ({"mage_weight": -1.0}, ValueError, "mage_weight"),
             ({"male_weight": float("nan")}, ValueError, "male_weight"), ({"msge_weight": "1"}, TypeError, "msge_weight")],
            functional=DF.depth_pro,
        )  # fmt: skip

    @pytest.mark.parametrize("accel", ACCEL)
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype, accel) -> None:
        check_values(DF.depth_pro, R.depth_pro, VARIANTS, mask_kind, dtype, accel=accel)

    @pytest.mark.parametrize("accel", ACCEL)
    def test_gradient_oracle(self, accel) -> None:
        check_gradient(DF.depth_pro, R.depth_pro, {"num_scales": 2}, shape=(2, 1, 6, 7), accel=accel)
        check_gradient(
            DF.depth_pro,
            R.depth_pro,
            {"trim": 0.3, "reduction": "pixel-mean", "num_scales": 2},
            mask_kind="one_empty",
            shape=(2, 1, 6, 6),
            wrt="target",
            accel=accel,
        )
        check_gradient(DF.depth_pro, R.depth_pro, {"scope": "batch", "num_scales": 2}, shape=(2, 1, 5, 6), accel=accel)

    @pytest.mark.parametrize("accel", ACCEL)
    def test_gradcheck(self, accel) -> None:
        with accel_mode(accel):
            check_gradcheck(NAME, num_scales=2)

    def test_module_equals_functional(self) -> None:
        kwargs = {"trim": 0.3, "mae_weight": 0.5, "male_weight": 2.0, "msge_weight": 0.0, "num_scales": 3}
        check_module_equals_functional(
            NAME,
            kwargs,
            lambda p, t, m, s, pr: DF.depth_pro(inverse_of(p, s), inverse_of(t, s), m, **kwargs, reduction="none"),
        )

    def test_metrics(self) -> None:
        check_metrics(NAME, {"loss"}, num_scales=2)

    def test_terms_are_the_derivative_losses(self) -> None:
        """The combination is its parts: trimmed MAE, then ``mage``, ``male``, ``msge`` with their weights."""
        inputs = loss_inputs(NAME, dtype=torch.float64, density=0.7)
        p, t, m = inputs.pred, inputs.target, inputs.valid
        mae = DF.depth_pro(p, t, m, 1.0, 0.0, 0.0, 0.0, reduction="none")
        parts = mae + 0.5 * DF.mage(p, t, m, 3, reduction="none") + 2.0 * DF.male(p, t, m, 3, reduction="none")
        parts = parts + 3.0 * DF.msge(p, t, m, 3, reduction="none")
        torch.testing.assert_close(DF.depth_pro(p, t, m, 1.0, 0.5, 2.0, 3.0, num_scales=3, reduction="none"), parts)
        # trim=0 and no derivative terms is the masked L1
        torch.testing.assert_close(
            DF.depth_pro(p, t, m, 1.0, 0.0, 0.0, 0.0, trim=0.0, reduction="none"), DF.l1(p, t, m, reduction="none")
        )

    def test_trim_discards_the_largest_fifth(self) -> None:
        target = torch.ones(1, 1, 5, 2, dtype=torch.float64)
        errors = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 5.0, 9.0], dtype=torch.float64)
        pred = target + errors.reshape(1, 1, 5, 2)
        kw = {"mage_weight": 0.0, "male_weight": 0.0, "msge_weight": 0.0}
        assert float(DF.depth_pro(pred, target, **kw)) == pytest.approx(0.45)  # mean of the 8 smallest
        assert float(DF.depth_pro(pred, target, trim=0.0, **kw)) == pytest.approx(1.76)

    def test_derivative_terms_see_a_step_edge(self) -> None:
        """A blurred edge in the prediction is penalized by the derivative terms, a constant offset is not."""
        pred_d, target_d, _ = depth_case((2, 1, 16, 16), seed=21)
        target = to_input_space(target_d, "inverse")
        target[:, :, :, 8:] += 1.0
        blurred = target.clone()
        blurred[:, :, :, 7:9] = target[:, :, :, 6:10].mean(dim=-1, keepdim=True)
        kw = {"mae_weight": 0.0, "num_scales": 3}
        assert float(DF.depth_pro(target + 0.3, target, **kw)) < 1e-12
        assert float(DF.depth_pro(blurred, target, **kw)) > 0.05

    def test_compile_fullgraph(self) -> None:
        """``fullgraph=True`` with ``dynamic=True``: one graph for two batch sizes, eager values
        (``tests/test_compile.py`` counts graphs for ``dynamic=None`` too)."""
        torch._dynamo.reset()
        module = build(NAME, "inverse", num_scales=2, reduction="pixel-mean")
        compiled = torch.compile(module, fullgraph=True, backend="eager", dynamic=True)
        for b in (2, 3):
            inputs = loss_inputs(NAME, shape=(b, 1, 10, 12), seed=b)
            torch.testing.assert_close(inputs.call(compiled), inputs.call(module))
        torch._dynamo.reset()

    @settings(max_examples=15, deadline=None)
    @given(case=loss_cases(dtype=torch.float64, space="inverse", min_side=3, max_side=8))
    def test_trim_never_increases_the_data_term(self, case) -> None:
        kw = {"mage_weight": 0.0, "male_weight": 0.0, "msge_weight": 0.0, "reduction": "none"}
        full = DF.depth_pro(case.pred, case.target, case.mask, trim=0.0, **kw)
        for trim in (0.2, 0.5):
            trimmed = DF.depth_pro(case.pred, case.target, case.mask, trim=trim, **kw)
            assert torch.isfinite(trimmed).all() and (trimmed <= full * (1 + 1e-12) + 1e-300).all()
