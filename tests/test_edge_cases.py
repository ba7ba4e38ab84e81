"""Every functional loss kernel against its float64 oracle on random and adversarial inputs.

Random cases (three seeds: random masks, NaN/inf/0/-1 junk at invalid pixels, weights, 3-D and
4-D layouts) and the edge cases of :data:`cases.EDGE_CASES`: empty masks, one empty image, a
single valid pixel, constant predictions and targets, integer ties, depths spanning 1e-3..1e3,
odd and even valid counts, an image with zero weights, no mask. The per-loss files check more
hyper-parameters; this file checks every kernel on the same hard inputs, and that invalid
pixels get exactly zero (and finite) gradient even when they hold NaN or inf.

Expected values always come from ``reference.py`` (which does not import depthloss).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

import pytest
import torch

import depthloss.functional as DF
import reference as R
from cases import (
    DTYPE_IDS,
    DTYPES,
    EDGE_CASES,
    SEEDS,
    Case,
    assert_invalid_grad_zero,
    assert_matches,
    edge_case,
    leaf,
    random_case,
)

SCOPE_REDUCTIONS = (
    ("image", "mean"),
    ("image", "sum"),
    ("image", "none"),
    ("image", "pixel-mean"),
    ("batch", "mean"),
    ("batch", "sum"),
)
# edge cases are about per-image values and which images count
EDGE_SCOPE_REDUCTIONS = (("image", "mean"), ("image", "none"), ("image", "pixel-mean"), ("batch", "mean"))


# hdn-random's pre-drawn uniforms, shared by every image of a case: (1, S, 6)
HDN_SAMPLES = torch.rand((1, 5, 6), generator=torch.Generator().manual_seed(14), dtype=torch.float64)


class LossSpec(NamedTuple):
    kernel: Callable[..., torch.Tensor]
    oracle: Callable[..., torch.Tensor]
    kwargs: Dict[str, Any]
    weighted: bool


def as_video(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """A ``(B, T, H, W)`` kernel or oracle on image cases: the rows of an image are the frames of a clip."""

    def call(pred: Any, target: Any, mask: Any = None, **kw: Any) -> torch.Tensor:
        def rows(x: Any) -> Any:
            return None if x is None else x.reshape(x.shape[0], x.shape[-2], 1, x.shape[-1])

        return fn(rows(pred), rows(target), rows(mask), **kw)

    call.video_kernel = fn  # type: ignore[attr-defined]
    return call


def _with_map(
    kernel: Callable[..., torch.Tensor], build: Callable[[torch.Tensor], torch.Tensor]
) -> Callable[..., torch.Tensor]:
    """A kernel whose third argument is a required map (``log_scale``, ``confidence``), built from pred's
    shape, called as ``kernel(pred, target, mask, **kw)``; ``.wraps`` names the kernel it covers."""

    def call(pred: torch.Tensor, target: torch.Tensor, mask: Any, **kw: Any) -> torch.Tensor:
        return kernel(pred, target, build(pred), mask, **kw)

    call.wraps = kernel  # type: ignore[attr-defined]
    return call


def _log_scale(pred: torch.Tensor) -> torch.Tensor:
    return torch.linspace(-1.5, 0.5, pred.numel(), dtype=pred.dtype).reshape(pred.shape)


def _confidence(pred: torch.Tensor) -> torch.Tensor:
    return torch.linspace(0.1, 0.9, pred.numel(), dtype=pred.dtype).reshape(pred.shape)


LOSSES: Dict[str, LossSpec] = {
    "ssi": LossSpec(DF.ssi, R.ssi, {}, True),
    "ssi_alpha0": LossSpec(DF.ssi, R.ssi, {"alpha": 0.0}, True),
    "ssi_mae": LossSpec(DF.ssi_mae, R.ssi_mae, {}, False),
    "ssi_mae_trim0": LossSpec(DF.ssi_mae, R.ssi_mae, {"trim": 0.0}, False),
    "ssi_mae_trim_max": LossSpec(DF.ssi_mae, R.ssi_mae, {"trim": 0.9999999}, False),
    "ssi_mae_midas_options": LossSpec(
        DF.ssi_mae,
        R.ssi_mae,
        {"data_scale": 0.5, "trim_denominator": "valid", "trim_rounding": "floor", "median_over": "all-pixels"},
        False,
    ),
    "ssi_mae_batch_trim": LossSpec(DF.ssi_mae, R.ssi_mae, {"trim_scope": "batch"}, False),
    "ssi_lsq": LossSpec(DF.ssi_lsq, R.ssi_lsq, {}, True),
    "depth_pro": LossSpec(DF.depth_pro, R.depth_pro, {"num_scales": 2}, False),
    "depth_pro_no_trim": LossSpec(DF.depth_pro, R.depth_pro, {"num_scales": 3, "trim": 0.0}, False),
    "mage": LossSpec(DF.mage, R.mage, {"num_scales": 2}, False),
    "male": LossSpec(DF.male, R.male, {"num_scales": 2}, False),
    "msge": LossSpec(DF.msge, R.msge, {"num_scales": 2}, False),
    "grad_l1": LossSpec(DF.grad_l1, R.grad_l1, {}, False),
    "grad_l1_atan": LossSpec(DF.grad_l1, R.grad_l1, {"angle": "atan"}, False),
    "hdn": LossSpec(DF.hdn, R.hdn, {}, False),
    "hdn_range_depth": LossSpec(DF.hdn, R.hdn, {"grouping": "depth", "bins": "range", "min_pixels": 2}, False),
    "hdn_random": LossSpec(DF.hdn_random, R.hdn_random, {"samples": HDN_SAMPLES}, False),
    "hdn_random_quantile": LossSpec(
        DF.hdn_random, R.hdn_random, {"samples": HDN_SAMPLES, "bins": "quantile", "whole_image": "all"}, False
    ),
    "silog": LossSpec(DF.silog, R.silog, {}, True),
    "silog_lambd1": LossSpec(DF.silog, R.silog, {"lambd": 1.0, "ratio": 1.0, "eps": 0.0}, True),
    "l1": LossSpec(DF.l1, R.l1, {}, True),
    "mse": LossSpec(DF.mse, R.mse, {}, True),
    "berhu": LossSpec(DF.berhu, R.berhu, {}, True),
    "abs_rel": LossSpec(DF.abs_rel, R.abs_rel, {}, True),
    "ssi_silog": LossSpec(DF.ssi_silog, R.ssi_silog, {}, True),
    "enhanced_ssi": LossSpec(DF.enhanced_ssi, R.enhanced_ssi, {"progress": 0.3}, False),
    "progressive_ssi": LossSpec(
        DF.progressive_ssi, R.progressive_ssi, {"progress": 0.6, "weight_schedule": "cosine"}, False
    ),
    "midas": LossSpec(DF.midas, R.midas, {"scales": 3}, False),
    "ssi_trim": LossSpec(DF.ssi_trim, R.ssi_trim, {"scales": 3}, False),
    "scale_adaptive": LossSpec(DF.scale_adaptive, R.scale_adaptive, {"progress": 0.4, "num_scales": 3}, False),
    "near_field_ssi_silog": LossSpec(
        DF.near_field_ssi_silog, R.near_field_ssi_silog, {"progress": 0.5, "threshold_schedule": "linear"}, True
    ),
    "temporal_gradient_matching": LossSpec(
        as_video(DF.temporal_gradient_matching), as_video(R.temporal_gradient_matching), {"threshold": 0.5}, False
    ),
    "video_depth": LossSpec(as_video(DF.video_depth), as_video(R.video_depth), {"scales": 2, "threshold": 0.5}, False),
    "gaussian_nll": LossSpec(_with_map(DF.gaussian_nll, _log_scale), _with_map(R.gaussian_nll, _log_scale), {}, False),
    "laplace_nll": LossSpec(
        _with_map(DF.laplace_nll, _log_scale), _with_map(R.laplace_nll, _log_scale), {"residual": "linear"}, False
    ),
    "confidence": LossSpec(
        _with_map(DF.confidence_loss, _confidence),
        _with_map(R.confidence_loss, _confidence),
        {"detach_pred": False},
        False,
    ),
    "confidence_unidepth": LossSpec(
        _with_map(DF.confidence_loss, _confidence),
        _with_map(R.confidence_loss, _confidence),
        {"detach_pred": False, "form": "unidepth"},
        False,
    ),
    "local_ssi": LossSpec(DF.local_ssi, R.local_ssi, {"num_windows": 6, "output": "linear"}, False),
    "normal": LossSpec(DF.normal, R.normal, {"K": (4.0, 4.0, 3.0, 2.5), "stencil": "forward"}, False),
    "vnl": LossSpec(DF.vnl, lambda *a, **kw: _vnl_oracle(*a, **kw), {"K": (4.0, 4.0, 3.0, 2.5), "seed": 0}, False),
}


def _vnl_oracle(pred: torch.Tensor, target: torch.Tensor, mask: Any, K: Any, seed: int, **kw: Any) -> torch.Tensor:
    """The loop oracle on the triplets the kernel draws with ``seed`` (the sampling is reproduced, not the math)."""
    from depthloss.functional.vnl import vnl_num_samples

    valid = torch.ones_like(pred, dtype=torch.bool) if mask is None else mask
    samples = DF.vnl_samples(valid, vnl_num_samples(pred.shape[-2], pred.shape[-1], 0.15), seed=seed)
    return R.vnl(pred, target, mask, K, samples=samples, **kw)


def _ranking_oracle(pred: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor], **kw: Any) -> torch.Tensor:
    """The loop oracle on the pairs of the loop sampler, fed the uniforms ``ranking(seed=0)`` draws."""
    from depthloss.functional.sampling import hashed_uniform

    n, seed = kw.pop("num_pairs"), kw.pop("seed")
    k = int(n * 0.75) // 3
    b, r = pred.shape[0], n - 3 * k
    u = [hashed_uniform(shape, pred, seed, i + 1).expand(b, *shape) for i, shape in enumerate(((k,), (4, k), (r, 2)))]
    pairs = R.ranking_pairs(
        target, mask, None, n, 0.75, 2, 30, 0.1, None, "gradient", anchor_u=u[0], dist_u=u[1], pair_u=u[2]
    )
    return R.ranking(pred, target, mask, pairs=pairs, **kw)


LOSSES["ranking"] = LossSpec(DF.ranking, _ranking_oracle, {"num_pairs": 60, "seed": 0}, False)


def loss_tolerance(name: str, case: Case, dtype: torch.dtype) -> Dict[str, float]:
    """Extra absolute tolerance where a float32 kernel legitimately loses digits.

    - SILog-type losses form the radicand from sums: an absolute error of a few ulps of E[g²],
      amplified by the square root when the radicand is near 0 (constant log-ratio, lambd = 1);
    - least-squares fits: the shift is a difference of terms of the size of the target (1e3 in
      ``wide_range``);
    - MAD-normalized losses divide by a MAD that may sit at eps: float32 residuals of the size
      ``|x| / eps``.
    """
    mask = case.mask if case.mask is not None else torch.ones_like(case.pred, dtype=torch.bool)
    p, t = torch.where(mask, case.pred.double(), 1.0), torch.where(mask, case.target.double(), 1.0)
    base = 2e-6 if dtype == torch.float32 else 1e-12
    if name.startswith("silog") or name in ("ssi_silog", "near_field_ssi_silog"):
        g = torch.log(p) - torch.log(t)
        ratio = LOSSES[name].kwargs.get("ratio", 10.0)
        return {"atol": ratio * math.sqrt(64 * torch.finfo(dtype).eps * float((g * g).max())) + base}
    if dtype == torch.float64:
        return {}
    if name in ("ssi_lsq", "midas", "local_ssi"):
        return {"atol": 64 * torch.finfo(dtype).eps * float(t.abs().max()) ** 2 + 2e-6}
    return {}


def run_loss(name: str, case: Case, reduction: str, scope: str, use_weights: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    spec = LOSSES[name]
    kw = dict(spec.kwargs, reduction=reduction, scope=scope)
    if spec.weighted:
        kw["weights"] = case.weights if use_weights else None
    return spec.kernel(case.pred, case.target, case.mask, **kw), spec.oracle(case.pred, case.target, case.mask, **kw)


def weight_options(name: str) -> Tuple[bool, ...]:
    return (False, True) if LOSSES[name].weighted else (False,)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_random(name: str, seed: int, dtype: torch.dtype) -> None:
    case = random_case(seed, dtype)
    for scope, reduction in SCOPE_REDUCTIONS:
        for use_weights in weight_options(name):
            actual, expected = run_loss(name, case, reduction, scope, use_weights)
            assert_matches(actual, expected, dtype, **loss_tolerance(name, case, dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("edge", EDGE_CASES)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_edge_cases(name: str, edge: str, dtype: torch.dtype) -> None:
    case = edge_case(edge, dtype)
    for scope, reduction in EDGE_SCOPE_REDUCTIONS:
        for use_weights in weight_options(name):
            actual, expected = run_loss(name, case, reduction, scope, use_weights)
            assert torch.isfinite(actual).all()
            assert_matches(actual, expected, dtype, **loss_tolerance(name, case, dtype))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_empty_mask_is_exactly_zero_with_zero_gradient(name: str) -> None:
    case = edge_case("empty_all", torch.float64)
    for scope, reduction in SCOPE_REDUCTIONS:
        for use_weights in weight_options(name):
            actual, _ = run_loss(name, case, reduction, scope, use_weights)
            expected_shape = (3,) if reduction == "none" else ()
            assert actual.shape == expected_shape
            assert torch.equal(actual, torch.zeros(expected_shape, dtype=torch.float64)), actual
    spec = LOSSES[name]
    pred, target = leaf(case.pred), leaf(case.target)
    loss = spec.kernel(pred, target, case.mask, **spec.kwargs)
    loss.backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred)) and torch.equal(target.grad, torch.zeros_like(target))


@pytest.mark.parametrize("scope", ("image", "batch"))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_invalid_pixels_get_zero_gradient(name: str, dtype: torch.dtype, scope: str) -> None:
    case = edge_case("one_empty_image", dtype)  # NaN/inf/-inf/0/-1 at invalid pixels, image 1 empty
    assert case.mask is not None and not torch.isfinite(case.pred[~case.mask]).all()
    spec = LOSSES[name]
    pred, target, weights = leaf(case.pred), leaf(case.target), leaf(case.weights)
    kw = dict(spec.kwargs, scope=scope)
    if spec.weighted:
        kw["weights"] = weights
    loss = spec.kernel(pred, target, case.mask, **kw)
    assert torch.isfinite(loss)
    loss.backward()
    assert_invalid_grad_zero(pred.grad, case.mask)
    assert_invalid_grad_zero(target.grad, case.mask)
    if spec.weighted and weights.grad is not None:
        assert_invalid_grad_zero(weights.grad, case.mask)
    if scope == "image":
        assert torch.equal(pred.grad[1], torch.zeros_like(pred.grad[1]))
    assert (pred.grad[case.mask] != 0).any(), "the valid pixels do receive a gradient"


def test_every_functional_loss_is_covered() -> None:
    """A new functional loss joins this file: every loss kernel exported by ``depthloss.functional``."""
    import depthloss

    kernels = {getattr(spec.kernel, "video_kernel", spec.kernel) for spec in LOSSES.values()}
    kernels |= {getattr(spec.kernel, "wraps", None) for spec in LOSSES.values()}
    for name in depthloss.list_losses():
        fn = depthloss.loss_info(name).functional
        assert fn is None or fn in kernels, f"{name}: add its kernel and oracle to LOSSES"
