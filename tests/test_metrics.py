"""Tests for ``depthloss.metrics``: a NumPy oracle of the Monodepth2 / BTS evaluation, hand-computed
cases, invariances, accumulation, precision, compilation and validation.

The oracle below loops over images with boolean indexing and uses the exact ``compute_errors``
formulas of BTS (``cleinc/bts/pytorch/bts_eval.py``; Monodepth2's are the same minus ``log10`` and
``silog``), ``np.median`` for median scaling (Monodepth2's ``evaluate_depth.py``), BTS's rules for
non-finite predictions and Monodepth2's clamp after alignment.
"""

from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np
import pytest
import torch

from depthloss.metrics import METRIC_NAMES, DepthMetrics, depth_metrics

# ----------------------------------------------------------------------------- oracle


def compute_errors(gt: np.ndarray, pred: np.ndarray) -> Dict[str, float]:
    """BTS's ``compute_errors`` (a superset of Monodepth2's), verbatim formulas."""
    thresh = np.maximum((gt / pred), (pred / gt))
    d1 = (thresh < 1.25).mean()
    d2 = (thresh < 1.25**2).mean()
    d3 = (thresh < 1.25**3).mean()
    rmse = (gt - pred) ** 2
    rmse = np.sqrt(rmse.mean())
    rmse_log = (np.log(gt) - np.log(pred)) ** 2
    rmse_log = np.sqrt(rmse_log.mean())
    abs_rel = np.mean(np.abs(gt - pred) / gt)
    sq_rel = np.mean(((gt - pred) ** 2) / gt)
    err = np.log(pred) - np.log(gt)
    silog = np.sqrt(np.mean(err**2) - np.mean(err) ** 2) * 100
    err = np.abs(np.log10(pred) - np.log10(gt))
    log10 = np.mean(err)
    return dict(
        abs_rel=abs_rel, sq_rel=sq_rel, rmse=rmse, rmse_log=rmse_log, log10=log10, silog=silog, d1=d1, d2=d2, d3=d3
    )


def oracle(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    min_depth: float = 1e-3,
    max_depth: float = 80.0,
    align: Optional[str] = None,
    align_space: str = "disparity",
    near_threshold: Optional[float] = None,
) -> Dict[str, float]:
    b = pred.shape[0]
    preds = pred.detach().double().reshape(b, -1).numpy()
    gts = target.detach().double().reshape(b, -1).numpy()
    masks = None if mask is None else mask.reshape(b, -1).numpy()
    per: Dict[str, list] = {"": [], "near/": [], "far/": []}
    fractions = []
    for i in range(b):
        gt_depth = gts[i]
        with np.errstate(invalid="ignore"):
            valid = np.isfinite(gt_depth) & (gt_depth > min_depth) & (gt_depth < max_depth)
        if masks is not None:
            valid &= masks[i]
        if not valid.any():
            continue
        gt = gt_depth[valid]
        p = preds[i][valid].copy()
        # BTS: pred[isinf] -> max (only +inf survives its preceding "< min" clamp), pred[isnan] -> min
        p[np.isnan(p)] = min_depth
        p[p == np.inf] = max_depth
        p[p == -np.inf] = min_depth
        if align == "median":
            p = p * (np.median(gt) / np.median(p))
        elif align == "lsq":
            if align_space == "disparity":
                x = 1.0 / p
                a = np.stack([x, np.ones_like(x)], axis=1)
                (s, t), *_ = np.linalg.lstsq(a, 1.0 / gt, rcond=None)
                disp = np.clip(s * x + t, 1.0 / max_depth, 1.0 / min_depth)
                p = 1.0 / disp
            else:
                a = np.stack([p, np.ones_like(p)], axis=1)
                (s, t), *_ = np.linalg.lstsq(a, gt, rcond=None)
                p = s * p + t
        # Monodepth2: clamp after alignment
        p[p < min_depth] = min_depth
        p[p > max_depth] = max_depth
        per[""].append(compute_errors(gt, p))
        if near_threshold is not None:
            near = gt < near_threshold
            fractions.append(near.mean())
            if near.any():
                per["near/"].append(compute_errors(gt[near], p[near]))
            if (~near).any():
                per["far/"].append(compute_errors(gt[~near], p[~near]))
    out: Dict[str, float] = {}
    prefixes = ("", "near/", "far/") if near_threshold is not None else ("",)
    for prefix in prefixes:
        rows = per[prefix]
        for name in METRIC_NAMES:
            out[prefix + name] = float(np.mean([r[name] for r in rows])) if rows else 0.0
        out[prefix + "count"] = float(len(rows))
    if near_threshold is not None:
        out["near/fraction"] = float(np.mean(fractions)) if fractions else 0.0
    return out


