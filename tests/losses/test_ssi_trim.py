"""``ssi-trim``: MiDaS's trimmed MAE of median/MAD-normalized maps + gradient matching (:func:`depthloss.functional.ssi_trim`).

Its trims go through the CPU selection acceleration (``kth_smallest``): the oracle comparisons
run with accelerations on and off.
"""

from __future__ import annotations

import pytest
import torch

import depthloss.functional as DF
import reference as R
from helpers import MASKS, accel_mode, accel_modes, build, depth_case, loss_inputs, to_input_space
from loss_testing import (
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

NAME = "ssi-trim"
ACCEL = accel_modes(NAME)

VARIANTS = [
    {},
    {"trim": 0.0, "alpha": 0.7, "scales": 2, "operator": "sobel"},
    {"trim": 0.35, "eps": 1e-3, "scales": 3},
    {"data_scale": 0.5, "trim_denominator": "valid", "trim_rounding": "floor"},
    {"median_over": "all-pixels", "trim": 0.3},
    {"trim_scope": "batch", "trim": 0.25},
]


class TestSSITrim:
    def test_smoke(self) -> None:
        check_smoke(NAME)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME,
            [({"trim": 1.0}, ValueError, "trim"), ({"trim": -0.1}, ValueError, "trim"), ({"scales": 0}, ValueError, "scales"),
             ({"eps": 0.0}, ValueError, "eps"), ({"operator": "x"}, ValueError, "operator"),
             ({"trim_denominator": "all"}, ValueError, "trim_denominator"), ({"trim_scope": "global"}, ValueError, "trim_scope"),
             ({"trim_rounding": "round"}, ValueError, "trim_rounding"), ({"median_over": "any"}, ValueError, "median_over"),
             ({"data_scale": -1.0}, ValueError, "data_scale")],
            functional=DF.ssi_trim,
        )  # fmt: skip

    @pytest.mark.parametrize("accel", ACCEL)
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype, accel) -> None:
        check_values(DF.ssi_trim, R.ssi_trim, VARIANTS, mask_kind, dtype, accel=accel)

    @pytest.mark.parametrize("accel", ACCEL)
    def test_gradient_oracle(self, accel) -> None:
        check_gradient(DF.ssi_trim, R.ssi_trim, {"scales": 2}, shape=(2, 1, 6, 7), accel=accel)
        check_gradient(
            DF.ssi_trim,
            R.ssi_trim,
            {"trim_scope": "batch", "reduction": "pixel-mean", "scales": 2},
            shape=(2, 1, 6, 6),
            wrt="target",
            accel=accel,
        )

    @pytest.mark.parametrize("accel", ACCEL)
    def test_gradcheck(self, accel) -> None:
        with accel_mode(accel):
            check_gradcheck(NAME, scales=2)

    def test_module_equals_functional(self) -> None:
        kwargs = {"trim": 0.3, "alpha": 0.25, "scales": 3, "operator": "diff", "eps": 1e-5, "trim_rounding": "floor"}
        check_module_equals_functional(
            NAME,
            kwargs,
            lambda p, t, m, s, pr: DF.ssi_trim(inverse_of(p, s), inverse_of(t, s), m, **kwargs, reduction="none"),
        )

    def test_metrics(self) -> None:
        check_metrics(NAME, {"data", "grad", "loss"})

    def test_affine_invariance(self) -> None:
        pred_d, target_d, _ = depth_case((2, 1, 16, 16), density=0.6, seed=19)
        pred, target = to_input_space(pred_d, "inverse"), to_input_space(target_d, "inverse")
        module = build(NAME, "inverse", reduction="none")
        base = module(pred, target)
        assert (base > 1e-2).all()
        for a, b in [(3.0, 1.0), (0.5, 0.3), (20.0, -1.0)]:  # a > 0 (the median is not invariant to a flip)
            torch.testing.assert_close(module(a * pred + b, target), base, rtol=1e-8, atol=1e-10)

    def test_trim_drops_the_outliers(self) -> None:
        inputs = loss_inputs(NAME, dtype=torch.float64, density=1.0)
        spoiled = inputs.pred.clone()
        spoiled[:, :, :2, :2] = 50.0  # 4 of 144 pixels per image
        clean = DF.ssi_trim(inputs.pred, inputs.target, trim=0.0)
        assert float(DF.ssi_trim(spoiled, inputs.target, trim=0.0)) > 2 * float(clean)
        assert float(DF.ssi_trim(spoiled, inputs.target, trim=0.2, alpha=0.0)) < float(
            DF.ssi_trim(spoiled, inputs.target, trim=0.0, alpha=0.0)
        )


def _authors_case() -> tuple:
    g = torch.Generator().manual_seed(7)
    pred = torch.rand(3, 9, 11, generator=g, dtype=torch.float64) + 0.2
    target = torch.rand(3, 9, 11, generator=g, dtype=torch.float64) + 0.2
    mask = torch.rand(3, 9, 11, generator=g) < 0.6
    mask[2] = False  # an image without valid pixels: the authors skip it in the normalization
    return pred, target, mask


@pytest.mark.parametrize("accel", ACCEL)
def test_options_reproduce_the_midas_gist(accel) -> None:
    """The MiDaS gist's data term, transcribed (``reference.midas_gist_*``): median over all pixels,
    batch-pooled, divided by 2 Σ M, and (as published) no trim."""
    pred, target, mask = _authors_case()
    want = R.midas_gist_trimmed_mae(R.midas_gist_normalize(pred, mask), R.midas_gist_normalize(target, mask), mask)
    with accel_mode(accel):
        got = DF.ssi_mae(
            pred, target, mask, trim=0.0, data_scale=0.5, trim_denominator="valid",
            median_over="all-pixels", reduction="pixel-mean",
        )  # fmt: skip
    torch.testing.assert_close(got, want)
    assert not torch.allclose(got, DF.ssi_mae(pred, target, mask, trim=0.0))  # the defaults differ


@pytest.mark.parametrize("accel", ACCEL)
def test_options_reproduce_the_batch_level_trim(accel) -> None:
    """Video Depth Anything's trimmed MAE (the gist as intended): one cut over the batch's residuals."""
    pred, target, mask = _authors_case()
    p_hat, g_hat = R.midas_gist_normalize(pred, mask), R.midas_gist_normalize(target, mask)
    want = R.vda_trimmed_mae(p_hat, g_hat, mask, trim=0.2)
    with accel_mode(accel):
        got = DF.ssi_mae(
            pred, target, mask, trim=0.2, data_scale=0.5, trim_denominator="valid", trim_scope="batch",
            trim_rounding="floor", median_over="all-pixels", reduction="pixel-mean",
        )  # fmt: skip
    torch.testing.assert_close(got, want)
