"""``berhu``: reverse Huber, ``c = threshold · max|d|`` per image, detached (:func:`depthloss.functional.berhu`)."""

from __future__ import annotations

import pytest
import torch

import depthloss.functional as DF
import reference as R
from helpers import MASKS, autograd_grad, build, fd_grad, gen, oracle_pair, valid_of
from loss_testing import (
    WEIGHTS,
    check_bad_hyperparameters,
    check_bad_inputs,
    check_metrics,
    check_module_equals_functional,
    check_smoke,
    check_values,
)

NAME = "berhu"


class TestBerHu:
    def test_smoke(self) -> None:
        check_smoke(NAME, threshold=0.3)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME, [({"threshold": 0.0}, ValueError, "threshold"), ({"threshold": -0.2}, ValueError, "threshold"),
                   ({"threshold": "big"}, TypeError, "threshold")], functional=DF.berhu,
        )  # fmt: skip

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        variants = [{}, {"weights": WEIGHTS}, {"threshold": 0.5}, {"threshold": 1.5, "weights": WEIGHTS}]
        check_values(DF.berhu, R.berhu, variants, mask_kind, dtype)

    @pytest.mark.parametrize("threshold", [0.2, 0.6])
    def test_gradient_oracle(self, threshold: float) -> None:
        """``c`` is detached by definition: away from each image's largest residual (which sets it)
        the gradient is the oracle's; the largest residual itself gets the quadratic branch's slope."""
        pred, target, mask = oracle_pair((2, 1, 5, 6), "random", 3, torch.float64)
        valid = valid_of(mask, pred)
        d = torch.where(valid, (pred - target).abs(), -1.0).flatten(1)
        top = torch.zeros_like(d, dtype=torch.bool).scatter(1, d.argmax(1, keepdim=True), True).reshape(pred.shape)
        got = autograd_grad(lambda x: DF.berhu(x, target, mask, threshold=threshold), pred)
        expected = fd_grad(
            lambda x: R.berhu(x, target, mask, threshold=threshold), torch.where(valid, pred, 1.0), valid & ~top
        )
        torch.testing.assert_close(got[valid & ~top], expected[valid & ~top], rtol=1e-6, atol=1e-9)
        assert torch.equal(got[~valid], torch.zeros_like(got[~valid]))
        # at the top pixel |d| > c: d(d² + c²)/2c with c held fixed is d / c (per image mean)
        n = valid.flatten(1).sum(1).to(torch.float64)
        for b in range(2):
            i = top[b]
            db = float((pred - target)[b][i])
            c = threshold * abs(db)
            assert float(got[b][i]) == pytest.approx(db / c / float(n[b]) / 2.0, rel=1e-9)  # mean over 2 images

    def test_gradcheck_away_from_the_max(self) -> None:
        """gradcheck with the largest-residual pixel held fixed (it is not an input of the check)."""
        g = gen(8)
        shape = (2, 1, 8, 8)
        target = 0.5 + 2.0 * torch.rand(shape, generator=g, dtype=torch.float64)
        magnitude = torch.where(
            torch.rand(shape, generator=g) < 0.5,
            0.05 + 0.8 * torch.rand(shape, generator=g, dtype=torch.float64),  # linear branch, c = 1
            1.2 + 0.8 * torch.rand(shape, generator=g, dtype=torch.float64),  # quadratic branch
        )
        sign = torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0).to(torch.float64)
        outlier = torch.zeros(shape, dtype=torch.bool)
        outlier[:, :, 3, 4] = True
        magnitude = torch.where(outlier, torch.full_like(magnitude, 5.0), magnitude)  # c = 0.2 * 5 = 1
        fixed = target + sign * magnitude
        for space in ("depth", "inverse"):
            module = build(NAME, space)
            x = fixed.clone().requires_grad_(True)
            assert torch.autograd.gradcheck(
                lambda p: module(torch.where(outlier, fixed, p), target), (x,), eps=1e-6, atol=1e-5
            )

    def test_module_equals_functional(self) -> None:
        check_module_equals_functional(
            NAME, {"threshold": 0.35}, lambda p, t, m, s, pr: DF.berhu(p, t, m, threshold=0.35, reduction="none")
        )

    def test_metrics(self) -> None:
        check_metrics(NAME, {"loss"})

    def test_hand_computed(self) -> None:
        # d = 0.1, 1.0; c = 0.2: 0.1 (linear) and (1 + 0.04) / 0.4 = 2.6 (quadratic); mean 1.35
        torch.testing.assert_close(
            DF.berhu(torch.tensor([[[0.0, 0.0]]]), torch.tensor([[[0.1, 1.0]]])), torch.tensor(1.35)
        )
        # d = 1, 5: c = 1, so 1 (at |d| = c both branches give c: continuous) and (25 + 1) / 2 = 13
        assert float(DF.berhu(torch.tensor([[[0.0, 0.0]]]), torch.tensor([[[1.0, 5.0]]]))) == pytest.approx(7.0)
