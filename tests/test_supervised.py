"""Tests of :class:`depthloss.SupervisedLoss`, the seeds' multi-scale driver (DESIGN §4).

One prediction or a list at 1, 1/2, 1/4, 1/8 resolution (also odd sizes); the target is
brought to each prediction's size by sparse-aware pooling for ``sparse-`` methods and by
picking a pixel otherwise (checked against block-by-block loops written here); user masks
(one full-resolution mask or one per scale) are combined with ``target > 0``; ``progress``
reaches the wrapped loss; near-field weights are computed once at full resolution and
pooled; empty targets give a zero loss with a zero gradient; ``num_scales`` truncates.
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence, Tuple

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import depthloss
from depthloss import NearFieldSSISilog, ScaleAdaptiveLoss, SupervisedLoss

SIZES_EVEN = [(16, 16), (8, 8), (4, 4), (2, 2)]
SIZES_ODD = [(15, 21), (8, 11), (4, 6), (2, 3)]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sparse_depth(shape: Tuple[int, ...], density: float, seed: int, low: float = 0.5, high: float = 6.0) -> Tensor:
    g = _gen(seed)
    depth = low + (high - low) * torch.rand(shape, generator=g, dtype=torch.float64)
    keep = torch.rand(shape, generator=g) < density
    return torch.where(keep, depth, torch.zeros_like(depth))


def predictions(
    batch: int, sizes: Sequence[Tuple[int, int]], seed: int, dtype: torch.dtype = torch.float64
) -> List[Tensor]:
    g = _gen(seed)
    return [(0.5 + 5.5 * torch.rand(batch, 1, h, w, generator=g, dtype=torch.float64)).to(dtype) for h, w in sizes]


def block_pool(depth: Tensor, valid: Tensor, factor: int, mode: str) -> Tuple[Tensor, Tensor]:
    """Hand-written block pooling of a (B, 1, H, W) map: each output pixel covers one
    ``factor x factor`` block (partial blocks at the border)."""
    b_, _, h_in, w_in = depth.shape
    h, w = math.ceil(h_in / factor), math.ceil(w_in / factor)
    out = torch.zeros(b_, 1, h, w, dtype=depth.dtype)
    ok = torch.zeros(b_, 1, h, w, dtype=torch.bool)
    for b in range(b_):
        for i in range(h):
            for j in range(w):
                block = depth[b, 0, i * factor : (i + 1) * factor, j * factor : (j + 1) * factor]
                m = valid[b, 0, i * factor : (i + 1) * factor, j * factor : (j + 1) * factor]
                if mode == "nearest":
                    if m[0, 0]:
                        out[b, 0, i, j], ok[b, 0, i, j] = block[0, 0], True
                elif m.any():
                    values = block[m]
                    out[b, 0, i, j] = values.mean() if mode == "mean" else values.min()
                    ok[b, 0, i, j] = True
    return out, ok


def hand_l1(pred: Tensor, target: Tensor, valid: Tensor) -> float:
    """Masked mean |p - g| per image, averaged over images with a valid pixel."""
    diff = (pred - target).detach().abs()
    values = [float(diff[b][valid[b]].mean()) for b in range(pred.shape[0]) if valid[b].any()]
    return sum(values) / len(values) if values else 0.0


def hand_multiscale_l1(
    preds: Sequence[Tensor],
    target: Tensor,
    valid: Tensor,
    mode: str,
    masks: Optional[Sequence[Optional[Tensor]]] = None,
) -> List[float]:
    out = []
    for i, pred in enumerate(preds):
        t_i, v_i = block_pool(target, valid, 2**i, mode)
        assert t_i.shape == pred.shape
        if masks is not None and masks[i] is not None:
            v_i = v_i & masks[i]
        out.append(hand_l1(pred, t_i, v_i))
    return out


# ----------------------------------------------------------------------------------------
# one prediction, a list of predictions, target matching
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["l1", "sparse-l1"])
def test_single_prediction(method: str) -> None:
    target = sparse_depth((2, 1, 12, 10), 0.3, seed=1)
    (pred,) = predictions(2, [(12, 10)], seed=2)
    out = SupervisedLoss(method, input_space="depth")(pred, target)
    assert set(out) == {"loss", "metrics"}
    assert set(out["metrics"]) == {"scale0/loss", "loss"}
    expected = hand_l1(pred, target, target > 0)
    assert abs(float(out["loss"]) - expected) < 1e-12
    assert float(out["metrics"]["scale0/loss"]) == pytest.approx(expected, abs=1e-12)
    torch.testing.assert_close(out["metrics"]["loss"], out["loss"])


@pytest.mark.parametrize("sizes", [SIZES_EVEN, SIZES_ODD], ids=["even", "odd"])
def test_sparse_method_pools_valid_returns_only(sizes: List[Tuple[int, int]]) -> None:
    """sparse-l1: a coarse target pixel is the mean of the valid returns in its block."""
    target = sparse_depth((2, 1) + sizes[0], 0.25, seed=3)
    preds = predictions(2, sizes, seed=4)
    sup = SupervisedLoss("sparse-l1", input_space="depth")
    assert sup.sparse and sup.target_downsample == "mean"
    out = sup(preds, target)
    expected = hand_multiscale_l1(preds, target, target > 0, "mean")
    for i, value in enumerate(expected):
        assert float(out["metrics"][f"scale{i}/loss"]) == pytest.approx(value, abs=1e-12), i
    assert float(out["loss"]) == pytest.approx(sum(expected) / 4, abs=1e-12)
    # a plain average pool would mix in the zeros of missing returns: it must differ
    zero_mixing = [
        hand_l1(p, F.avg_pool2d(target, 2**i, ceil_mode=True), block_pool(target, target > 0, 2**i, "mean")[1])
        for i, p in enumerate(preds)
    ]
    assert abs(zero_mixing[1] - expected[1]) > 1e-3


def test_sparse_method_with_min_pooling() -> None:
    target = sparse_depth((2, 1, 16, 16), 0.25, seed=5)
    preds = predictions(2, SIZES_EVEN, seed=6)
    out = SupervisedLoss("sparse-l1", input_space="depth", target_downsample="min")(preds, target)
    expected = hand_multiscale_l1(preds, target, target > 0, "min")
    assert [float(out["metrics"][f"scale{i}/loss"]) for i in range(4)] == pytest.approx(expected, abs=1e-12)


def test_dense_method_takes_the_blocks_pixel() -> None:
    """Dense methods pick a pixel (nearest); for exact multiples it is the block's top-left one."""
    target = sparse_depth((2, 1, 16, 16), 0.5, seed=7)
    preds = predictions(2, SIZES_EVEN, seed=8)
    sup = SupervisedLoss("l1", input_space="depth")
    assert not sup.sparse and sup.target_downsample == "nearest"
    out = sup(preds, target)
    expected = hand_multiscale_l1(preds, target, target > 0, "nearest")
    assert [float(out["metrics"][f"scale{i}/loss"]) for i in range(4)] == pytest.approx(expected, abs=1e-12)
    # the same as F.interpolate(mode="nearest") of the target and its mask at these sizes
    for i, pred in enumerate(preds):
        t_i = F.interpolate(target, size=pred.shape[-2:], mode="nearest")
        assert float(out["metrics"][f"scale{i}/loss"]) == pytest.approx(hand_l1(pred, t_i, t_i > 0), abs=1e-12)


