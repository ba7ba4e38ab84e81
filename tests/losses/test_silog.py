"""``silog``: scale-invariant log loss on depth, BTS / packnet-sfm constants (:func:`depthloss.functional.silog`)."""

from __future__ import annotations

import math
from typing import Any, Dict

import pytest
import torch
from torch import Tensor

import depthloss.functional as DF
import reference as R
from helpers import MASKS, build, depth_case, loss_inputs, to_input_space
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
    depth_of,
)

NAME = "silog"


def radicand_tolerance(kw: Dict[str, Any], expected: Tensor) -> Dict[str, float]:
    """The radicand is formed from sums (so it can be all-reduced): an absolute rounding error of a
    few ulps of E[g²], which the square root amplifies when the radicand is near 0 (lambd = 1, eps = 0).
    The log-ratios here are at most log(3 / 0.3)."""
    ratio = kw.get("ratio", 10.0)
    return (
        {"atol": ratio * math.sqrt(64 * torch.finfo(torch.float32).eps * math.log(10.0) ** 2)}
        if kw.get("eps", 1e-8) == 0.0
        else {}
    )


class TestSILog:
    def test_smoke(self) -> None:
        check_smoke(NAME)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME,
            [({"lambd": 1.5}, ValueError, "lambd"), ({"lambd": -0.1}, ValueError, "lambd"), ({"ratio": 0.0}, ValueError, "ratio"),
             ({"eps": "small"}, TypeError, "eps"), ({"eps": -1e-8}, ValueError, "eps"), ({"eps": math.inf}, ValueError, "eps")],
            functional=DF.silog,
        )  # fmt: skip

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        variants = [
            {},
            {"weights": WEIGHTS},
            {"lambd": 1.0, "ratio": 1.0, "eps": 0.0},
            {"lambd": 0.0, "ratio": 2.5, "eps": 1e-4, "weights": WEIGHTS},
        ]
        tol = (lambda kw, e: radicand_tolerance(kw, e)) if dtype == torch.float32 else None
        check_values(
            DF.silog,
            as_batch(R.silog),
            variants,
            mask_kind,
            dtype,
            scope_reductions=GLOBAL_SCOPE_REDUCTIONS,
            tolerance=tol,
        )

    def test_gradient_oracle(self) -> None:
        check_gradient(DF.silog, R.silog, {"weights": WEIGHTS})
        check_gradient(DF.silog, R.silog, {"lambd": 0.5, "scope": "batch"}, mask_kind="one_empty", wrt="target")

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME)

    def test_module_equals_functional(self) -> None:
        check_module_equals_functional(
            NAME,
            {"lambd": 0.5, "ratio": 3.0, "eps": 1e-6, "min_depth": 0.8, "max_depth": 4.0},
            lambda p, t, m, s, pr: DF.silog(
                depth_of(p, s, 0.8, 4.0), depth_of(t, s, 0.8, 4.0), m, 0.5, 3.0, eps=1e-6, reduction="none"
            ),
        )

    def test_metrics(self) -> None:
        check_metrics(NAME, {"loss"})

    def test_hand_computed(self) -> None:
        target = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]])
        assert float(DF.silog(2.0 * target, target, lambd=1.0, eps=0.0)) == 0.0  # a global scale is free
        # g = log 2 everywhere: 10 * sqrt((1 - 0.85) log² 2)
        assert float(DF.silog(2.0 * target, target, eps=0.0)) == pytest.approx(
            10.0 * math.sqrt(0.15) * math.log(2.0), rel=1e-6
        )

    def test_packnet_constants(self) -> None:
        info_defaults = build(NAME, "depth")
        assert (info_defaults.lambd, info_defaults.ratio, info_defaults.eps) == (0.85, 10.0, 1e-8)

    def test_lambda_one_module_is_invariant_to_a_global_scale(self) -> None:
        pred_d, target_d, _ = depth_case((2, 1, 12, 12), density=0.6, seed=20)
        for space in ("depth", "inverse"):
            pred, target = to_input_space(pred_d, space), to_input_space(target_d, space)
            module = build(NAME, space, lambd=1.0, reduction="none")
            base = module(pred, target)
            assert (base > 0.1).all()
            for a in (0.1, 3.0, 25.0):
                torch.testing.assert_close(module(a * pred, target), base, rtol=1e-8, atol=1e-9)
            default = build(NAME, space, reduction="none")  # lambd = 0.85 is not
            assert ((default(3.0 * pred, target) - base).abs() > 0.1).all()

    def test_non_positive_prediction_is_finite(self) -> None:
        inputs = loss_inputs(NAME, "depth", dtype=torch.float64)
        pred = inputs.pred.clone()
        pred[0, 0, 0, 0] = 0.0
        pred[1, 0, 1, 1] = -3.0
        x = pred.requires_grad_(True)
        loss = DF.silog(x, inputs.target, inputs.valid)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
