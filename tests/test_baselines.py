"""The benchmark baselines compute what their notes claim, against depthloss.

``benchmarks/baselines.py`` holds the straightforward implementations depthloss is timed
against. These tests prove each timed pair does the same work: with matching settings the
baseline and depthloss give the same value and the same gradient (float64), and where they
cannot (bilinear vs area pooling, batch-pooled vs per-image means, MiDaS's 2M) the test
uses the settings or inputs under which the documented relation is exact.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Tuple

import pytest
import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import baselines as BL
import depthloss
import depthloss.functional as DF

DT = torch.float64
B, H, W = 3, 32, 48  # H and W divisible by 2**3: pyramid sizes agree (h // 8 == ceil(h / 8))


def inverse_pair(b: int = B, h: int = H, w: int = W, near: bool = False) -> Tuple[Tensor, Tensor]:
    """Smooth-ish positive inverse depths: target in metres [0.5, 50] (or [0.3, 5] with ``near``)."""
    lo, hi = (0.3, 5.0) if near else (0.5, 50.0)
    coarse = torch.rand(b, 1, h // 8, w // 8, dtype=DT)
    smooth = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    depth = lo + (hi - lo) * smooth
    depth = depth * (1.0 + 0.05 * torch.rand(b, 1, h, w, dtype=DT))
    target = 1.0 / depth
    noise = (1.0 + 0.3 * torch.randn(b, 1, h, w, dtype=DT)).clamp(min=0.2)
    pred = target * noise + 0.01 * torch.rand(b, 1, h, w, dtype=DT)
    return pred, target


def random_mask(fraction: float, b: int = B, h: int = H, w: int = W, same: bool = False) -> Tensor:
    """A random mask; ``same`` repeats one image's mask so every image has the same valid counts."""
    if same:
        return (torch.rand(1, 1, h, w) < fraction).expand(b, 1, h, w).clone()
    return torch.rand(b, 1, h, w) < fraction


def value_and_grad(fn: Callable[..., Tensor], pred: Tensor, *args) -> Tuple[Tensor, Tensor]:
    x = pred.detach().clone().requires_grad_(True)
    loss = fn(x, *args)
    (grad,) = torch.autograd.grad(loss, x)
    return loss.detach(), grad


def assert_same(a: Tuple[Tensor, Tensor], b: Tuple[Tensor, Tensor], rtol: float = 1e-10) -> None:
    """Values and gradients agree (gradient tolerance relative to its largest entry)."""
    torch.testing.assert_close(a[0], b[0].to(a[0].dtype), rtol=rtol, atol=0.0)
    scale = float(b[1].abs().max())
    torch.testing.assert_close(a[1], b[1], rtol=rtol, atol=rtol * scale)


# ---------------------------------------------------------------------------------------
# 1. scale-adaptive
# ---------------------------------------------------------------------------------------
# depthloss floors the metric term's unit at 5% of the target median (scale_floor); the seed
# has no floor, so the equality checks turn it off.


@pytest.mark.parametrize(("progress", "use_inv_depth"), [(0.0, False), (0.3, True), (1.0, False)])
def test_scale_adaptive_dense_matches_depthloss(progress: float, use_inv_depth: bool) -> None:
    # Dense targets: equal valid counts per image, so the seed's batch-pooled means equal
    # depthloss's mean of per-image means; area pooling matches depthloss's prediction pyramid.
    pred, target = inverse_pair()
    mask = torch.ones_like(pred, dtype=torch.bool)
    base = BL.SeedScaleAdaptiveLoss(use_inv_depth=use_inv_depth, pred_downsample="area", gt_downsample="nearest")
    # depthloss also clamps inverse depth to [1/max_depth, 1/min_depth]; the seed uses it as is
    no_clamp = {"min_depth": None, "max_depth": None} if use_inv_depth else {}
    ours = depthloss.ScaleAdaptiveLoss(
        input_space="inverse", use_inv_depth=use_inv_depth, gt_downsample="nearest", scale_floor=0.0, **no_clamp
    )
    assert_same(value_and_grad(base, pred, target, mask, progress), value_and_grad(ours, pred, target, mask, progress))