def test_dense_method_odd_sizes_never_mix_values() -> None:
    """Odd sizes (15x21 -> 8x11 -> 4x6 -> 2x3): every coarse target value is a valid
    full-resolution return from that pixel's own block."""
    target = sparse_depth((2, 1, 15, 21), 0.6, seed=9)
    preds = predictions(2, SIZES_ODD, seed=10)
    sup = SupervisedLoss("l1", input_space="depth")
    captured: List[Tuple[Tensor, Tensor]] = []
    inner = sup.loss.forward

    def spy(pred: Tensor, tgt: Tensor, mask: Optional[Tensor] = None, progress: Any = None) -> Tensor:
        captured.append((tgt.clone(), mask.clone()))
        return inner(pred, tgt, mask, progress)

    sup.loss.forward = spy  # type: ignore[method-assign]
    out = sup(preds, target)
    assert torch.isfinite(out["loss"]) and len(captured) == 4
    for i, (t_i, m_i) in enumerate(captured):
        f = 2**i
        assert t_i.shape == preds[i].shape and m_i.any()
        for b, _, r, c in m_i.nonzero().tolist():
            block = target[b, 0, r * f : (r + 1) * f, c * f : (c + 1) * f]
            assert (block == t_i[b, 0, r, c]).any() and t_i[b, 0, r, c] > 0