def assert_matches(result: Dict[str, torch.Tensor], expected: Dict[str, float], rtol: float, atol: float) -> None:
    assert set(result) == set(expected)
    for key, value in expected.items():
        got = result[key]
        assert got.dim() == 0, key
        assert math.isclose(got.item(), value, rel_tol=rtol, abs_tol=atol), (key, got.item(), value)


# ----------------------------------------------------------------------------- data


def make_batch(seed: int, shape=(5, 1, 9, 11), dtype=torch.float64, scale: float = 1.0):
    """Random metric targets (some out of range, some missing), noisy predictions, random masks.

    Image 1 has an all-False mask (excluded); image 2 has a single valid pixel.
    """
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=g, dtype=torch.float64) * 99.0 + 0.2  # [0.2, 99.2]: some > 80
    target = torch.where(torch.rand(shape, generator=g, dtype=torch.float64) < 0.15, 0.0, target)  # sparse holes
    noise = torch.randn(shape, generator=g, dtype=torch.float64) * 0.35
    pred = scale * target.clamp(min=0.5) * torch.exp(noise)
    mask = torch.rand(shape, generator=g) < 0.6
    mask[1] = False
    mask[2] = False
    mask[2].view(-1)[7] = True
    target[2].view(-1)[7] = 12.5
    return pred.to(dtype), target.to(dtype), mask


ALIGN_CASES = [(None, "disparity"), ("median", "disparity"), ("lsq", "disparity"), ("lsq", "depth")]


# ----------------------------------------------------------------------------- oracle comparisons


@pytest.mark.parametrize("align,align_space", ALIGN_CASES)
@pytest.mark.parametrize("near_threshold", [None, 20.0])
def test_matches_oracle_float64(align, align_space, near_threshold):
    scale = 1.0 if align is None else 0.037  # relative predictions for the aligned cases
    pred, target, mask = make_batch(1, scale=scale)
    kwargs = dict(min_depth=1e-3, max_depth=80.0, align=align, align_space=align_space, near_threshold=near_threshold)
    result = depth_metrics(pred, target, mask, **kwargs)
    expected = oracle(pred, target, mask, **kwargs)
    assert expected["count"] == 4.0  # image 1 excluded
    assert_matches(result, expected, rtol=1e-9, atol=1e-10)
    for v in result.values():
        assert v.dtype == torch.float64


@pytest.mark.parametrize("align,align_space", ALIGN_CASES)
def test_matches_oracle_float32_three_dim_and_bounds(align, align_space):
    """(B, H, W) input, float32, tighter depth range (more pixels filtered and clamped)."""
    pred, target, mask = make_batch(2, shape=(4, 16, 12), dtype=torch.float32, scale=1.0 if align is None else 5.0)
    kwargs = dict(min_depth=2.0, max_depth=40.0, align=align, align_space=align_space, near_threshold=10.0)
    result = depth_metrics(pred, target, mask, **kwargs)
    expected = oracle(pred, target, mask, **kwargs)
    assert_matches(result, expected, rtol=2e-5, atol=2e-5)
    assert result["abs_rel"].dtype == torch.float32


def test_no_mask_matches_oracle_and_4d_equals_3d():
    pred, target, _ = make_batch(3)
    result = depth_metrics(pred, target, align="median")
    assert_matches(result, oracle(pred, target, align="median"), rtol=1e-9, atol=1e-10)
    squeezed = depth_metrics(pred[:, 0], target[:, 0], align="median")
    for k in result:
        assert torch.equal(result[k], squeezed[k]), k


