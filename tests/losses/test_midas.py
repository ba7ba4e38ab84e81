"""``midas``: least-squares scale-and-shift aligned MSE + gradient matching (:func:`depthloss.functional.midas`)."""

from __future__ import annotations

import pytest
import torch

import depthloss.functional as DF
import reference as R
from helpers import MASKS, build, depth_case, loss_inputs, to_input_space
from loss_testing import (
    SCOPE_REDUCTIONS,
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

NAME = "midas"


class TestMiDaS:
    def test_smoke(self) -> None:
        check_smoke(NAME)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME,
            [({"operator": "laplace"}, ValueError, "operator"), ({"alpha": -0.5}, ValueError, "alpha"),
             ({"scales": 0}, ValueError, "scales"), ({"scales": 2.0}, TypeError, "scales"),
             ({"data_scale": 0.0}, ValueError, "data_scale")],
            functional=DF.midas,
        )  # fmt: skip
        with pytest.raises(ValueError, match="scope: midas accepts 'image', 'batch'; got 'global'"):
            build(NAME, scope="global")
        with pytest.raises(ValueError, match="scope: midas accepts 'image', 'batch'; got 'global'"):
            DF.midas(torch.ones(1, 4, 4), torch.ones(1, 4, 4), scope="global")

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        variants = [
            {},
            {"alpha": 0.7, "scales": 2, "operator": "sobel"},
            {"data_scale": 0.5, "scales": 5, "alpha": 1.0},
        ]
        # least squares in float32: the fitted shift is a difference of terms of the size of the target
        tol = {"atol": 2e-5} if dtype == torch.float32 else {}
        check_values(DF.midas, R.midas, variants, mask_kind, dtype, tolerance=lambda kw, e: tol)

    def test_gradient_oracle(self) -> None:
        check_gradient(DF.midas, R.midas, {"scales": 3}, shape=(2, 1, 7, 8))
        check_gradient(
            DF.midas,
            R.midas,
            {"operator": "sobel", "scales": 2, "reduction": "pixel-mean"},
            shape=(2, 1, 6, 6),
            wrt="target",
        )

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME, scales=2)

    def test_module_equals_functional(self) -> None:
        check_module_equals_functional(
            NAME,
            {"alpha": 0.7, "scales": 2, "operator": "sobel", "data_scale": 0.5},
            lambda p, t, m, s, pr: DF.midas(
                inverse_of(p, s), inverse_of(t, s), m, 0.7, 2, "sobel", 0.5, reduction="none"
            ),
        )

    def test_metrics(self) -> None:
        check_metrics(NAME, {"data", "grad", "loss"})

    def test_affine_invariance_on_inverse_depth(self) -> None:
        pred_d, target_d, _ = depth_case((2, 1, 16, 16), density=0.6, seed=19)
        pred, target = to_input_space(pred_d, "inverse"), to_input_space(target_d, "inverse")
        module = build(NAME, "inverse", reduction="none")
        base = module(pred, target)
        assert (base > 1e-3).all()
        for a, b in [(3.0, 1.0), (0.5, 0.3), (20.0, -1.0), (-2.0, 0.5)]:  # least squares: any a != 0
            torch.testing.assert_close(module(a * pred + b, target), base, rtol=1e-8, atol=1e-10)

    def test_pixel_mean_is_the_published_batch_based_reduction(self) -> None:
        """data_scale=0.5 and reduction='pixel-mean': every term and gradient level pooled over the batch
        (written out here with per-level sums and counts from the oracle's gradient term)."""
        pred, target, mask = (
            torch.rand(3, 1, 8, 8, dtype=torch.float64),
            torch.rand(3, 1, 8, 8, dtype=torch.float64),
            torch.rand(3, 1, 8, 8) < 0.6,
        )
        got = DF.midas(pred, target, mask, data_scale=0.5, reduction="pixel-mean")
        torch.testing.assert_close(got, R.midas(pred, target, mask, data_scale=0.5, reduction="pixel-mean"))
        assert not torch.allclose(got, DF.midas(pred, target, mask, data_scale=0.5))  # not the mean of per-image losses

    def test_scales_beyond_the_image(self) -> None:
        """Issue 12 item 6: scales=64 passed validation and failed in forward (as_strided: Negative
        strides). Levels past the image size hold one pixel and add 0: scales=64 equals scales=5 on 16x16."""
        inputs = loss_inputs(NAME, shape=(2, 1, 16, 16))
        x = inputs.leaf()
        deep = build(NAME, scales=64)(x, inputs.target)
        deep.backward()
        assert torch.isfinite(deep) and torch.isfinite(x.grad).all()
        torch.testing.assert_close(deep.detach(), build(NAME, scales=5)(inputs.pred, inputs.target))
        torch.testing.assert_close(
            DF.gradient_matching(inputs.pred, scales=64), DF.gradient_matching(inputs.pred, scales=5)
        )

    @pytest.mark.parametrize("shape", [(2, 1, 1, 1), (2, 1, 2, 2), (1, 1, 1, 9), (2, 3, 1)])
    def test_images_smaller_than_the_pyramid(self, shape) -> None:
        inputs = loss_inputs(NAME, shape=shape, density=1.0)
        x = inputs.leaf()
        loss = build(NAME)(x, inputs.target)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
        torch.testing.assert_close(loss.detach(), R.midas(inputs.pred, inputs.target).float())

    def test_second_derivative(self) -> None:
        p = (torch.rand(1, 1, 5, 5, dtype=torch.float64) + 0.5).requires_grad_(True)
        t = torch.rand(1, 1, 5, 5, dtype=torch.float64) + 0.5
        assert torch.autograd.gradgradcheck(lambda x: DF.midas(x, t, scales=2), (p,))

    def test_docstring_says_what_batch_scope_is(self) -> None:
        """Issue 12 item 6: scope='batch' fits one scale and shift to the batch; the docstring must not
        call it MiDaS's batch-based reduction (which aligns per image: reduction='pixel-mean')."""
        doc = " ".join((DF.midas.__doc__ or "").split())
        assert "one scale and shift) for the whole batch" in doc or "one least-squares fit" in doc
        assert '*not* MiDaS\'s "batch-based" reduction' in doc


def test_batch_scope_is_one_fit_for_the_batch() -> None:
    """scope='batch': one least-squares fit for the pooled batch (the oracle's definition)."""
    pred, target = torch.rand(3, 1, 6, 6, dtype=torch.float64), torch.rand(3, 1, 6, 6, dtype=torch.float64)
    for scope, reduction in SCOPE_REDUCTIONS:
        torch.testing.assert_close(
            DF.midas(pred, target, scope=scope, reduction=reduction),
            R.midas(pred, target, scope=scope, reduction=reduction),
        )