def test_three_dim_maps() -> None:
    target = sparse_depth((2, 1, 16, 16), 0.3, seed=11)
    preds = predictions(2, SIZES_EVEN, seed=12)
    out4 = SupervisedLoss("sparse-l1", input_space="depth")(preds, target)
    out3 = SupervisedLoss("sparse-l1", input_space="depth")([p.squeeze(1) for p in preds], target.squeeze(1))
    torch.testing.assert_close(out3["loss"], out4["loss"])


# ----------------------------------------------------------------------------------------
# masks
# ----------------------------------------------------------------------------------------
def test_full_resolution_user_mask_is_combined_and_pooled() -> None:
    target = sparse_depth((2, 1, 15, 21), 0.4, seed=13)
    preds = predictions(2, SIZES_ODD, seed=14)
    mask = torch.ones_like(target, dtype=torch.bool)
    mask[..., :, :6] = False  # e.g. the car's bonnet
    mask[1, 0, 10:, :] = False
    out = SupervisedLoss("sparse-l1", input_space="depth")(preds, target, masks=mask)
    expected = hand_multiscale_l1(preds, target, (target > 0) & mask, "mean")
    assert [float(out["metrics"][f"scale{i}/loss"]) for i in range(4)] == pytest.approx(expected, abs=1e-12)
    unmasked = hand_multiscale_l1(preds, target, target > 0, "mean")
    assert abs(sum(unmasked) - sum(expected)) > 1e-3


def test_per_scale_user_masks() -> None:
    target = sparse_depth((2, 1, 16, 16), 0.4, seed=15)
    preds = predictions(2, SIZES_EVEN, seed=16)
    g = _gen(17)
    masks: List[Optional[Tensor]] = [torch.rand(p.shape, generator=g) < 0.7 for p in preds]
    masks[2] = None
    out = SupervisedLoss("sparse-l1", input_space="depth")(preds, target, masks=masks)
    expected = hand_multiscale_l1(preds, target, target > 0, "mean", masks)
    assert [float(out["metrics"][f"scale{i}/loss"]) for i in range(4)] == pytest.approx(expected, abs=1e-12)
    # a shorter list leaves the remaining scales unmasked
    out_short = SupervisedLoss("sparse-l1", input_space="depth")(preds, target, masks=masks[:1])
    expected_short = hand_multiscale_l1(preds, target, target > 0, "mean", masks[:1] + [None] * 3)
    assert [float(out_short["metrics"][f"scale{i}/loss"]) for i in range(4)] == pytest.approx(expected_short, abs=1e-12)


