"""``confidence``: a confidence head regresses the (detached) error of the prediction (:func:`depthloss.functional.confidence_loss`)."""

from __future__ import annotations

from typing import Any, Optional

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

import depthloss
import depthloss.functional as DF
import reference as R
from helpers import MASKS, assert_grad_matches_oracle, build, gen, loss_inputs, oracle_pair, poison
from loss_testing import (
    check_bad_hyperparameters,
    check_bad_inputs,
    check_gradcheck,
    check_gradient,
    check_metrics,
    check_smoke,
    check_values,
    depth_of,
)

NAME = "confidence"


def confidence_for(pred: Tensor, mask: Optional[Tensor]) -> Tensor:
    g = gen(sum(pred.shape) + 11)
    return poison(torch.rand(pred.shape, generator=g, dtype=torch.float64).to(pred.dtype), mask)


def kernel(pred: Tensor, target: Tensor, mask: Optional[Tensor], **kw: Any) -> Tensor:
    return DF.confidence_loss(pred, target, confidence_for(pred, mask), mask, **kw)


def oracle(pred: Tensor, target: Tensor, mask: Optional[Tensor], **kw: Any) -> Tensor:
    return R.confidence_loss(pred, target, confidence_for(pred, mask), mask, **kw)


class TestConfidence:
    def test_smoke(self) -> None:
        check_smoke(NAME, detach_pred=False)
        check_smoke(NAME, form="unidepth", detach_pred=False)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME,
            [({"form": "dust3r"}, ValueError, "form"), ({"output": "log"}, ValueError, "output")],
            functional=lambda p, t, **kw: DF.confidence_loss(p, t, torch.zeros_like(p), **kw),
        )
        module = build(NAME, "depth")
        p = torch.rand(2, 1, 4, 4) + 0.5
        with pytest.raises(TypeError, match="confidence"):
            module(p, p)
        with pytest.raises(ValueError, match="confidence"):
            module(p, p, confidence=torch.zeros(2, 1, 3, 4))

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        variants = [
            {},
            {"output": "sqrt", "detach_pred": False},
            {"form": "unidepth"},
            {"form": "unidepth", "rescale": False, "output": "linear"},
        ]
        check_values(kernel, oracle, variants, mask_kind, dtype)

    def test_authors_form(self) -> None:
        """``scope="batch"`` is Metric3D's published batch-pooled loss (up to its ``1e-6``)."""
        pred, target, mask = oracle_pair((3, 1, 9, 10), "random", 4, torch.float64, 0.3, 3.0)
        c = confidence_for(pred, mask)
        safe = [torch.where(mask, x, 1.0) for x in (pred, target, c)]
        got = DF.confidence_loss(pred, target, c, mask, scope="batch")
        torch.testing.assert_close(got, R.confidence_metric3d_authors(*safe, mask), rtol=1e-6, atol=0.0)

    def test_gradient_oracle(self) -> None:
        check_gradient(kernel, oracle, {"detach_pred": False})
        check_gradient(kernel, oracle, {"detach_pred": False, "form": "unidepth", "rescale": False}, wrt="target")
        check_gradient(
            kernel, oracle, {"detach_pred": False, "form": "unidepth"}, mask_kind="one_empty"
        )  # via the medians
        pred, target, mask = oracle_pair((2, 1, 5, 6), "random", 5, torch.float64)
        for form in ("metric3d", "unidepth"):
            assert_grad_matches_oracle(
                lambda x: DF.confidence_loss(pred, target, x, mask, form=form),
                lambda x: R.confidence_loss(pred, target, x, mask, form=form),
                confidence_for(pred, mask),
                mask,
            )

    def test_prediction_detached_by_default(self) -> None:
        inputs = loss_inputs(NAME, "depth", density=0.6, seed=5)
        c = inputs.kwargs["confidence"].clone().requires_grad_(True)
        pred = inputs.leaf()
        loss = build(NAME, "depth")(pred, inputs.target, confidence=c)
        loss.backward()
        assert pred.grad is not None and torch.equal(pred.grad, torch.zeros_like(pred))
        assert c.grad is not None and c.grad.abs().sum() > 0
        pred2 = inputs.leaf()
        build(NAME, "depth", detach_pred=False)(pred2, inputs.target, confidence=c.detach()).backward()
        assert pred2.grad.abs().sum() > 0  # the authors' code: the error target reaches the prediction
        torch.testing.assert_close(
            loss.detach(), build(NAME, "depth", detach_pred=False)(inputs.pred, inputs.target, confidence=c).detach()
        )

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME, detach_pred=False)

    def test_module_equals_functional(self) -> None:
        for space in ("depth", "inverse"):
            inputs = loss_inputs(NAME, space, density=0.6, seed=12)
            c = inputs.kwargs["confidence"]
            module = build(NAME, space, reduction="none", form="unidepth", min_depth=0.8, max_depth=4.0)
            got = module(inputs.pred, inputs.target, confidence=c)
            want = DF.confidence_loss(
                depth_of(inputs.pred, space, 0.8, 4.0), depth_of(inputs.target, space, 0.8, 4.0), c,
                inputs.target > 0, form="unidepth", reduction="none",
            )  # fmt: skip
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)

    def test_metrics(self) -> None:
        check_metrics(NAME, {"loss"})

    def test_compile_fullgraph(self) -> None:
        inputs = loss_inputs(NAME, "depth", density=0.6, seed=3)
        for kwargs in ({}, {"form": "unidepth"}):
            module = build(NAME, "depth", **kwargs)
            want = module(inputs.pred, inputs.target, **inputs.kwargs)
            for dynamic in (None, True):
                torch._dynamo.reset()
                compiled = torch.compile(module, fullgraph=True, backend="eager", dynamic=dynamic)
                torch.testing.assert_close(compiled(inputs.pred, inputs.target, **inputs.kwargs), want)

    def test_hand_computed(self) -> None:
        target = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]])
        pred = torch.tensor([[[1.5, 2.0], [9.0, 8.0]]])  # the third pixel's relative error 1.25 is dropped
        value = DF.confidence_loss(pred, target, torch.ones_like(target))
        assert float(value) == pytest.approx(0.5 / 3, rel=1e-6)
        assert float(DF.confidence_loss(pred, target, torch.ones_like(target), output="sqrt")) == pytest.approx(
            (0.5 / 3 + 1e-4) ** 0.5, rel=1e-6
        )

    @settings(max_examples=15, deadline=None)
    @given(st.integers(0, 10_000), st.sampled_from(["metric3d", "unidepth"]))
    def test_minimized_by_the_error_it_regresses(self, seed: int, form: str) -> None:
        g = gen(seed)
        target = 0.5 + 4.0 * torch.rand(2, 1, 6, 6, generator=g, dtype=torch.float64)
        pred = target * (1.0 + 0.6 * (torch.rand(2, 1, 6, 6, generator=g, dtype=torch.float64) - 0.5))
        if form == "metric3d":
            best = 1.0 - (pred - target).abs() / target
        else:
            lam = R._lower_median(target.flatten(1)[0]) / R._lower_median(pred.flatten(1)[0])
            lam2 = R._lower_median(target.flatten(1)[1]) / R._lower_median(pred.flatten(1)[1])
            best = (torch.tensor([lam, lam2], dtype=torch.float64).view(2, 1, 1, 1) * pred - target).abs()
        kw = {"form": form, "output": "linear"}
        optimum = DF.confidence_loss(pred, target, best, **kw)
        assert float(optimum) < 1e-12
        noise = 0.1 * torch.randn(best.shape, generator=g, dtype=torch.float64)
        assert float(DF.confidence_loss(pred, target, best + noise, **kw)) > float(optimum)

    def test_registry(self) -> None:
        assert isinstance(depthloss.get_loss(NAME, input_space="depth"), depthloss.ConfidenceLoss)
        assert depthloss.loss_info(NAME).inputs == ("confidence",)
