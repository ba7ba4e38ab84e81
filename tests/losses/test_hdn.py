"""``hdn``: hierarchical depth normalization, depth bins and grid windows (:func:`depthloss.functional.hdn`)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import depthloss.functional as DF
import reference as R
from helpers import MASKS, build, depth_case, gen, to_input_space
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

NAME = "hdn"


class TestHDN:
    def test_smoke(self) -> None:
        check_smoke(NAME)
        check_smoke(NAME, grouping="depth", bins="range", levels=2)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME,
            [({"grouping": "window"}, ValueError, "grouping"), ({"bins": "uniform"}, ValueError, "bins"),
             ({"levels": 0}, ValueError, "levels"), ({"levels": 2.0}, TypeError, "levels"),
             ({"min_pixels": 0}, ValueError, "min_pixels"), ({"eps": 0.0}, ValueError, "eps"),
             ({"eps": "tiny"}, TypeError, "eps")],
            functional=DF.hdn,
        )  # fmt: skip

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        variants = [
            {},
            {"grouping": "depth", "bins": "range"},
            {"grouping": "spatial", "levels": 4},
            {"grouping": "depth", "levels": 2, "min_pixels": 3},
            {"levels": 1, "eps": 1e-3},
        ]
        check_values(DF.hdn, R.hdn, variants, mask_kind, dtype, shapes=((3, 1, 9, 10), (2, 7, 6), (2, 1, 2, 5)))

    def test_gradient_oracle(self) -> None:
        check_gradient(DF.hdn, R.hdn, {})
        check_gradient(DF.hdn, R.hdn, {"grouping": "depth", "bins": "range", "scope": "batch"}, wrt="target")
        check_gradient(DF.hdn, R.hdn, {"reduction": "pixel-mean", "min_pixels": 2}, mask_kind="one_empty")

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME)

    def test_module_equals_functional(self) -> None:
        check_module_equals_functional(
            NAME,
            {"grouping": "depth", "levels": 2, "bins": "range", "min_depth": 0.8, "max_depth": 4.0},
            lambda p, t, m, s, pr: DF.hdn(
                depth_of(p, s, 0.8, 4.0), depth_of(t, s, 0.8, 4.0), m, "depth", 2, "range", reduction="none"
            ),
        )

    def test_metrics(self) -> None:
        check_metrics(NAME, {"loss"})

    def test_hand_computed(self) -> None:
        # one image, levels=2, depth quantile bins: {1, 2} and {3, 4} plus the whole image
        target = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
        pred = torch.tensor([[[1.0, 2.0, 3.0, 8.0]]])
        # whole image: medians 2, 2; MADs (1+0+1+2)/4 = 1 and (1+0+1+6)/4 = 2: |p̂ - ĝ| = 0.5, 1, 0.5, 0 -> 2
        # bins {1, 2}: both normalize to (0, 2): 0; bins {3, 4}: both (0, 2): 0 -> (2 + 0 + 0) / 8
        got = DF.hdn(pred, target, grouping="depth", levels=2)
        assert float(got) == pytest.approx(2.0 / 8.0, rel=1e-6)
        # "both": the spatial family of a 1x4 image at level 1 has windows of columns [0, 2), [2, 4)
        assert float(DF.hdn(pred, target, levels=2)) == pytest.approx(2.0 / 8.0, rel=1e-6)

    def test_medians_over_valid_pixels_only(self) -> None:
        """The common bug: a median over all pixels (invalid ones as 0) shifts every context."""
        pred_d, target_d, valid = depth_case((1, 1, 8, 8), density=0.5, seed=4)
        junk = torch.where(valid, pred_d, torch.zeros_like(pred_d))
        torch.testing.assert_close(DF.hdn(junk, target_d, valid), DF.hdn(pred_d, target_d, valid))
        torch.testing.assert_close(DF.hdn(pred_d, target_d, valid), R.hdn(pred_d, target_d, valid))

    def test_levels_one_is_the_image_level_ssi_mae(self) -> None:
        pred_d, target_d, valid = depth_case((3, 1, 8, 9), density=0.7, seed=5)
        for grouping in ("depth", "spatial", "both"):
            torch.testing.assert_close(
                DF.hdn(pred_d, target_d, valid, grouping, levels=1, reduction="none"),
                DF.ssi_mae(pred_d, target_d, valid, trim=0.0, reduction="none"),
            )

    def test_pixel_mean_is_metric3d_pooling(self) -> None:
        """Metric3D's HDNLoss: Σ over the batch's (context, pixel) pairs / their count, written out."""
        pred_d, target_d, valid = depth_case((3, 1, 8, 8), density=0.6, seed=6)
        total, count = 0.0, 0
        for b in range(3):
            for k in range(3):
                for j in range(2**k):
                    lo, hi = float(target_d[b][valid[b]].min()), float(target_d[b][valid[b]].max())
                    a = lo + (hi - lo) * j / 2**k
                    z = lo + (hi - lo) * (j + 1) / 2**k
                    ctx = valid[b] & (target_d[b] >= a) & ((target_d[b] < z) | (j == 2**k - 1))
                    s, n = R._hdn_context_sum(pred_d[b], target_d[b], ctx, 1e-6, valid[b])
                    total, count = total + s, count + n
        got = DF.hdn(pred_d, target_d, valid, "depth", bins="range", reduction="pixel-mean")
        assert float(got) == pytest.approx(total / count, rel=1e-10)

    def test_finer_levels_see_local_detail(self) -> None:
        """An error confined to the near range: HDN weighs it more than image-level SSI does."""
        target = torch.linspace(1.0, 50.0, 64, dtype=torch.float64).reshape(1, 1, 8, 8)
        pred = target.clone()
        pred[..., :2, :] = pred[..., :2, :] * torch.tensor([1.0, 1.3] * 4, dtype=torch.float64)
        image_level = DF.hdn(pred, target, levels=1)
        assert float(DF.hdn(pred, target, levels=3)) > 1.5 * float(image_level)

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        seed=st.integers(0, 10_000),
        a=st.floats(0.05, 20.0),
        b=st.floats(-5.0, 5.0),
        grouping=st.sampled_from(["depth", "spatial", "both"]),
        bins=st.sampled_from(["quantile", "range"]),
    )
    def test_affine_invariance(self, seed: int, a: float, b: float, grouping: str, bins: str) -> None:
        pred_d, target_d, valid = depth_case((2, 1, 6, 7), density=0.7, seed=seed)
        base = DF.hdn(pred_d, target_d, valid, grouping, bins=bins, reduction="none")
        assume(bool((base > 1e-3).all()))
        moved = DF.hdn(a * pred_d + b, target_d, valid, grouping, bins=bins, reduction="none")
        torch.testing.assert_close(moved, base, rtol=1e-7, atol=1e-9)
        # and of the target (contexts are defined by order or by fractions of its span)
        moved_t = DF.hdn(pred_d, a * target_d + b, valid, grouping, bins=bins, reduction="none")
        torch.testing.assert_close(moved_t, base, rtol=1e-7, atol=1e-9)

    def test_module_invariance_in_depth(self) -> None:
        pred_d, target_d, _ = depth_case((2, 1, 10, 10), density=0.6, seed=8)
        module = build(NAME, "depth", reduction="none")
        base = module(pred_d, target_d)
        torch.testing.assert_close(module(3.0 * pred_d + 0.7, target_d), base)
        inv = build(NAME, "inverse", reduction="none")  # converted to depth first
        torch.testing.assert_close(inv(to_input_space(pred_d, "inverse"), to_input_space(target_d, "inverse")), base)

    def test_compile_fullgraph(self) -> None:
        torch._dynamo.reset()
        fn = torch.compile(DF.hdn, fullgraph=True, backend="eager", dynamic=True)
        for b in (2, 3):
            p = torch.rand(b, 1, 8, 9, generator=gen(b)) + 0.5
            t = torch.rand(b, 1, 8, 9, generator=gen(b + 9)) + 0.5
            m = t > 0.7
            torch.testing.assert_close(fn(p, t, m, reduction="none"), DF.hdn(p, t, m, reduction="none"))
        torch._dynamo.reset()