def test_mask_shape_errors() -> None:
    target = sparse_depth((2, 1, 16, 16), 0.4, seed=18)
    preds = predictions(2, SIZES_EVEN, seed=19)
    sup = SupervisedLoss("sparse-l1", input_space="depth")
    with pytest.raises(ValueError, match="masks"):
        sup(preds, target, masks=torch.ones(2, 1, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"masks\[1\]"):
        sup(preds, target, masks=[None, torch.ones(2, 1, 16, 16, dtype=torch.bool)])


# ----------------------------------------------------------------------------------------
# progress, outputs, averaging
# ----------------------------------------------------------------------------------------
def test_progress_reaches_the_loss() -> None:
    target = sparse_depth((2, 1, 16, 16), 0.4, seed=20).float()
    preds = predictions(2, SIZES_EVEN, seed=21, dtype=torch.float32)
    sup = SupervisedLoss("sparse-scale-adaptive", num_scales=2, input_space="depth")
    assert type(sup.loss) is ScaleAdaptiveLoss
    out = sup(preds, target, progress=0.25)
    for i in range(2):
        assert float(out["metrics"][f"scale{i}/alpha_t"]) == pytest.approx(0.75)
    out = sup(preds, target, progress=torch.tensor(0.6))
    assert float(out["metrics"]["scale0/alpha_t"]) == pytest.approx(0.4)
    sup.progress = 0.9  # through the attribute, for frameworks that cannot pass it
    assert float(sup.loss.progress) == pytest.approx(0.9)
    out = sup(preds, target)
    assert float(out["metrics"]["scale1/alpha_t"]) == pytest.approx(0.1)
    assert float(sup.progress) == pytest.approx(0.9)


def test_output_structure_and_average_over_scales() -> None:
    target = sparse_depth((2, 1, 16, 16), 0.4, seed=22).float()
    preds = predictions(2, SIZES_EVEN, seed=23, dtype=torch.float32)
    sup = SupervisedLoss("sparse-scale-adaptive", input_space="depth")
    out = sup(preds, target, progress=0.5)
    assert set(out) == {"loss", "metrics"}
    metrics = out["metrics"]
    expected_keys = {"loss"} | {f"scale{i}/{k}" for i in range(4) for k in sup.loss.metrics}
    assert set(metrics) == expected_keys
    assert "scale0/level3_stencil_frac" in metrics and "scale3/num_valid_pixels" in metrics
    scale_losses = torch.stack([metrics[f"scale{i}/loss"] for i in range(4)])
    torch.testing.assert_close(out["loss"].detach(), scale_losses.mean())
    assert all(not v.requires_grad for v in metrics.values())
    assert sup.metrics is metrics
    per_image = SupervisedLoss("sparse-scale-adaptive", input_space="depth", reduction="none")(
        preds, target, progress=0.5
    )
    assert per_image["loss"].shape == (2,)
    torch.testing.assert_close(per_image["loss"].mean(), out["loss"], rtol=1e-5, atol=1e-6)


def test_num_scales_truncates_extra_predictions() -> None:
    target = sparse_depth((2, 1, 16, 16), 0.4, seed=24)
    preds = [p.requires_grad_(True) for p in predictions(2, SIZES_EVEN, seed=25)]
    sup = SupervisedLoss("sparse-l1", num_scales=2, input_space="depth")
    out = sup(preds, target)
    assert {k for k in out["metrics"] if k.startswith("scale")} == {"scale0/loss", "scale1/loss"}
    expected = hand_multiscale_l1(preds[:2], target, target > 0, "mean")
    assert float(out["loss"].detach()) == pytest.approx(sum(expected) / 2, abs=1e-12)
    out["loss"].backward()
    assert preds[0].grad is not None and preds[1].grad is not None
    assert preds[2].grad is None and preds[3].grad is None
    fewer = SupervisedLoss("sparse-l1", num_scales=4, input_space="depth")(preds[:2], target)  # fewer than num_scales
    assert float(fewer["loss"].detach()) == pytest.approx(sum(expected) / 2, abs=1e-12)


@pytest.mark.parametrize(
    "method",
    ["sparse-scale-adaptive", "sparse-l1", "near-field-ssi-silog", "sparse-ssi-silog", "midas", "sparse-ssi-trim"],
)
def test_empty_targets_give_zero_loss_and_zero_gradient(method: str) -> None:
    preds = [p.float().requires_grad_(True) for p in predictions(2, SIZES_ODD, seed=26)]
    target = torch.zeros(2, 1, 15, 21)
    target[0, 0, 0, 0] = float("nan")  # invalid, not a return
    out = SupervisedLoss(method, input_space="inverse")(preds, target, progress=0.5)
    assert out["loss"].requires_grad
    assert float(out["loss"].detach()) == 0.0
    out["loss"].backward()
    for p in preds:
        assert p.grad is not None and (p.grad == 0).all()
    mask_only = SupervisedLoss(method, input_space="inverse")(
        preds, sparse_depth((2, 1, 15, 21), 0.5, seed=27).float(), masks=torch.zeros(2, 1, 15, 21, dtype=torch.bool)
    )
    assert float(mask_only["loss"].detach()) == 0.0


def test_wrapped_loss_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="lamda"):
        SupervisedLoss("silog", input_space="depth", lamda=1.0)
    with pytest.raises(ValueError, match="scale-adaptve"):
        SupervisedLoss("sparse-scale-adaptve", input_space="depth")
    with pytest.raises(ValueError, match="num_scales"):
        SupervisedLoss("l1", input_space="depth", num_scales=0)
    with pytest.raises(ValueError, match="target_downsample"):
        SupervisedLoss("sparse-l1", input_space="depth", target_downsample="max")
    with pytest.raises(ValueError, match="preds"):
        SupervisedLoss("l1", input_space="depth")([], torch.ones(1, 1, 4, 4))


# ----------------------------------------------------------------------------------------
# near-field weights: computed once at full resolution, pooled to each scale
# ----------------------------------------------------------------------------------------
def hand_smooth_weights(depth: Tensor) -> Tensor:
    """DESIGN §4 defaults: 5 below 1 m, 1 above, tanh transition of half-width 0.3 m."""
    return 1.0 + 4.0 * 0.5 * (1.0 - torch.tanh((depth - 1.0) / 0.3))