def test_nonfinite_targets_invalid_and_nonfinite_predictions_bts_rules():
    pred, target, mask = make_batch(4)
    target[0, 0, 0, :4] = torch.tensor([float("nan"), float("inf"), -float("inf"), -3.0])
    mask[0, 0, 0, :4] = True
    pred[0, 0, 1, :3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    target[0, 0, 1, :3] = torch.tensor([5.0, 6.0, 7.0])
    mask[0, 0, 1, :3] = True
    result = depth_metrics(pred, target, mask)
    assert all(torch.isfinite(v) for v in result.values())
    assert_matches(result, oracle(pred, target, mask), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computed_in_float32(dtype):
    pred, target, mask = make_batch(5, dtype=dtype, scale=0.2)
    pred = pred.clamp(max=60.0)  # keep within fp16 range after the scale
    result = depth_metrics(pred, target, mask, align="median", near_threshold=15.0)
    assert all(v.dtype == torch.float32 for v in result.values())
    expected = oracle(pred, target, mask, align="median", near_threshold=15.0)
    assert_matches(result, expected, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("align,align_space", [("median", "disparity"), ("lsq", "disparity")])
def test_compile_fullgraph(align, align_space):
    pred, target, mask = make_batch(6, dtype=torch.float32, scale=0.5)
    fn = torch.compile(depth_metrics, fullgraph=True, backend="eager")
    kwargs = dict(min_depth=1e-3, max_depth=80.0, align=align, align_space=align_space, near_threshold=20.0)
    result = fn(pred, target, mask, **kwargs)
    assert_matches(result, oracle(pred, target, mask, **kwargs), rtol=2e-5, atol=2e-5)


# ----------------------------------------------------------------------------- hand-computed cases


def test_hand_computed_values():
    target = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]], dtype=torch.float64)
    pred = torch.tensor([[[1.0, 2.0], [4.0, 5.0]]], dtype=torch.float64)
    m = depth_metrics(pred, target)
    ln = math.log(1.6)
    expected = dict(
        abs_rel=3 / 8 / 4,
        sq_rel=9 / 8 / 4,
        rmse=1.5,
        rmse_log=ln / 2,
        log10=math.log10(1.6) / 4,
        silog=100 * math.sqrt(ln**2 / 4 - ln**2 / 16),
        d1=0.75,
        d2=0.75,  # 1.6 > 1.5625
        d3=1.0,  # 1.6 < 1.953125
        count=1.0,
    )
    assert_matches(m, expected, rtol=1e-12, atol=1e-12)


def test_bounds_are_exclusive_and_prediction_is_clamped():
    # targets exactly at min_depth (1) and max_depth (10) are invalid; preds clamped to [1, 10]
    target = torch.tensor([[1.0, 10.0, 2.0, 2.0]]).reshape(1, 1, 2, 2)
    pred = torch.tensor([[7.0, 7.0, 0.1, 100.0]]).reshape(1, 1, 2, 2)
    m = depth_metrics(pred, target, min_depth=1.0, max_depth=10.0)
    # valid: the two 2 m pixels; clamped preds 1 and 10 -> |1-2|/2 = 0.5 and |10-2|/2 = 4
    assert m["abs_rel"].item() == pytest.approx(2.25)
    assert m["rmse"].item() == pytest.approx(math.sqrt((1 + 64) / 2))
    assert m["d3"].item() == 0.0


def test_median_uses_numpy_convention_for_even_counts():
    target = torch.tensor([[1.0, 2.0, 3.0, 4.0]]).reshape(1, 1, 2, 2)
    pred = torch.full_like(target, 2.0)
    m = depth_metrics(pred, target, align="median")
    # np.median(target) = 2.5 -> ratio 1.25 -> every pred is 2.5 (the lower median would give 2)
    expected = (1.5 / 1 + 0.5 / 2 + 0.5 / 3 + 1.5 / 4) / 4
    assert m["abs_rel"].item() == pytest.approx(expected, rel=1e-6)


def test_median_of_nonpositive_prediction_leaves_it_unscaled():
    target = torch.tensor([[2.0, 4.0, 6.0]]).reshape(1, 1, 1, 3)
    pred = torch.zeros_like(target)
    m = depth_metrics(pred, target, align="median", min_depth=0.5)
    # no scaling; pred clamped to min_depth 0.5 everywhere
    assert m["abs_rel"].item() == pytest.approx((1.5 / 2 + 3.5 / 4 + 5.5 / 6) / 3)
    assert all(torch.isfinite(v) for v in m.values())


def test_lsq_negative_fitted_disparity_becomes_max_depth():
    # pred disparities 1..4 against target disparities 1, 0.5, 0.05, 0.05: the fitted line
    # s*x + t (s = -0.33, t = 1.225) is negative at x = 4, i.e. "beyond infinity" -> max_depth
    pred = 1.0 / torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64).reshape(1, 1, 2, 2)
    target = torch.tensor([1.0, 2.0, 20.0, 20.0], dtype=torch.float64).reshape(1, 1, 2, 2)
    x, y = 1.0 / pred.flatten().numpy(), 1.0 / target.flatten().numpy()
    s, t = np.polyfit(x, y, 1)
    assert s * x[-1] + t < 0
    m = depth_metrics(pred, target, align="lsq", align_space="disparity")
    assert_matches(m, oracle(pred, target, align="lsq", align_space="disparity"), rtol=1e-9, atol=1e-10)
    fitted = 1.0 / (s * x[:3] + t)
    expected_abs_rel = (np.sum(np.abs(fitted - [1.0, 2.0, 20.0]) / [1.0, 2.0, 20.0]) + (80.0 - 20.0) / 20.0) / 4
    assert m["abs_rel"].item() == pytest.approx(expected_abs_rel, rel=1e-9)