def block_mask(fraction: float, b: int = B, h: int = H, w: int = W, same: bool = False, block: int = 8) -> Tensor:
    """A sparse mask constant on ``block x block`` tiles: every pyramid block (4 levels) is all valid or all invalid."""
    tiles = random_mask(fraction, b, h // block, w // block, same=same)
    return tiles.repeat_interleave(block, dim=-2).repeat_interleave(block, dim=-1)


@pytest.mark.parametrize("gt_downsample", ["nearest", "mean"])
def test_scale_adaptive_sparse_same_mask_matches_depthloss(gt_downsample: str) -> None:
    # Sparse targets, the same mask in every image (equal counts at every level), constant on
    # 8x8 tiles: depthloss's coarse prediction (the mean of each block's *valid* pixels) is then
    # the seed's dense area pooling, and both GT pooling modes match depthloss's.
    pred, target = inverse_pair()
    mask = block_mask(0.6, same=True)
    base = BL.SeedScaleAdaptiveLoss(pred_downsample="area", gt_downsample=gt_downsample)
    ours = depthloss.ScaleAdaptiveLoss(input_space="inverse", gt_downsample=gt_downsample, scale_floor=0.0)
    assert_same(value_and_grad(base, pred, target, mask, 0.4), value_and_grad(ours, pred, target, mask, 0.4))


def test_scale_adaptive_single_image_any_tiled_mask() -> None:
    # One image: batch pooling and per-image means coincide for any (tile-constant) mask.
    pred, target = inverse_pair(b=1)
    mask = block_mask(0.5, b=1)
    base = BL.SeedScaleAdaptiveLoss(pred_downsample="area")
    ours = depthloss.ScaleAdaptiveLoss(input_space="inverse", gt_downsample="nearest", scale_floor=0.0)
    assert_same(value_and_grad(base, pred, target, mask, 0.7), value_and_grad(ours, pred, target, mask, 0.7))


def test_scale_adaptive_pixel_sparse_mask_is_the_documented_difference() -> None:
    # With a pixel-sparse mask the seed's dense pooling mixes the predictions of invalid pixels
    # into the coarse levels (gradient reaches them); depthloss pools the valid ones only
    # (issue 12 item 5): the values differ and only depthloss gives invalid pixels zero gradient.
    pred, target = inverse_pair(b=1)
    mask = random_mask(0.5, b=1)
    base = BL.SeedScaleAdaptiveLoss(pred_downsample="area")
    ours = depthloss.ScaleAdaptiveLoss(input_space="inverse", gt_downsample="nearest", scale_floor=0.0)
    (v_base, g_base), (v_ours, g_ours) = (
        value_and_grad(base, pred, target, mask, 0.7),
        value_and_grad(ours, pred, target, mask, 0.7),
    )
    assert abs(float(v_base) - float(v_ours)) > 1e-6 * abs(float(v_ours))
    assert float(g_base[~mask].abs().max()) > 0.0
    assert torch.equal(g_ours[~mask], torch.zeros_like(g_ours[~mask]))
    # one level (no pyramid): the same loss
    base1 = BL.SeedScaleAdaptiveLoss(pred_downsample="area", num_scales=1)
    ours1 = depthloss.ScaleAdaptiveLoss(input_space="inverse", num_scales=1, gt_downsample="nearest", scale_floor=0.0)
    assert_same(value_and_grad(base1, pred, target, mask, 0.7), value_and_grad(ours1, pred, target, mask, 0.7))


def test_scale_adaptive_bilinear_is_area_at_factor_two() -> None:
    # The seed's bilinear pyramid equals area pooling at level 1, so with two levels the
    # unmodified seed baseline (the one BASELINES times) computes depthloss's value ...
    pred, target = inverse_pair()
    mask = torch.ones_like(pred, dtype=torch.bool)
    base = BL.SeedScaleAdaptiveLoss(num_scales=2)
    ours = depthloss.ScaleAdaptiveLoss(input_space="inverse", num_scales=2, gt_downsample="nearest", scale_floor=0.0)
    assert_same(value_and_grad(base, pred, target, mask, 0.5), value_and_grad(ours, pred, target, mask, 0.5))
    # ... and from level 2 on bilinear samples block centres: the documented difference.
    four = BL.SeedScaleAdaptiveLoss()(pred, target, mask, 0.5)
    four_area = BL.SeedScaleAdaptiveLoss(pred_downsample="area")(pred, target, mask, 0.5)
    assert not torch.allclose(four, four_area, rtol=1e-9, atol=0.0)


def test_scale_adaptive_report_residual_is_alpha_one() -> None:
    # alpha_blend=False is the report's normalized-only residual: depthloss with alpha fixed at 1.
    pred, target = inverse_pair()
    mask = torch.ones_like(pred, dtype=torch.bool)
    base = BL.SeedScaleAdaptiveLoss(pred_downsample="area", alpha_blend=False)
    ours = depthloss.ScaleAdaptiveLoss(
        input_space="inverse", gt_downsample="nearest", alpha_start=1.0, alpha_end=1.0, scale_floor=0.0
    )
    assert_same(value_and_grad(base, pred, target, mask, 0.6), value_and_grad(ours, pred, target, mask, 0.6))


def test_scale_adaptive_empty_mask_and_metrics() -> None:
    pred, target = inverse_pair()
    base = BL.SeedScaleAdaptiveLoss()
    assert float(base(pred, target, torch.zeros_like(pred, dtype=torch.bool)).detach()) == 0.0
    base(pred, target, torch.ones_like(pred, dtype=torch.bool), 0.25)
    assert float(base.metrics["alpha_t"]) == 0.75
    assert {f"scale{s}_{k}" for s in range(4) for k in ("loss", "l1", "grad")} <= set(base.metrics)


# ---------------------------------------------------------------------------------------
# 2. near-field SSI-SILog
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("ssi_weighting", ["weighted-mean", "scaled-diff"])
def test_near_field_matches_depthloss_batch_scope(ssi_weighting: str) -> None:
    # Both pool the batch; random per-image masks are fine. Tolerance: the seed's +1e-6 in
    # the weights' depth and +1e-8 in the SILog normalizer.
    pred, target = inverse_pair(near=True)
    mask = random_mask(0.7)
    base = BL.SeedNearFieldSSISilog(ssi_weighting=ssi_weighting)
    kwargs = {"ssi_weighting": ssi_weighting}
    if ssi_weighting == "scaled-diff":
        kwargs["ssi_weight_norm"] = "batch"
    ours = depthloss.NearFieldSSISilog(input_space="inverse", scope="batch", **kwargs)
    weights = base.get_distance_weight_mask(target, mask)
    assert float(weights[mask].max()) > 4.0 and float(weights[mask].min()) < 1.1  # both regimes present
    assert_same(value_and_grad(base, pred, target, mask), value_and_grad(ours, pred, target, mask), rtol=1e-5)


def test_near_field_weights_sign_and_hook() -> None:
    base = BL.SeedNearFieldSSISilog()
    inv = 1.0 / torch.tensor([[[[0.2, 1.0, 5.0]]]], dtype=DT)
    w = base.get_distance_weight_mask(inv, inv > 0)
    assert float(w[..., 0]) > 4.9 and abs(float(w[..., 1]) - 3.0) < 1e-4 and float(w[..., 2]) < 1.01
    # the seed's hook on the scalar terms clamps nothing: gradients are unchanged
    pred, target = inverse_pair(near=True)
    mask = random_mask(0.7)
    no_hook = BL.SeedNearFieldSSISilog(gradient_hook=False)
    assert_same(value_and_grad(base, pred, target, mask), value_and_grad(no_hook, pred, target, mask))
    assert float(base(pred, target, torch.zeros_like(mask))) == 0.0


# ---------------------------------------------------------------------------------------
# 3. SILog
# ---------------------------------------------------------------------------------------


def test_silog_matches_depthloss_batch_scope() -> None:
    pred_inv, target_inv = inverse_pair()
    pred, target = 1.0 / pred_inv, 1.0 / target_inv
    mask = random_mask(0.4)
    ours = depthloss.SILogLoss(eps=0.0, scope="batch", input_space="depth")
    assert_same(value_and_grad(BL.bool_index_silog, pred, target, mask), value_and_grad(ours, pred, target, mask))
    # depthloss's default eps=1e-8 moves the value by ~eps / (2 * radicand) only
    default = depthloss.SILogLoss(scope="batch", input_space="depth")(pred, target, mask)
    torch.testing.assert_close(BL.bool_index_silog(pred, target, mask), default, rtol=1e-6, atol=0.0)


# ---------------------------------------------------------------------------------------
# 4. Metric3D MAD-L1
# ---------------------------------------------------------------------------------------


def test_loop_mad_l1_matches_ssi_mae_equal_counts() -> None:
    pred, target = inverse_pair()
    mask = random_mask(0.5, same=True)
    # Metric3D divides by MAD + eps, depthloss by max(MAD, eps): with a negligible eps the
    # two are the same function ...
    base = lambda p, t, m: BL.loop_mad_l1(p, t, m, eps=1e-15)  # noqa: E731
    ours = lambda p, t, m: DF.ssi_mae(p, t, m, trim=0.0, eps=1e-15)  # noqa: E731
    assert_same(value_and_grad(base, pred, target, mask), value_and_grad(ours, pred, target, mask), rtol=1e-10)
    # ... and with the default eps = 1e-6 they differ by about eps / MAD (inverse depths
    # here have MADs ~ 0.01-0.03, hence ~1e-4)
    mads = torch.stack([(v - v.median()).abs().mean() for v in (target[0][mask[0]], pred[0][mask[0]])])
    default = BL.loop_mad_l1(pred, target, mask), DF.ssi_mae(pred, target, mask, trim=0.0)
    torch.testing.assert_close(default[0], default[1], rtol=3e-6 / float(mads.min()), atol=0.0)


def test_loop_mad_l1_is_count_weighted_ssi_mae() -> None:
    # Different valid counts per image: Metric3D pools all valid pixels of the batch, i.e.
    # weights depthloss's per-image values by the images' counts.
    pred, target = inverse_pair()
    mask = random_mask(0.5)
    mask[0, :, : H // 2] = False
    counts = mask.flatten(1).sum(1).to(DT)

    def weighted(p: Tensor, t: Tensor, m: Tensor) -> Tensor:
        per_image = DF.ssi_mae(p, t, m, trim=0.0, eps=1e-15, reduction="none")
        return (per_image * counts).sum() / counts.sum()

    base = lambda p, t, m: BL.loop_mad_l1(p, t, m, eps=1e-15)  # noqa: E731
    assert_same(value_and_grad(base, pred, target, mask), value_and_grad(weighted, pred, target, mask), rtol=1e-10)


# ---------------------------------------------------------------------------------------
# 5. MiDaS
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dense", [True, False])
def test_midas_batch_based_is_half_depthloss_alpha_one(dense: bool) -> None:
    pred, target = inverse_pair()
    mask = torch.ones_like(pred, dtype=torch.bool) if dense else random_mask(0.7, same=True)
    base = BL.MidasDenseLoss()  # alpha 0.5, 4 scales, batch-based: the published defaults
    ours = depthloss.MiDaSLoss(input_space="inverse", alpha=1.0)
    half = lambda p, t, m: 0.5 * ours(p, t, m)  # noqa: E731
    assert_same(value_and_grad(base, pred, target, mask), value_and_grad(half, pred, target, mask), rtol=1e-9)


def test_midas_image_based_any_mask() -> None:
    pred, target = inverse_pair()
    mask = random_mask(0.6)
    base = BL.MidasDenseLoss(reduction="image-based")
    ours = depthloss.MiDaSLoss(input_space="inverse", alpha=1.0)
    half = lambda p, t, m: 0.5 * ours(p, t, m)  # noqa: E731
    assert_same(value_and_grad(base, pred, target, mask), value_and_grad(half, pred, target, mask), rtol=1e-9)
    # and alpha enters the same way: MiDaS(alpha) = data / 2 + alpha * grad
    data = depthloss.MiDaSLoss(input_space="inverse", alpha=0.0)(pred, target, mask)
    grad = ours(pred, target, mask) - data
    midas_03 = BL.MidasDenseLoss(alpha=0.3, reduction="image-based")(pred, target, mask)
    torch.testing.assert_close(midas_03, 0.5 * data + 0.3 * grad, rtol=1e-9, atol=0.0)


# ---------------------------------------------------------------------------------------
# 6. the floor
# ---------------------------------------------------------------------------------------


def test_masked_l1_floor_matches_depthloss() -> None:
    pred, target = inverse_pair()
    mask = random_mask(0.3)
    ours = lambda p, t, m: DF.l1(p, t, m, scope="batch")  # noqa: E731
    assert_same(value_and_grad(BL.masked_l1_floor, pred, target, mask), value_and_grad(ours, pred, target, mask))


# ---------------------------------------------------------------------------------------
# the table the benchmark runner uses
# ---------------------------------------------------------------------------------------

# BASELINES rows: baseline == ratio * depthloss on dense inputs, to the float64 relative
# tolerance given (the eps placements in the notes); None: documented to differ (see the
# row's notes and the scale-adaptive tests above).
EXPECTED_RATIO = {
    "scale-adaptive": None,
    "near-field-ssi-silog": (1.0, 1e-5),
    "silog": (1.0, 1e-10),
    "ssi_mae": (1.0, 1e-3),
    "midas": (0.5, 1e-9),
    "l1": (1.0, 1e-10),
}


def test_baselines_table() -> None:
    assert set(BL.BASELINES) == set(EXPECTED_RATIO)
    registered = set(depthloss.list_losses())
    for name, row in BL.BASELINES.items():
        assert isinstance(row, tuple) and len(row) == 4
        baseline_factory, depthloss_factory, input_space, notes = row
        assert input_space in ("inverse", "depth") and notes
        assert name in registered or name in ("ssi_mae",)  # ssi_mae: the functional kernel


@pytest.mark.parametrize("name", sorted(EXPECTED_RATIO))
def test_baselines_rows_compute_the_documented_value(name: str) -> None:
    row = BL.BASELINES[name]
    pred, target = inverse_pair(near=name == "near-field-ssi-silog")
    if row.input_space == "depth":
        pred, target = 1.0 / pred, 1.0 / target
    mask = torch.ones_like(pred, dtype=torch.bool)  # dense: equal valid counts everywhere
    expected = EXPECTED_RATIO[name]
    for dtype in (torch.float32, DT) if expected is not None else (torch.float32,):
        p, t = pred.to(dtype), target.to(dtype)
        base = row.baseline()(p, t, mask, 0.5)
        ours = row.depthloss()(p, t, mask, 0.5)
        assert torch.isfinite(base) and torch.isfinite(ours)
        if expected is not None:
            ratio, rtol = expected
            rtol = rtol if dtype == DT else max(rtol, 2e-4)
            torch.testing.assert_close(base, ratio * ours, rtol=rtol, atol=0.0)
