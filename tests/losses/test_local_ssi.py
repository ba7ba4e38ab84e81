"""``local-ssi`` (alias ``edge-guided-ssi``): UniDepth V2's edge-guided local SSI (:func:`depthloss.functional.local_ssi`)."""

from __future__ import annotations

from typing import Any, Dict, Optional

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

import depthloss
import depthloss.functional as DF
import reference as R
from helpers import MASKS, build, gen, loss_inputs, oracle_pair
from loss_testing import (
    check_bad_hyperparameters,
    check_bad_inputs,
    check_gradcheck,
    check_gradient,
    check_metrics,
    check_smoke,
    check_values,
    inverse_of,
)

NAME = "local-ssi"


def image_for(pred: Tensor) -> Tensor:
    g = gen(sum(pred.shape) + 13)
    return torch.rand((pred.shape[0], 3, *pred.shape[-2:]), generator=g, dtype=torch.float64).to(pred.dtype)


def kernel(pred: Tensor, target: Tensor, mask: Optional[Tensor], with_image: bool = False, **kw: Any) -> Tensor:
    return DF.local_ssi(pred, target, mask, image_for(pred) if with_image else None, **kw)


def oracle(pred: Tensor, target: Tensor, mask: Optional[Tensor], with_image: bool = False, **kw: Any) -> Tensor:
    return R.local_ssi(pred, target, mask, image_for(pred) if with_image else None, **kw)


def sqrt_tolerance(kw: Dict[str, Any], expected: Tensor) -> Dict[str, float]:
    """``sqrt(x + 1e-4)`` has slope 50 at a perfect fit: float32 rounding of a residual near 0 (a two-pixel
    fit, an exactly affine window) is amplified 50 times."""
    return {"atol": 5e-5} if kw.get("output", "sqrt") == "sqrt" else {}