def test_empty_images_are_excluded_from_the_average():
    target = torch.full((3, 1, 2, 2), 4.0)
    pred = torch.stack([target[0], target[1], 2 * target[2]])  # perfect, (empty), abs_rel 1
    mask = torch.ones_like(target, dtype=torch.bool)
    mask[1] = False
    m = depth_metrics(pred, target, mask)
    assert m["count"].item() == 2.0
    assert m["abs_rel"].item() == pytest.approx(0.5)
    assert m["d1"].item() == pytest.approx(0.5)


@pytest.mark.parametrize("align,align_space", ALIGN_CASES)
def test_all_empty_batch_gives_zeros_and_count_zero(align, align_space):
    target = torch.rand(2, 1, 4, 4) * 10 + 1
    target[0] = 0.0  # no ground truth
    target[1] = 200.0  # beyond max_depth
    pred = torch.rand(2, 1, 4, 4)
    m = depth_metrics(pred, target, align=align, align_space=align_space, near_threshold=5.0)
    assert len(m) == 3 * 10 + 1
    for k, v in m.items():
        assert torch.isfinite(v), k
        assert v.item() == 0.0, k


def test_near_far_split_excludes_images_without_such_pixels():
    target = torch.stack([torch.full((1, 2, 2), 2.0), torch.full((1, 2, 2), 8.0)])
    pred = torch.stack([torch.full((1, 2, 2), 3.0), torch.full((1, 2, 2), 4.0)])
    m = depth_metrics(pred, target, near_threshold=5.0)
    assert m["near/count"].item() == 1.0 and m["far/count"].item() == 1.0
    assert m["near/abs_rel"].item() == pytest.approx(0.5)  # |3-2|/2, image 0 only
    assert m["far/abs_rel"].item() == pytest.approx(0.5)  # |4-8|/8, image 1 only
    assert m["near/fraction"].item() == pytest.approx(0.5)  # (1 + 0) / 2
    assert m["abs_rel"].item() == pytest.approx(0.5)
    # threshold belongs to "far": target == threshold
    m2 = depth_metrics(pred, target, near_threshold=8.0)
    assert m2["near/count"].item() == 1.0 and m2["near/fraction"].item() == pytest.approx(0.5)


# ----------------------------------------------------------------------------- properties


@pytest.mark.parametrize("align,align_space", ALIGN_CASES)
def test_perfect_prediction(align, align_space):
    _, target, mask = make_batch(7)
    m = depth_metrics(target.clone(), target, mask, align=align, align_space=align_space)
    for k in ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog"):
        assert m[k].item() == pytest.approx(0.0, abs=1e-9), k
    for k in ("d1", "d2", "d3"):
        assert m[k].item() == 1.0, k
    assert m["count"].item() == 4.0


@pytest.mark.parametrize("a", [1e-3, 0.37, 250.0])
def test_median_alignment_is_scale_invariant(a):
    pred, target, mask = make_batch(8)
    base = depth_metrics(pred, target, mask, align="median", near_threshold=20.0)
    scaled = depth_metrics(a * pred, target, mask, align="median", near_threshold=20.0)
    for k in base:
        assert scaled[k].item() == pytest.approx(base[k].item(), rel=1e-9, abs=1e-12), k
    unaligned = depth_metrics(a * pred, target, mask)
    assert abs(unaligned["abs_rel"].item() - base["abs_rel"].item()) > 1e-3  # the scale does matter without it


@pytest.mark.parametrize("a,b", [(0.05, 0.02), (3.0, -0.005), (40.0, 1.5)])
def test_lsq_disparity_alignment_is_invariant_to_affine_disparity(a, b):
    pred, target, mask = make_batch(9)
    base = depth_metrics(pred, target, mask, align="lsq", align_space="disparity")
    disp = a / pred + b
    assert bool((disp > 0).all())
    moved = depth_metrics(1.0 / disp, target, mask, align="lsq", align_space="disparity")
    for k in base:
        assert moved[k].item() == pytest.approx(base[k].item(), rel=1e-7, abs=1e-9), k


