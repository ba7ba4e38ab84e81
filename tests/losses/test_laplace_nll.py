"""``laplace-nll``: Laplace NLL with a predicted per-pixel log scale (:func:`depthloss.functional.laplace_nll`)."""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

import depthloss
import depthloss.functional as DF
import reference as R
from helpers import MASKS, assert_grad_matches_oracle, build, gen, loss_inputs, oracle_pair, poison, to_input_space
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

NAME = "laplace-nll"
KERNEL: Callable[..., Tensor] = DF.laplace_nll
ORACLE: Callable[..., Tensor] = R.laplace_nll


def log_scale_for(pred: Tensor, mask: Optional[Tensor]) -> Tensor:
    """A log-scale map in [-2, 1] derived from the case's shape (junk at invalid pixels)."""
    g = gen(sum(pred.shape) + 7)
    s = (torch.rand(pred.shape, generator=g, dtype=torch.float64) * 3.0 - 2.0).to(pred.dtype)
    return poison(s, mask)


def kernel(pred: Tensor, target: Tensor, mask: Optional[Tensor], **kw: Any) -> Tensor:
    return KERNEL(pred, target, log_scale_for(pred, mask), mask, **kw)


def oracle(pred: Tensor, target: Tensor, mask: Optional[Tensor], **kw: Any) -> Tensor:
    return ORACLE(pred, target, log_scale_for(pred, mask), mask, **kw)


