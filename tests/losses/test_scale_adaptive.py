"""``scale-adaptive``: MAD-normalized / metric residual blend over a sparse-aware pyramid (:func:`depthloss.functional.scale_adaptive`).

``R = α(p̂ - ĝ) + (1 - α)(p - g)/s_g`` per level and image; the prediction's coarse levels are
the mean of the *valid* pixels of each block, so invalid pixels get exactly zero gradient and
may hold NaN (issue 12 item 5).
"""

from __future__ import annotations

import math
from typing import Tuple

import pytest
import torch

import depthloss.functional as DF
import reference as R
from helpers import MASKS, accel_modes, build, depth_case, gen, loss_inputs, to_input_space
from loss_testing import (
    PROGRESSES,
    check_bad_hyperparameters,
    check_bad_inputs,
    check_gradcheck,
    check_gradient,
    check_metrics,
    check_module_equals_functional,
    check_smoke,
    check_values,
    depth_of,
    inverse_of,
)

NAME = "scale-adaptive"
ACCEL = accel_modes(NAME)


def level_metrics(num_scales: int) -> set:
    keys = {"alpha_t", "num_valid_pixels", "loss"}
    for level in range(num_scales):
        keys |= {f"level{level}_{k}" for k in ("loss", "l1", "grad", "valid_frac", "stencil_frac", "weight")}
    return keys