@pytest.mark.parametrize("method,mode", [("sparse-near-field-ssi-silog", "mean"), ("ssi-silog-nearfield", "nearest")])
def test_near_field_weights_computed_once_and_pooled(method: str, mode: str) -> None:
    depth = sparse_depth((2, 1, 16, 16), 0.5, seed=28, low=0.3, high=3.0)
    valid = depth > 0
    target = torch.where(valid, 1.0 / depth.clamp(min=1e-9), torch.zeros_like(depth))  # inverse depth input
    preds = [1.0 / p for p in predictions(2, SIZES_EVEN, seed=29)]
    sup = SupervisedLoss(method, input_space="inverse")
    assert isinstance(sup.loss, NearFieldSSISilog)
    seen: List[Tuple[Tensor, Tensor, Tensor]] = []
    inner = sup.loss.forward

    def spy(
        pred: Tensor, tgt: Tensor, mask: Optional[Tensor] = None, progress: Any = None, weights: Optional[Tensor] = None
    ) -> Tensor:
        assert weights is not None
        seen.append((weights.clone(), tgt.clone(), mask.clone()))
        return inner(pred, tgt, mask, progress, weights=weights)

    sup.loss.forward = spy  # type: ignore[method-assign]
    out = sup(preds, target)
    assert torch.isfinite(out["loss"]) and len(seen) == 4
    full_weights = hand_smooth_weights(torch.where(valid, depth, torch.ones_like(depth)))
    recomputed_differs = False
    for i, (weights, tgt, mask) in enumerate(seen):
        expected, ok = block_pool(full_weights, valid, 2**i, mode)
        torch.testing.assert_close(mask, ok)
        torch.testing.assert_close(weights[ok], expected[ok], rtol=1e-6, atol=1e-9)
        # weights from the pooled target (what the seed did per scale) are not the same thing
        per_scale = hand_smooth_weights(1.0 / tgt[ok])
        recomputed_differs |= not torch.allclose(per_scale, weights[ok], rtol=1e-3)
    assert recomputed_differs == (mode == "mean")  # nearest picks a pixel: its own weight


def test_near_field_weights_follow_scheduled_threshold() -> None:
    depth = sparse_depth((1, 1, 8, 8), 0.6, seed=30, low=0.3, high=3.0)
    target = torch.where(depth > 0, 1.0 / depth.clamp(min=1e-9), torch.zeros_like(depth))
    preds = [1.0 / p for p in predictions(1, [(8, 8), (4, 4)], seed=31)]
    sup = SupervisedLoss(
        "sparse-near-field-ssi-silog", threshold_schedule="linear", input_space="inverse"
    )  # 0.5 m -> 1.5 m
    out0 = sup(preds, target, progress=0.0)
    assert float(out0["metrics"]["scale0/threshold_t"]) == pytest.approx(0.5)
    out1 = sup(preds, target, progress=1.0)
    assert float(out1["metrics"]["scale1/threshold_t"]) == pytest.approx(1.5)
    assert float(out0["loss"]) != float(out1["loss"])


# ----------------------------------------------------------------------------------------
# issue 12: empty batches, input space, dtype promotion, mismatches, casts
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["sparse-scale-adaptive", "sparse-near-field-ssi-silog", "midas", "sparse-l1"])
def test_empty_batch(method: str) -> None:
    """Issue 12 item 4: B = 0 failed in SupervisedLoss (cannot reshape tensor of 0 elements)."""
    preds = [torch.rand(0, 1, 16, 16, requires_grad=True), torch.rand(0, 1, 8, 8, requires_grad=True)]
    out = SupervisedLoss(method, num_scales=2, input_space="inverse")(preds, torch.rand(0, 1, 16, 16), progress=0.4)
    assert out["loss"].shape == () and float(out["loss"].detach()) == 0.0 and out["loss"].requires_grad
    out["loss"].backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in preds)
    none = SupervisedLoss(method, num_scales=2, input_space="inverse", reduction="none")(
        preds, torch.rand(0, 1, 16, 16)
    )
    assert none["loss"].shape == (0,)


def test_input_space_is_required() -> None:
    """Issue 12 item 3: the driver requires input_space like the modules (from_config defaults it)."""
    with pytest.raises(TypeError, match="needs input_space"):
        SupervisedLoss("sparse-scale-adaptive")
    with pytest.raises(TypeError, match="needs input_space"):
        SupervisedLoss()