class TestLaplaceNLL:
    def test_smoke(self) -> None:
        check_smoke(NAME)
        check_smoke(NAME, residual="linear", full=True)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME,
            [({"residual": "square"}, ValueError, "residual"), ({"log_scale_range": (1.0, -1.0)}, ValueError, "log_scale_range"),
             ({"log_scale_range": 3.0}, TypeError, "log_scale_range"), ({"log_scale_range": (0.0, math.inf)}, ValueError, "log_scale_range")],
            functional=lambda p, t, **kw: KERNEL(p, t, torch.zeros_like(p), **kw),
        )  # fmt: skip
        module = build(NAME, "depth")
        p = torch.rand(2, 1, 4, 4) + 0.5
        with pytest.raises(TypeError, match="log_scale"):
            module(p, p)
        with pytest.raises(ValueError, match="log_scale"):
            module(p, p, log_scale=torch.zeros(2, 1, 4, 3))
        with pytest.raises(TypeError, match="log_scale"):
            KERNEL(p, p, torch.zeros(2, 1, 4, 4, dtype=torch.int64))

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        variants = [{}, {"residual": "linear", "full": True}, {"log_scale_range": (-0.5, 0.5)}]
        check_values(kernel, oracle, variants, mask_kind, dtype)

    def test_gradient_oracle(self) -> None:
        check_gradient(kernel, oracle, {})
        check_gradient(kernel, oracle, {"residual": "linear", "scope": "batch"}, mask_kind="one_empty", wrt="target")
        # with respect to the log-scale
        pred, target, mask = oracle_pair((2, 1, 5, 6), "random", 5, torch.float64)
        s = log_scale_for(pred, mask)
        valid = mask
        assert_grad_matches_oracle(
            lambda x: KERNEL(pred, target, x, mask), lambda x: ORACLE(pred, target, x, mask), s, valid
        )

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME)

    def test_module_equals_functional(self) -> None:
        for space in ("depth", "inverse"):
            inputs = loss_inputs(NAME, space, density=0.6, seed=12)
            s = inputs.kwargs["log_scale"]
            module = build(NAME, space, reduction="none", residual="linear", min_depth=0.8, max_depth=4.0)
            got = module(inputs.pred, inputs.target, log_scale=s)
            valid = inputs.target > 0
            want = KERNEL(
                depth_of(inputs.pred, space, 0.8, 4.0), depth_of(inputs.target, space, 0.8, 4.0), s, valid,
                residual="linear", reduction="none",
            )  # fmt: skip
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)

    def test_metrics(self) -> None:
        check_metrics(NAME, {"loss"})

    def test_compile_fullgraph(self) -> None:
        inputs = loss_inputs(NAME, "depth", density=0.6, seed=3)
        module = build(NAME, "depth")
        want = module(inputs.pred, inputs.target, **inputs.kwargs)
        for dynamic in (None, True):
            torch._dynamo.reset()
            compiled = torch.compile(module, fullgraph=True, backend="eager", dynamic=dynamic)
            torch.testing.assert_close(compiled(inputs.pred, inputs.target, **inputs.kwargs), want)

    def test_hand_computed(self) -> None:
        target = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]])
        assert float(KERNEL(target, target, torch.zeros_like(target))) == 0.0
        r = 0.5
        value = KERNEL(target + r, target, torch.zeros_like(target), residual="linear", full=True)
        assert float(value) == pytest.approx(r + math.log(2.0), rel=1e-6)

    def test_any_log_scale_is_finite_and_pulled_back(self) -> None:
        target = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]], dtype=torch.float64)
        pred = 1.5 * target
        for value, sign in ((-1e4, -1.0), (1e4, 1.0), (-30.0, -1.0), (30.0, 1.0), (1e30, 1.0)):
            s = torch.full_like(target, value, requires_grad=True)
            loss = KERNEL(pred, target, s)
            loss.backward()
            assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
            assert (torch.sign(s.grad) == sign).all(), "gradient descent moves s back into range"
            bound = torch.full_like(target, 20.0 if value > 0 else -20.0)
            assert torch.equal(loss.detach(), KERNEL(pred, target, bound)), "the value is the clamped one, exactly"
        for value in (math.inf, -math.inf):
            s = torch.full_like(target, value, requires_grad=True)
            loss = KERNEL(pred.float(), target.float(), s.float())
            loss.backward()
            assert torch.isfinite(loss) and torch.isfinite(s.grad).all()

    def test_half_precision_in_float32(self) -> None:
        inputs = loss_inputs(NAME, "depth", density=0.6, seed=2)
        s = inputs.kwargs["log_scale"]
        half = KERNEL(inputs.pred.half(), inputs.target.half(), s.half(), inputs.valid)
        assert half.dtype == torch.float32
        ref = KERNEL(inputs.pred.half().float(), inputs.target.half().float(), s.half().float(), inputs.valid)
        torch.testing.assert_close(half, ref)

    @settings(max_examples=15, deadline=None)
    @given(
        st.floats(0.1, 10.0), st.floats(-0.9, 0.9).filter(lambda e: abs(e) > 1e-3), st.floats(-3.0, 1.0),
        st.sampled_from(["log", "linear"]),
    )  # fmt: skip
    def test_minimized_at_target_and_at_the_optimal_scale(
        self, depth: float, rel: float, s: float, residual: str
    ) -> None:
        target = torch.tensor([[[depth]]], dtype=torch.float64)
        pred = target * (1.0 + rel)
        log_s = torch.full_like(target, s)
        # for a fixed scale: pred = target is the minimum
        assert float(KERNEL(target, target, log_s, residual=residual)) <= float(
            KERNEL(pred, target, log_s, residual=residual)
        )
        # for a fixed residual: b = |r|
        r = math.log(1.0 + rel) if residual == "log" else depth * rel
        best = torch.full_like(target, math.log(abs(r)), requires_grad=True)
        loss = KERNEL(pred, target, best, residual=residual)
        (grad,) = torch.autograd.grad(loss, best)
        assert abs(float(grad)) < 1e-9
        for delta in (-0.3, 0.3):
            assert float(loss.detach()) < float(KERNEL(pred, target, best.detach() + delta, residual=residual))

    def test_inverse_space_module(self) -> None:
        depth_p = torch.tensor([[[2.0, 3.0]]])
        depth_t = torch.tensor([[[1.0, 3.0]]])
        s = torch.zeros_like(depth_p)
        a = build(NAME, "depth")(depth_p, depth_t, log_scale=s)
        b = build(NAME, "inverse")(to_input_space(depth_p, "inverse"), to_input_space(depth_t, "inverse"), log_scale=s)
        torch.testing.assert_close(a, b)
        assert isinstance(depthloss.get_loss(NAME, input_space="depth"), depthloss.LaplaceNLLLoss)