class TestScaleAdaptive:
    def test_smoke(self) -> None:
        check_smoke(NAME, num_scales=3)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME, num_scales=2)
        check_bad_hyperparameters(
            NAME,
            [({"lambda_sg": 2}, ValueError, "lambda_sg"), ({"num_scales": 0}, ValueError, "num_scales"),
             ({"num_scales": 2.0}, TypeError, "num_scales"), ({"alpha_schedule": "bogus"}, ValueError, "alpha_schedule"),
             ({"scale_schedule": "exp"}, ValueError, "scale_schedule"), ({"alpha_start": 1.5}, ValueError, "alpha_start"),
             ({"alpha_end": -0.5}, ValueError, "alpha_end"), ({"gt_downsample": "max"}, ValueError, "gt_downsample"),
             ({"eps": 0.0}, ValueError, "eps"), ({"scale_floor": -1.0}, ValueError, "scale_floor")],
            functional=DF.scale_adaptive,
        )  # fmt: skip
        with pytest.raises(TypeError, match="use_inv_depth"):
            build(NAME, use_inv_depth="yes")
        for bad, exc in (
            ("half", TypeError),
            (True, TypeError),
            ([0.5], TypeError),
            (None, TypeError),
            (float("nan"), ValueError),
        ):
            with pytest.raises(exc, match="progress"):
                DF.scale_adaptive(torch.ones(1, 4, 4), torch.ones(1, 4, 4), progress=bad)

    @pytest.mark.parametrize("accel", ACCEL)
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype, accel) -> None:
        variants = [{"progress": p} for p in PROGRESSES] + [
            {"progress": 0.6, "gt_downsample": "nearest", "num_scales": 3, "lambda_sg": 0.2},
            {
                "progress": torch.tensor(0.3, dtype=dtype),
                "gt_downsample": "min",
                "alpha_schedule": "cosine",
                "scale_schedule": "constant",
            },
            {"progress": 0.8, "scale_floor": 1.0, "alpha_start": 0.7, "alpha_end": 0.2, "num_scales": 5},
        ]
        check_values(
            DF.scale_adaptive,
            R.scale_adaptive,
            variants,
            mask_kind,
            dtype,
            accel=accel,
            tolerance=lambda kw, e: {"atol": 1e-5} if dtype == torch.float32 else {},
        )

    @pytest.mark.parametrize("accel", ACCEL)
    def test_gradient_oracle(self, accel) -> None:
        check_gradient(
            DF.scale_adaptive, R.scale_adaptive, {"progress": 0.4, "num_scales": 2}, shape=(2, 1, 6, 7), accel=accel
        )
        check_gradient(
            DF.scale_adaptive, R.scale_adaptive, {"progress": 0.9, "num_scales": 3, "gt_downsample": "min", "scope": "batch"},
            mask_kind="sparse_rows", shape=(2, 1, 8, 8), accel=accel,
        )  # fmt: skip
        check_gradient(
            DF.scale_adaptive,
            R.scale_adaptive,
            {"progress": 0.5, "num_scales": 2},
            shape=(2, 1, 6, 6),
            wrt="target",
            accel=accel,
        )

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME, num_scales=2)

    def test_gradcheck_floored_unit(self) -> None:
        """The metric unit floored by the target's median (scale_floor · |med g| > MAD): its own path."""
        pred = (0.5 + 1.5 * torch.rand(2, 1, 5, 6, generator=gen(1), dtype=torch.float64)).requires_grad_(True)
        target = (0.5 + 1.5 * torch.rand(2, 1, 5, 6, generator=gen(2), dtype=torch.float64)).requires_grad_(True)
        mask = torch.rand(2, 1, 5, 6, generator=gen(3)) > 0.2
        assert torch.autograd.gradcheck(
            lambda p, t: DF.scale_adaptive(p, t, mask, 0.6, reduction="none", scale_floor=1.0, num_scales=2),
            (pred, target), eps=1e-6, atol=1e-6, rtol=1e-4,
        )  # fmt: skip

    def test_module_equals_functional(self) -> None:
        kwargs = {"lambda_sg": 0.3, "num_scales": 3, "gt_downsample": "min", "alpha_schedule": "cosine"}
        check_module_equals_functional(
            NAME,
            dict(kwargs, min_depth=0.8, max_depth=4.0),
            lambda p, t, m, s, pr: DF.scale_adaptive(
                depth_of(p, s, 0.8, 4.0), depth_of(t, s, 0.8, 4.0), m, pr, **kwargs, reduction="none"
            ),
        )
        # use_inv_depth: on inverse depth (the default clamp [0.1, 100] m does not bind here)
        check_module_equals_functional(
            NAME,
            {"use_inv_depth": True},
            lambda p, t, m, s, pr: DF.scale_adaptive(inverse_of(p, s), inverse_of(t, s), m, pr, reduction="none"),
        )

    def test_metrics(self) -> None:
        check_metrics(NAME, level_metrics(4))

    def test_invalid_pixels_get_exactly_zero_gradient(self) -> None:
        """Issue 12 item 5: with t[:, :, :2] = 0 the gradient reached pred there (max |grad| 0.11)."""
        g = gen(5)
        target = torch.rand(2, 1, 16, 16, generator=g) * 10 + 1
        target[:, :, :2] = 0.0
        for space in ("depth", "inverse"):
            pred = to_input_space(torch.rand(2, 1, 16, 16, generator=g) * 10 + 1, space).requires_grad_(True)
            build(NAME, space)(pred, to_input_space(target, space), progress=0.3).backward()
            assert torch.equal(pred.grad[:, :, :2], torch.zeros_like(pred.grad[:, :, :2])), float(
                pred.grad[:, :, :2].abs().max()
            )
            assert (pred.grad[:, :, 2:] != 0).any()

    @pytest.mark.parametrize("junk", [float("nan"), float("inf"), -1.0, 0.0])
    def test_junk_prediction_at_invalid_pixels(self, junk: float) -> None:
        """Issue 12 item 5: a NaN prediction only where the target is invalid made the loss NaN in
        depth space. Invalid pixels may hold anything: the loss and gradient are the clean ones."""
        pred_d, target_d, valid = depth_case((2, 1, 16, 16), density=0.3, seed=6)
        for space in ("depth", "inverse"):
            pred, target = to_input_space(pred_d, space).float(), to_input_space(target_d, space).float()
            module = build(NAME, space)
            clean = pred.clone().requires_grad_(True)
            dirty = torch.where(valid, pred, junk).requires_grad_(True)
            a, b = module(clean, target, progress=0.4), module(dirty, target, progress=0.4)
            a.backward()
            b.backward()
            assert torch.isfinite(b)
            torch.testing.assert_close(b, a, rtol=0, atol=0)
            torch.testing.assert_close(dirty.grad, clean.grad, rtol=0, atol=0)
            assert torch.equal(dirty.grad[~valid], torch.zeros_like(dirty.grad[~valid]))

    def test_docstring_states_the_invalid_pixel_guarantee(self) -> None:
        doc = " ".join((DF.scale_adaptive.__doc__ or "").split())
        assert "exactly zero gradient" in doc and "NaN" in doc

    @pytest.mark.parametrize(
        "kind,start,end,progress,expected",
        [
            ("linear", 1.0, 0.0, 0.25, 0.75),
            ("linear", 1.0, 0.0, 1.0, 0.0),
            ("linear", 0.8, 0.2, 0.5, 0.5),
            ("linear", 1.0, 0.0, 1.5, 0.0),  # progress clamped to [0, 1]
            ("cosine", 1.0, 0.0, 0.25, 0.5 * (1.0 + math.cos(math.pi * 0.25))),
            ("step", 1.0, 0.0, 0.4, 1.0),
            ("step", 1.0, 0.0, 0.6, 0.0),
            ("constant", 0.3, 0.9, 0.8, 0.3),
        ],
    )
    def test_alpha_follows_its_schedule(
        self, kind: str, start: float, end: float, progress: float, expected: float
    ) -> None:
        inputs = loss_inputs(NAME, shape=(1, 1, 8, 8), progress=None)
        module = build(NAME, alpha_schedule=kind, alpha_start=start, alpha_end=end, num_scales=2)
        for how in ("float", "tensor", "attribute"):
            if how == "float":
                module(inputs.pred, inputs.target, progress=progress)
            elif how == "tensor":
                module(inputs.pred, inputs.target, progress=torch.tensor(progress))
            else:
                module.progress = progress
                module(inputs.pred, inputs.target)
            assert float(module.metrics["alpha_t"]) == pytest.approx(expected, abs=1e-6), how

    def test_level_weights_and_counts(self) -> None:
        inputs = loss_inputs(NAME, shape=(2, 1, 16, 16), density=0.4, progress=None)
        module = build(NAME, num_scales=3)
        # by hand: 2^l / 7 at progress 0, 2^-l normalized at 1, their average at 0.5
        for progress, expected in (
            (0.0, [1 / 7, 2 / 7, 4 / 7]),
            (1.0, [4 / 7, 2 / 7, 1 / 7]),
            (0.5, [5 / 14, 4 / 14, 5 / 14]),
        ):
            module(inputs.pred, inputs.target, progress=progress)
            assert [float(module.metrics[f"level{lv}_weight"]) for lv in range(3)] == pytest.approx(expected, abs=1e-6)
        assert float(module.metrics["num_valid_pixels"]) == float(inputs.valid.sum())
        assert float(module.metrics["level0_valid_frac"]) == pytest.approx(float(inputs.valid.float().mean()), abs=1e-6)
        uniform = build(NAME, num_scales=4, scale_schedule="constant")
        uniform(inputs.pred, inputs.target, progress=0.3)
        assert [float(uniform.metrics[f"level{lv}_weight"]) for lv in range(4)] == pytest.approx([0.25] * 4)

    def test_gt_downsample_modes_differ(self) -> None:
        inputs = loss_inputs(NAME, "depth", shape=(2, 1, 16, 16), density=0.3, progress=0.8)
        values = {
            float(inputs.call(build(NAME, "depth", gt_downsample=mode, num_scales=3)))
            for mode in ("nearest", "min", "mean")
        }
        assert len(values) == 3

    def test_lidar_rows_get_gradient_support_at_coarse_levels(self) -> None:
        g = gen(33)
        depth = 2.0 + 30.0 * torch.rand(2, 1, 32, 32, generator=g)
        lidar = torch.zeros_like(depth)
        lidar[:, :, ::4, :] = depth[:, :, ::4, :]  # every 4th row has returns
        pred = depth * (1.0 + 0.1 * torch.randn(depth.shape, generator=g))
        module = build(NAME, "depth", num_scales=4)
        module(pred, lidar, progress=0.5)
        m = module.metrics
        # by hand: levels 0 and 1 have no full 3x3 window; level 2 is 8x8 and dense (6x6 interior), level 3 4x4 (2x2)
        assert float(m["level0_stencil_frac"]) == 0.0 and float(m["level1_stencil_frac"]) == 0.0
        assert float(m["level2_stencil_frac"]) == pytest.approx(36 / 64)
        assert float(m["level3_stencil_frac"]) == pytest.approx(4 / 16)
        assert [float(m[f"level{lv}_valid_frac"]) for lv in range(3)] == pytest.approx([0.25, 0.5, 1.0])
        assert float(m["level0_grad"]) == 0.0 and float(m["level2_grad"]) > 0.0

    def test_alpha_one_is_affine_invariant_and_alpha_zero_is_not(self) -> None:
        pred, target, _ = depth_case((2, 1, 16, 16), density=0.5, seed=18, low=2.0, high=8.0)
        pred, target = pred.float(), target.float()
        relative = build(NAME, "depth", alpha_start=1.0, alpha_end=1.0)
        metric = build(NAME, "depth", alpha_start=0.0, alpha_end=0.0)
        base, base_metric = relative(pred, target, progress=0.7), metric(pred, target, progress=0.7)
        assert base > 1e-2
        for a, b in [(3.0, 1.0), (0.5, 0.3), (1.7, -0.5)]:  # stays inside [min_depth, max_depth] = [0.1, 100]
            torch.testing.assert_close(relative(a * pred + b, target, progress=0.7), base, rtol=1e-4, atol=1e-5)
            assert (metric(a * pred + b, target, progress=0.7) - base_metric).abs() > 0.05 * base_metric

    @pytest.mark.parametrize("shape", [(2, 1, 5, 7), (1, 1, 1, 1), (2, 3, 2)])
    def test_more_levels_than_the_image_allows(self, shape: Tuple[int, ...]) -> None:
        for num_scales in (4, 8, 31):
            inputs = loss_inputs(NAME, "depth", shape=shape, density=1.0, dtype=torch.float64, progress=0.5)
            x = inputs.leaf()
            loss = inputs.call(build(NAME, "depth", num_scales=num_scales), x)
            loss.backward()
            assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
            expected = R.scale_adaptive(
                depth_of(inputs.pred, "depth", 0.1, 100.0), inputs.target, None, 0.5, num_scales=num_scales
            )
            torch.testing.assert_close(loss.detach(), expected)

    def test_num_scales_beyond_31(self) -> None:
        inputs = loss_inputs(NAME, "depth", shape=(2, 1, 16, 16), progress=0.5)
        try:
            loss = inputs.call(build(NAME, "depth", num_scales=64))
        except ValueError as err:  # validating num_scales at construction would do too
            assert "num_scales" in str(err)
            return
        assert torch.isfinite(loss)