class TestLocalSSI:
    def test_smoke(self) -> None:
        check_smoke(NAME, num_windows=8)
        check_smoke(NAME, num_windows=8, sampling="random", align="std")

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME, num_windows=8)
        check_bad_hyperparameters(
            NAME,
            [({"num_windows": 0}, ValueError, "num_windows"), ({"window_size": 4}, ValueError, "window_size"),
             ({"window_size": 2.5}, TypeError, "window_size"), ({"sampling": "poisson"}, ValueError, "sampling"),
             ({"edge_quantile": 1.0}, ValueError, "edge_quantile"), ({"align": "median"}, ValueError, "align"),
             ({"penalty": "huber"}, ValueError, "penalty"), ({"output": "log"}, ValueError, "output"),
             ({"min_samples": 0}, ValueError, "min_samples")],
            functional=DF.local_ssi,
        )  # fmt: skip
        module = build(NAME, "inverse")
        p = torch.rand(2, 1, 6, 6) + 0.5
        with pytest.raises(ValueError, match="image"):
            module(p, p, image=torch.rand(2, 3, 6, 5))
        with pytest.raises(TypeError, match="image"):
            module(p, p, image=torch.zeros(2, 3, 6, 6, dtype=torch.uint8))
        with pytest.raises(TypeError, match="generator"):
            module(p, p, generator=0)

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        variants = [
            {"num_windows": 5},
            {"num_windows": 7, "align": "std", "penalty": "l2", "output": "linear"},
            {"num_windows": 3, "sampling": "grid", "use_global": False, "window_size": 5, "min_samples": 3},
            {"num_windows": 6, "with_image": True, "edge_quantile": 0.5, "min_samples": 2},
        ]
        check_values(
            kernel, oracle, variants, mask_kind, dtype, tolerance=sqrt_tolerance if dtype == torch.float32 else None
        )

    def test_gradient_oracle(self) -> None:
        check_gradient(kernel, oracle, {"num_windows": 6, "min_samples": 4}, shape=(2, 1, 7, 8))
        check_gradient(kernel, oracle, {"num_windows": 4, "align": "std", "scope": "batch"}, mask_kind="one_empty")

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME, num_windows=6)

    def test_module_equals_functional(self) -> None:
        for space in ("depth", "inverse"):
            inputs = loss_inputs(NAME, space, density=0.7, seed=12)
            image = inputs.kwargs["image"]
            module = build(NAME, space, reduction="none", num_windows=9, min_depth=0.8, max_depth=4.0)
            got = module(inputs.pred, inputs.target, image=image)
            want = DF.local_ssi(
                inverse_of(inputs.pred, space, 0.8, 4.0), inverse_of(inputs.target, space, 0.8, 4.0),
                inputs.target > 0, image, num_windows=9, reduction="none",
            )  # fmt: skip
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)

    def test_alias(self) -> None:
        assert type(depthloss.get_loss("edge-guided-ssi", input_space="inverse")) is depthloss.LocalSSILoss
        assert depthloss.loss_info("Sparse-Edge-Guided-SSI").name == NAME
        assert "edge-guided-ssi" not in depthloss.list_losses()

    def test_metrics(self) -> None:
        check_metrics(NAME, {"loss"}, num_windows=8)

    @pytest.mark.parametrize(("sampling", "dynamic"), [("edges", None), ("edges", True), ("random", True)])
    def test_compile_fullgraph(self, sampling: str, dynamic: Optional[bool]) -> None:
        """(``"grid"`` is the ``"edges"`` graph with other candidates.)"""
        inputs = loss_inputs(NAME, "inverse", density=0.6, seed=3)
        module = build(NAME, "inverse", num_windows=8, sampling=sampling)
        for _ in (0,):
            torch._dynamo.reset()
            compiled = torch.compile(module, fullgraph=True, backend="eager", dynamic=dynamic)
            got = compiled(inputs.pred, inputs.target, **inputs.kwargs)
            if sampling != "random":
                torch.testing.assert_close(got, module(inputs.pred, inputs.target, **inputs.kwargs))
            assert torch.isfinite(got)

    def test_random_sampling_generator(self) -> None:
        inputs = loss_inputs(NAME, "inverse", shape=(2, 1, 24, 24), density=0.8, seed=6)
        module = build(NAME, "inverse", num_windows=4, sampling="random", use_global=False, reduction="none")

        def call(generator: Optional[torch.Generator]) -> Tensor:
            return module(inputs.pred, inputs.target, generator=generator)

        a, b = call(torch.Generator().manual_seed(1)), call(torch.Generator().manual_seed(1))
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # deterministic given a generator
        draws = torch.stack([call(None) for _ in range(4)])
        assert (draws != draws[0]).any(), "different without one"

    def test_windows_follow_edges(self) -> None:
        """A step edge: windows centred on it see a two-level target; a prediction that blurs the step is
        penalized locally far more than by the global fit alone."""
        target = torch.ones(1, 1, 24, 24, dtype=torch.float64)
        target[..., 12:, :] = 3.0  # a horizontal step between rows 11 and 12
        sharp = 2.0 * target + 1.0
        blurred = sharp.clone()
        blurred[..., 11:13, :] = 5.0  # the two rows at the step take the middle value
        kw: dict = {"num_windows": 8, "window_size": 5, "output": "linear"}
        assert float(DF.local_ssi(sharp, target, **kw)) < 1e-9
        local = float(DF.local_ssi(blurred, target, use_global=False, **kw))
        grid = float(DF.local_ssi(blurred, target, use_global=False, sampling="grid", **kw))
        assert local > 2.0 * grid > 0.0

    @settings(max_examples=12, deadline=None)
    @given(
        st.integers(0, 10_000), st.floats(0.05, 20.0), st.floats(-5.0, 5.0), st.sampled_from(sorted(MASKS)),
        st.booleans(),
    )  # fmt: skip
    def test_invariant_to_scale_and_shift_of_pred(
        self, seed: int, a: float, b: float, mask_kind: str, with_image: bool
    ) -> None:
        """Exact for least squares (``align="std"`` standardizes with ``sqrt(var + 1e-4)``: invariant only
        up to that regularizer, as the authors' code)."""
        align = "lsq"
        pred, target, mask = oracle_pair((2, 1, 9, 10), mask_kind, seed, torch.float64)
        clean = torch.where(mask, pred, 1.0) if mask is not None else pred
        kw: dict = {"num_windows": 6, "align": align, "output": "linear", "reduction": "none", "min_samples": 3}
        image = image_for(pred) if with_image else None
        base = DF.local_ssi(clean, target, mask, image, **kw)
        moved = DF.local_ssi(a * clean + b, target, mask, image, **kw)
        torch.testing.assert_close(moved, base, rtol=1e-7, atol=1e-9)
        # least squares also absorbs a negative scale
        torch.testing.assert_close(DF.local_ssi(-a * clean + b, target, mask, image, **kw), base, rtol=1e-7, atol=1e-9)
