"""``hdn-random``: Metric3D v2's HDN with random windows and depth ranges (:func:`depthloss.functional.hdn_random`)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import Tensor

import depthloss.functional as DF
import reference as R
from helpers import MASKS, build, depth_case, gen, to_input_space
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

NAME = "hdn-random"


def samples_for(pred: Tensor, count: int = 5, seed: int = 21) -> Tensor:
    """Pre-drawn uniforms ``(B, S, 6)`` in ``pred``'s dtype (the same numbers reach the oracle)."""
    return torch.rand((pred.shape[0], count, 6), generator=gen(seed), dtype=torch.float64).to(pred.dtype)


def with_samples(fn: Any) -> Any:
    def call(pred: Tensor, target: Tensor, mask: Any, **kw: Any) -> Tensor:
        return fn(pred, target, mask, samples=samples_for(pred), **kw)

    return call


class TestHDNRandom:
    def test_smoke(self) -> None:
        check_smoke(NAME)
        check_smoke(NAME, grouping="depth", bins="quantile", num_ranges=3)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME,
            [({"grouping": "grid"}, ValueError, "grouping"), ({"bins": "uniform"}, ValueError, "bins"),
             ({"num_windows": 0}, ValueError, "num_windows"), ({"num_ranges": 1.5}, TypeError, "num_ranges"),
             ({"window_size": (0.0, 0.5)}, ValueError, "window_size[0]"),
             ({"window_size": (0.6, 0.5)}, ValueError, "window_size"), ({"window_size": 0.5}, TypeError, "window_size"),
             ({"whole_image": "depth"}, ValueError, "whole_image"), ({"min_pixels": 0}, ValueError, "min_pixels"),
             ({"eps": -1.0}, ValueError, "eps")],
            functional=DF.hdn_random,
        )  # fmt: skip
        module = build(NAME)
        p = torch.rand(2, 1, 6, 7) + 0.5
        with pytest.raises(ValueError, match=r"samples must have shape \(B, S, 6\)"):
            module(p, p, samples=torch.rand(3, 4, 6))
        with pytest.raises(TypeError, match="samples must be a floating-point tensor"):
            module(p, p, samples=torch.ones(2, 4, 6, dtype=torch.long))
        with pytest.raises(TypeError, match="generator must be a torch.Generator"):
            module(p, p, generator=0)
        with pytest.raises(TypeError, match="generator must be a torch.Generator"):
            DF.hdn_random(p, p, generator="seed")

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        variants = [
            {},
            {"bins": "quantile", "whole_image": "all"},
            {"grouping": "spatial", "whole_image": "none", "window_size": (0.3, 0.9)},
            {"grouping": "depth", "min_pixels": 3},
        ]
        check_values(with_samples(DF.hdn_random), with_samples(R.hdn_random), variants, mask_kind, dtype)

    def test_shared_samples(self) -> None:
        """``(1, S, 6)`` samples give every image the same contexts (Metric3D shares its windows)."""
        pred_d, target_d, valid = depth_case((3, 1, 9, 8), density=0.7, seed=3)
        shared = samples_for(pred_d[:1], 6)
        got = DF.hdn_random(pred_d, target_d, valid, samples=shared, reduction="none")
        torch.testing.assert_close(
            got, DF.hdn_random(pred_d, target_d, valid, samples=shared.expand(3, -1, -1), reduction="none")
        )
        torch.testing.assert_close(got, R.hdn_random(pred_d, target_d, valid, samples=shared, reduction="none"))

    def test_gradient_oracle(self) -> None:
        s = torch.rand((2, 4, 6), generator=gen(5), dtype=torch.float64)
        check_gradient(DF.hdn_random, R.hdn_random, {"samples": s})
        check_gradient(DF.hdn_random, R.hdn_random, {"samples": s, "bins": "quantile", "scope": "batch"}, wrt="target")

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME)

    def test_module_equals_functional(self) -> None:
        pred_d, target_d, _ = depth_case((2, 1, 12, 12), density=0.6, seed=12)
        s = samples_for(pred_d, 6).float()
        for space in ("inverse", "depth"):
            pred, target = to_input_space(pred_d, space).float(), to_input_space(target_d, space).float()
            module = build(
                NAME, space, reduction="none", grouping="depth", bins="quantile", min_depth=0.8, max_depth=4.0
            )
            want = DF.hdn_random(
                depth_of(pred, space, 0.8, 4.0), depth_of(target, space, 0.8, 4.0), target > 0, "depth",
                bins="quantile", samples=s, reduction="none",
            )  # fmt: skip
            got = module(pred, target, samples=s)
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
            assert got.abs().min() > 0

    def test_metrics(self) -> None:
        check_metrics(NAME, {"loss"})

    def test_generator_determinism(self) -> None:
        """Deterministic given a generator, different without one; fixed sample counts."""
        pred_d, target_d, valid = depth_case((2, 1, 16, 16), density=0.8, seed=9)
        run = lambda g=None: DF.hdn_random(pred_d, target_d, valid, generator=g, reduction="none")  # noqa: E731
        torch.testing.assert_close(run(gen(3)), run(gen(3)))
        assert not torch.equal(run(gen(3)), run(gen(4)))
        assert not torch.equal(run(), run())
        module = build(NAME, "depth", reduction="none")
        torch.testing.assert_close(module(pred_d, target_d, generator=gen(3)), run(gen(3)))
        # the generator's draws are the samples: windows (B, S_w, 4) first, then ranges (B, S_r, 2)
        g = gen(7)
        u_w, u_r = (
            torch.rand((2, 20, 4), generator=g, dtype=torch.float64),
            torch.rand((2, 10, 2), generator=g, dtype=torch.float64),
        )
        spatial = DF.hdn_random(pred_d, target_d, valid, "spatial", generator=gen(7), reduction="none")
        explicit = torch.cat([u_w, torch.zeros(2, 20, 2, dtype=torch.float64)], dim=-1)
        torch.testing.assert_close(
            spatial, DF.hdn_random(pred_d, target_d, valid, "spatial", samples=explicit, reduction="none")
        )
        depth = DF.hdn_random(pred_d, target_d, valid, "depth", generator=gen(7), reduction="none")
        explicit = torch.cat([torch.zeros(2, 10, 4, dtype=torch.float64), u_r], dim=-1)
        torch.testing.assert_close(
            depth, DF.hdn_random(pred_d, target_d, valid, "depth", samples=explicit, reduction="none")
        )

    def test_windows_follow_metric3d(self) -> None:
        """Window sides: sizes in [floor(H/8), floor(H/2)), starts in [0, H - floor(H/8)) (HDSNRandomLoss)."""
        from depthloss.functional.groups import random_window_members

        valid = torch.ones(1, 64 * 48, dtype=torch.bool)
        u = torch.rand((1, 400, 4), generator=gen(1), dtype=torch.float64)
        members = random_window_members(valid, 64, 48, u).reshape(400, 64, 48)
        rows = members.any(dim=2)
        heights = rows.sum(dim=1)
        tops = rows.float().argmax(dim=1)
        assert int(tops.min()) == 0 and int(tops.max()) < 64 - 8
        clipped = tops + heights == 64
        assert int(heights[~clipped].min()) >= 8 and int(heights.max()) < 32
        assert members.any(dim=(1, 2)).all()

    def test_ranges_follow_metric3d(self) -> None:
        """Ranges start in the first 75 % of the valid span and cover at least 10 % of it."""
        from depthloss.functional.groups import random_range_members

        target = torch.linspace(2.0, 12.0, 1001, dtype=torch.float64).reshape(1, -1)
        valid = torch.ones_like(target, dtype=torch.bool)
        u = torch.rand((1, 300, 2), generator=gen(2), dtype=torch.float64)
        members = random_range_members(target, valid, valid.sum(-1), u, "range")[0]
        inside = torch.where(members, target, torch.nan)
        lo, hi = inside.nan_to_num(torch.inf).amin(1), inside.nan_to_num(-torch.inf).amax(1)
        assert float(lo.min()) >= 2.0 and float(lo.max()) <= 2.0 + 7.5 + 1e-9
        assert float((hi - lo).min()) >= 1.0 - 0.011
        assert not members[:, -1].any()  # the range end is open and below the farthest depth

    def test_pixel_mean_is_metric3d_pooling(self) -> None:
        """Metric3D: Σ over the batch's (context, pixel) pairs / their count, per family."""
        pred_d, target_d, valid = depth_case((3, 1, 8, 8), density=0.6, seed=6)
        s = samples_for(pred_d, 4)
        got = DF.hdn_random(pred_d, target_d, valid, "spatial", samples=s, reduction="pixel-mean")
        total, count = 0.0, 0
        for b in range(3):
            contexts = R._hdn_random_contexts(target_d[b], valid[b], s[b], "spatial", "range", (0.125, 0.5))
            for ctx in contexts + [valid[b]]:
                part, n = R._hdn_context_sum(pred_d[b], target_d[b], ctx, 1e-6, valid[b])
                total, count = total + part, count + n
        assert float(got) == pytest.approx(total / count, rel=1e-10)

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        seed=st.integers(0, 10_000),
        a=st.floats(0.05, 20.0),
        b=st.floats(-5.0, 5.0),
        grouping=st.sampled_from(["depth", "spatial", "both"]),
        bins=st.sampled_from(["quantile", "range"]),
    )
    def test_affine_invariance(self, seed: int, a: float, b: float, grouping: str, bins: str) -> None:
        pred_d, target_d, valid = depth_case((2, 1, 9, 8), density=0.7, seed=seed)
        s = samples_for(pred_d, 4, seed)
        base = DF.hdn_random(pred_d, target_d, valid, grouping, bins=bins, samples=s, reduction="none")
        assume(bool((base > 1e-3).all()))
        moved = DF.hdn_random(a * pred_d + b, target_d, valid, grouping, bins=bins, samples=s, reduction="none")
        torch.testing.assert_close(moved, base, rtol=1e-7, atol=1e-9)

    def test_compile_fullgraph(self) -> None:
        """Without a generator the draw traces (global RNG); with pre-drawn samples values match eager."""
        torch._dynamo.reset()
        fn = torch.compile(DF.hdn_random, fullgraph=True, backend="eager", dynamic=True)
        for b in (2, 3):
            p = torch.rand(b, 1, 8, 9, generator=gen(b)) + 0.5
            t = torch.rand(b, 1, 8, 9, generator=gen(b + 9)) + 0.5
            s = samples_for(p, 4)
            torch.testing.assert_close(fn(p, t, t > 0.7, samples=s), DF.hdn_random(p, t, t > 0.7, samples=s))
            assert torch.isfinite(fn(p, t, t > 0.7))
        module = torch.compile(build(NAME, "depth"), fullgraph=True, backend="eager")
        assert torch.isfinite(module(p, t))
        torch._dynamo.reset()