def test_batch_mismatch_names_both_shapes() -> None:
    """Issue 12 item 6: SupervisedLoss()([rand(3, 1, 16, 16)], rand(2, 1, 16, 16)) raised
    RuntimeError: shape '[3, 1, 16, 16]' is invalid; it names the mismatch."""
    sup = SupervisedLoss(input_space="inverse")
    with pytest.raises(
        ValueError, match=r"preds\[0\] must have the target's batch size.*\(2, 1, 16, 16\).*\(3, 1, 16, 16\)"
    ):
        sup([torch.rand(3, 1, 16, 16)], torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match=r"preds\[1\]"):
        sup([torch.rand(2, 1, 16, 16), torch.rand(2, 8, 8)], torch.rand(2, 1, 16, 16))
    with pytest.raises(TypeError, match="preds must be a Tensor or a sequence"):
        sup("pred", torch.rand(2, 1, 16, 16))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"preds\[0\] must be a floating-point tensor"):
        sup([torch.ones(2, 1, 16, 16, dtype=torch.long)], torch.rand(2, 1, 16, 16))


@pytest.mark.parametrize("method", ["sparse-l1", "sparse-scale-adaptive", "near-field-ssi-silog"])
def test_dtype_promotion(method: str) -> None:
    """Issue 12 item 6: float32 predictions with a float64 target gave float32; the driver promotes like the modules."""
    target = sparse_depth((2, 1, 16, 16), 0.4, seed=40)
    preds = [p.float() for p in predictions(2, SIZES_EVEN[:2], seed=41)]
    sup = SupervisedLoss(method, num_scales=2, input_space="depth")
    assert sup(preds, target)["loss"].dtype == torch.float64
    assert sup([p.double() for p in preds], target.float())["loss"].dtype == torch.float64
    assert sup([p.half() for p in preds], target.float())["loss"].dtype == torch.float32
    assert sup(preds, target.float())["loss"].dtype == torch.float32


def test_cast_keeps_progress() -> None:
    sup = SupervisedLoss("sparse-scale-adaptive", input_space="depth")
    sup.progress = 0.3
    sup.half()
    assert float(sup.progress) == float(torch.tensor(0.3)) and sup.progress.dtype == torch.float32
    sup.to(torch.bfloat16)
    assert float(sup.loss.progress) == float(torch.tensor(0.3))


def test_num_scales_is_the_drivers() -> None:
    """``num_scales`` is the number of prediction scales; the loss keeps its own default pyramid."""
    sup = SupervisedLoss("sparse-scale-adaptive", num_scales=2, input_space="depth")
    assert sup.num_scales == 2


def test_from_config_routes_the_losses_num_scales() -> None:
    from depthloss import from_config

    config = {"supervised_method": "sparse-scale-adaptive", "supervised_num_scales": 4, "num_scales": 2}
    try:
        sup = from_config(config)
    except (TypeError, ValueError) as err:  # an error that names the key and the clash would do
        assert "num_scales" in str(err) and "supervised_num_scales" in str(err), str(err)
        return
    assert sup.num_scales == 4 and sup.loss.config.num_scales == 2


def test_keyword_inputs_reach_the_loss_at_every_scale() -> None:
    """Issue 14: losses with forward inputs (log_scale, K, ...) work through SupervisedLoss."""
    sup = depthloss.SupervisedLoss(method="gaussian-nll", num_scales=2, input_space="depth")
    preds = [torch.rand(2, 1, 16, 16) + 1.0, torch.rand(2, 1, 8, 8) + 1.0]
    target = torch.rand(2, 1, 16, 16) + 1.0
    scales = [torch.zeros(2, 1, 16, 16), torch.zeros(2, 1, 8, 8)]
    out = sup(preds, target, log_scale=scales)
    single = depthloss.get_loss("gaussian-nll", input_space="depth")
    first = single(preds[0], target, log_scale=scales[0])
    assert torch.isfinite(out["loss"]) and out["metrics"]["scale0/loss"] == first
    with pytest.raises(ValueError, match="log_scale must hold one value per prediction"):
        sup(preds, target, log_scale=scales[:1])
    with pytest.raises(TypeError, match="unexpected inputs \\['K'\\]"):
        sup(preds, target, log_scale=scales, K=torch.eye(3))
    with pytest.raises(TypeError, match="log_scale"):  # a missing required input names itself
        sup(preds, target)