@pytest.mark.parametrize("a,b", [(0.05, 0.2), (3.0, -2.0)])
def test_lsq_depth_alignment_is_invariant_to_affine_depth(a, b):
    pred, target, mask = make_batch(10)
    base = depth_metrics(pred, target, mask, align="lsq", align_space="depth")
    moved = depth_metrics(a * pred + b, target, mask, align="lsq", align_space="depth")
    for k in base:
        assert moved[k].item() == pytest.approx(base[k].item(), rel=1e-7, abs=1e-9), k


def test_outputs_detached_zero_dim_and_inputs_unchanged():
    pred, target, mask = make_batch(11, dtype=torch.float32)
    pred.requires_grad_(True)
    p0, t0, m0 = pred.detach().clone(), target.clone(), mask.clone()
    m = depth_metrics(pred, target, mask, align="lsq", near_threshold=20.0)
    for k, v in m.items():
        assert v.dim() == 0 and not v.requires_grad and v.device == pred.device, k
    assert torch.equal(pred.detach(), p0) and torch.equal(target, t0) and torch.equal(mask, m0)


# ----------------------------------------------------------------------------- accumulator


@pytest.mark.parametrize("align,align_space", [(None, "disparity"), ("median", "disparity"), ("lsq", "depth")])
def test_accumulator_equals_one_call_on_the_concatenated_batch(align, align_space):
    pred, target, mask = make_batch(12, scale=1.0 if align is None else 0.3)
    kwargs = dict(align=align, align_space=align_space, near_threshold=20.0)
    acc = DepthMetrics(**kwargs)
    first = acc.update(pred[:2], target[:2], mask[:2])  # holds the empty image: 1 counted image
    acc.update(pred[2:], target[2:], mask[2:])
    assert first["count"].item() == 1.0
    whole = oracle(pred, target, mask, **kwargs)
    out = acc.compute()
    assert all(isinstance(v, float) for v in out.values())
    assert set(out) == set(whole)
    for k in whole:
        assert out[k] == pytest.approx(whole[k], rel=1e-9, abs=1e-10), k
    # averaging the two batch means would be wrong (1 vs 3 counted images)
    assert out["count"] == 4.0
    tensors = acc.compute_tensors()
    assert all(isinstance(v, torch.Tensor) for v in tensors.values())


def test_accumulator_empty_and_reset():
    acc = DepthMetrics(near_threshold=3.0)
    empty = acc.compute()
    assert len(empty) == 31 and all(v == 0.0 for v in empty.values())
    target = torch.full((1, 1, 2, 2), 2.0)
    acc.update(2 * target, target)
    assert acc.compute()["abs_rel"] == pytest.approx(1.0)
    acc.reset()
    assert acc.compute()["count"] == 0.0


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs,exc,name",
    [
        (dict(align="mean"), ValueError, "align"),
        (dict(align="lsq", align_space="log"), ValueError, "align_space"),
        (dict(min_depth=10.0, max_depth=10.0), ValueError, "min_depth"),
        (dict(min_depth=50.0, max_depth=10.0), ValueError, "max_depth"),
        (dict(min_depth=0.0), ValueError, "min_depth"),
        (dict(near_threshold=-1.0), ValueError, "near_threshold"),
    ],
)
def test_invalid_hyper_parameters(kwargs, exc, name):
    x = torch.ones(1, 1, 2, 2)
    with pytest.raises(exc, match=name):
        depth_metrics(x, x, **kwargs)
    with pytest.raises(exc, match=name):
        DepthMetrics(**kwargs)


def test_invalid_tensors():
    x = torch.ones(2, 1, 3, 3)
    with pytest.raises(ValueError, match="target"):
        depth_metrics(x, torch.ones(2, 1, 3, 4))
    with pytest.raises(TypeError, match="mask"):
        depth_metrics(x, x, torch.ones(2, 1, 3, 3))
    with pytest.raises(ValueError, match="mask"):
        depth_metrics(x, x, torch.ones(2, 1, 3, 2, dtype=torch.bool))
    with pytest.raises(TypeError, match="pred"):
        depth_metrics(x.long(), x)
    with pytest.raises(ValueError, match="pred"):
        depth_metrics(torch.ones(2, 3, 3, 3), torch.ones(2, 3, 3, 3))
