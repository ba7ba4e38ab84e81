"""``grad-l1``: ZoeDepth's L1 on the squared magnitude and angle of forward-difference gradients (:func:`depthloss.functional.grad_l1`)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings

import depthloss.functional as DF
import reference as R
from helpers import MASKS, build, loss_inputs, oracle_pair
from loss_testing import (
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
from strategies import loss_cases

NAME = "grad-l1"
VARIANTS = [{}, {"angle": "atan"}]


class TestGradL1:
    def test_smoke(self) -> None:
        check_smoke(NAME)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME,
            [({"angle": "degrees"}, ValueError, "angle"), ({"angle": None}, ValueError, "angle")],
            functional=DF.grad_l1,
        )

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        check_values(DF.grad_l1, R.grad_l1, VARIANTS, mask_kind, dtype)

    def test_gradient_oracle(self) -> None:
        check_gradient(DF.grad_l1, R.grad_l1, {})
        check_gradient(
            DF.grad_l1, R.grad_l1, {"angle": "atan", "reduction": "pixel-mean"}, mask_kind="one_empty", wrt="target"
        )

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME)
        check_gradcheck(NAME, angle="atan")

    def test_module_equals_functional(self) -> None:
        check_module_equals_functional(
            NAME,
            {"angle": "atan", "min_depth": 0.8, "max_depth": 4.0},
            lambda p, t, m, s, pr: DF.grad_l1(
                depth_of(p, s, 0.8, 4.0), depth_of(t, s, 0.8, 4.0), m, "atan", reduction="none"
            ),
        )

    def test_metrics(self) -> None:
        check_metrics(NAME, {"loss"})

    @pytest.mark.parametrize("mask_kind", ["none", "random", "sparse_rows", "one_empty"])
    def test_reproduces_zoedepth(self, mask_kind: str) -> None:
        """``angle="atan"`` with ``reduction="pixel-mean"`` (or ``scope="batch"``) is ZoeDepth's
        ``GradL1Loss`` as published: ``[mask_g]`` indexing and one ``l1_loss`` over the batch."""
        pred, target, mask = oracle_pair((3, 1, 9, 10), mask_kind, 4, torch.float64)
        mask = torch.ones_like(pred, dtype=torch.bool) if mask is None else mask
        authors = R.zoedepth_grad_l1(pred, target, mask)
        if mask_kind == "sparse_rows":  # every third row: no stencil anywhere, ZoeDepth's mean of nothing
            assert torch.isnan(authors) and float(DF.grad_l1(pred, target, mask, "atan", reduction="pixel-mean")) == 0.0
            return
        for kw in ({"reduction": "pixel-mean"}, {"scope": "batch"}):
            torch.testing.assert_close(DF.grad_l1(pred, target, mask, "atan", **kw), authors, rtol=1e-12, atol=1e-12)
        module = build(NAME, "depth", angle="atan", reduction="pixel-mean")
        torch.testing.assert_close(module(pred, torch.where(mask, target, 0.0)), authors, rtol=1e-12, atol=1e-12)
        # the default per-image mean differs once the images have different numbers of stencils
        if mask_kind in ("random", "one_empty"):
            assert abs(float(DF.grad_l1(pred, target, mask, "atan")) - float(authors)) > 1e-6

    def test_hand_computed(self) -> None:
        target = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]], dtype=torch.float64)  # dx = 1, dy = 2
        assert float(DF.grad_l1(2.0 * target, target)) == 15.0  # |20 - 5|, same angle
        flipped = torch.tensor([[[4.0, 3.0], [2.0, 1.0]]], dtype=torch.float64)  # dx = -1, dy = -2: opposite
        assert float(DF.grad_l1(flipped, target)) == pytest.approx(math.pi)  # atan2: a half turn
        assert float(DF.grad_l1(flipped, target, angle="atan")) == pytest.approx(0.0, abs=1e-9)  # same orientation
        assert float(DF.grad_l1(target + 7.0, target)) == 0.0

    def test_zero_gradient_angle_is_safe(self) -> None:
        """A flat prediction: ``atan2(0, 0)`` is read as 0 with a zero gradient, never NaN."""
        target = torch.tensor([[[1.0, 2.0, 4.0], [3.0, 4.0, 5.0]]], dtype=torch.float64)
        pred = torch.ones_like(target, requires_grad=True)
        loss = DF.grad_l1(pred, target)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()
        torch.testing.assert_close(loss, R.grad_l1(pred.detach(), target))

    def test_compile_fullgraph(self) -> None:
        torch._dynamo.reset()
        module = build(NAME, "depth", reduction="pixel-mean")
        compiled = torch.compile(module, fullgraph=True, backend="eager", dynamic=True)
        for b in (2, 3):
            inputs = loss_inputs(NAME, "depth", shape=(b, 1, 10, 12), seed=b)
            torch.testing.assert_close(inputs.call(compiled), inputs.call(module))
        torch._dynamo.reset()

    @settings(max_examples=15, deadline=None)
    @given(case=loss_cases(dtype=torch.float64, min_side=2, max_side=9, poison_invalid=False))
    def test_pixel_mean_is_zoedepth_for_any_mask(self, case) -> None:
        if not bool((case.mask[..., 1:, 1:] & case.mask[..., 1:, :-1] & case.mask[..., :-1, 1:]).any()):
            return  # ZoeDepth's l1_loss of empty tensors is NaN; depthloss gives 0
        got = DF.grad_l1(case.pred, case.target, case.mask, "atan", reduction="pixel-mean")
        authors = R.zoedepth_grad_l1(case.pred, case.target, case.mask)
        torch.testing.assert_close(got, authors, rtol=1e-9, atol=1e-9 * (1.0 + float(authors.abs())))
