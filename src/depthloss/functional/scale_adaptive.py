"""Scale-adaptive loss: a MAD-normalized / metric residual blend over a sparse-aware pyramid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from depthloss.functional._checks import check_choice, check_float, check_int, check_mask, check_pair
from depthloss.functional._common import (
    Reduction,
    Scope,
    abs_sum,
    autocast_off,
    check_reduction,
    compute_dtype,
    count_valid,
    div_count,
    float_mask,
    groups,
    reduce_images,
)
from depthloss.functional._fused import sanitize
from depthloss.functional.gradients import stencil_abs_sums_and_counts
from depthloss.functional.median import mad_residual_rows
from depthloss.functional.pyramid import SPARSE_MODES, SparseMode, area_pool
from depthloss.functional.schedules import SCHEDULE_KINDS, Progress, ScheduleKind, scale_weights, schedule

__all__ = ["scale_adaptive"]


class ScaleAdaptiveTerms(NamedTuple):
    """Per-group loss, the per-group valid counts at full resolution, and detached metrics."""

    value: Tensor
    count: Tensor
    metrics: Dict[str, Tensor]


@dataclass(frozen=True)
class ScaleAdaptiveConfig:
    """Hyper-parameters of :func:`scale_adaptive` (validated on construction).

    Attributes:
        lambda_sg: weight of the gradient term in ``[0, 1]`` (default 0.5).
        num_scales: pyramid levels, ``>= 1`` (default 4).
        alpha_schedule: schedule kind of α (default ``"linear"``).
        alpha_start: α at progress 0, in ``[0, 1]`` (default 1: scale-and-shift invariant).
        alpha_end: α at progress 1, in ``[0, 1]`` (default 0: metric).
        scale_schedule: schedule kind of the level weights (default ``"linear"``).
        gt_downsample: sparse pooling of the target: ``"mean"`` (default), ``"min"`` or
            ``"nearest"`` (the seed's).
        eps: lower bound on MAD scales (default ``1e-6``).
        scale_floor: relative floor of the metric term's unit,
            ``s_g = max(MAD_g, scale_floor * |median_g|, eps)`` (default 0.05). A level whose
            target is (nearly) constant — one LiDAR return, a flat wall — has a MAD near 0;
            without the floor the metric residual ``(p - g) / s_g`` would explode.
    """

    lambda_sg: float = 0.5
    num_scales: int = 4
    alpha_schedule: ScheduleKind = "linear"
    alpha_start: float = 1.0
    alpha_end: float = 0.0
    scale_schedule: ScheduleKind = "linear"
    gt_downsample: SparseMode = "mean"
    eps: float = 1e-6
    scale_floor: float = 0.05

    def __post_init__(self) -> None:
        check_float("lambda_sg", self.lambda_sg, low=0.0, high=1.0)
        check_int("num_scales", self.num_scales, low=1)
        check_choice("alpha_schedule", self.alpha_schedule, SCHEDULE_KINDS)
        check_float("alpha_start", self.alpha_start, low=0.0, high=1.0)
        check_float("alpha_end", self.alpha_end, low=0.0, high=1.0)
        check_choice("scale_schedule", self.scale_schedule, SCHEDULE_KINDS)
        check_choice("gt_downsample", self.gt_downsample, SPARSE_MODES)
        check_float("eps", self.eps, low=0.0, low_inclusive=False)
        check_float("scale_floor", self.scale_floor, low=0.0)


class _SparseLevel(NamedTuple):
    """One level of the target pyramid: depth (0 off-mask), mask, and the pooling state."""

    depth: Tensor
    mask: Tensor
    state: Tensor  # "mean": running sum of valid depths; "min": depth with +inf off-mask
    count: Tensor  # "mean": running count of valid pixels (float); unused otherwise


def _sum_pool2(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, 2, 2, ceil_mode=True, divisor_override=1)


def _target_level0(g: Tensor, m: Tensor, m_f: Tensor, mode: str) -> _SparseLevel:
    if mode == "mean":
        return _SparseLevel(g, m, g, m_f)
    if mode == "min":
        return _SparseLevel(g, m, torch.where(m, g, float("inf")), g)
    return _SparseLevel(g, m, g, g)


def _target_halve(level: _SparseLevel, mode: str) -> _SparseLevel:
    """The next (factor-2) level, exactly as :func:`downsample_sparse` from full resolution would give."""
    if mode == "mean":  # sums and counts pool exactly, so the mean is over the whole block
        total, count = _sum_pool2(level.state), _sum_pool2(level.count)
        mask = count > 0
        return _SparseLevel(total / count.clamp(min=1.0), mask, total, count)
    if mode == "min":
        nearest = -F.max_pool2d(-level.state, 2, 2, ceil_mode=True)
        mask = nearest < float("inf")
        return _SparseLevel(torch.where(mask, nearest, 0.0), mask, nearest, nearest)
    depth, mask = level.depth[..., ::2, ::2], level.mask[..., ::2, ::2]
    return _SparseLevel(depth, mask, depth, depth)


def _sobel_sums(r: Tensor, m: Tensor, scope: str) -> Tuple[Tensor, Tensor]:
    """Per-group ``Σ |∂x r| + |∂y r|`` over valid 3x3 stencils, and the number of such stencils."""
    sums, stencils = stencil_abs_sums_and_counts(r, m, 1, "sobel")
    sums, stencils = sums[:, 0], stencils[:, 0]
    if scope == "batch":
        return sums.sum().unsqueeze(0), stencils.sum().unsqueeze(0)
    return sums, stencils


def scale_adaptive_terms(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor],
    progress: Progress,
    cfg: ScaleAdaptiveConfig,
    scope: str,
) -> ScaleAdaptiveTerms:
    """Compute the loss per group with its metrics; inputs already validated, in loss space."""
    dtype = compute_dtype(pred, target)
    x = pred.to(dtype).reshape(pred.shape[0], pred.shape[-2], pred.shape[-1])
    g = target.to(dtype).reshape(x.shape)
    m = torch.ones_like(x, dtype=torch.bool) if mask is None else mask.reshape(x.shape)
    m_f = float_mask(m, dtype)
    g = sanitize(g, m, 0.0)

    alpha = schedule(progress, cfg.alpha_schedule, cfg.alpha_start, cfg.alpha_end)
    level_weights = scale_weights(progress, cfg.num_scales, cfg.scale_schedule, device=x.device, dtype=dtype)
    if isinstance(alpha, Tensor):
        alpha = alpha.to(device=x.device, dtype=dtype)

    target_level = _target_level0(g, m, m_f, cfg.gt_downsample)
    x_l = x
    count0 = count_valid(groups(m, scope))
    weighted = []
    per_level = []  # per level: (loss, l1, grad, valid fraction, stencil fraction) per group
    for level in range(cfg.num_scales):
        if level > 0:
            x_l = area_pool(x_l, 2)
            target_level = _target_halve(target_level, cfg.gt_downsample)
        m_l = target_level.mask
        xr, gr, mr = groups(x_l, scope), groups(target_level.depth, scope), groups(m_l, scope)
        wr = groups(m_f, scope) if level == 0 else float_mask(mr, dtype)
        count = count0 if level == 0 else count_valid(mr)
        # R = α (p̂ − ĝ) + (1 − α)(p − g)/u, u = max(s_g, scale_floor·|med g|), in one fused function
        residual, _, _ = mad_residual_rows(xr, gr, mr, wr, count, alpha, cfg.eps, cfg.scale_floor)
        n_valid = wr.sum(dim=-1)
        l1 = div_count(abs_sum(residual), n_valid)
        grad_sum, stencils = _sobel_sums(residual.reshape(x_l.shape), m_l, scope)
        grad = div_count(grad_sum, n_valid)
        level_loss = (1.0 - cfg.lambda_sg) * l1 + cfg.lambda_sg * grad
        weighted.append(level_weights[level] * level_loss)
        pixels = x_l.shape[-2] * x_l.shape[-1] * (x_l.shape[0] if scope == "batch" else 1)
        per_level.append((level_loss, l1, grad, n_valid / pixels, div_count(stencils, n_valid)))
    total = torch.stack(weighted).sum(dim=0)
    metrics = _level_metrics(per_level, count0, level_weights)
    alpha_t = alpha if isinstance(alpha, Tensor) else torch.tensor(alpha, dtype=dtype, device=x.device)
    metrics["alpha_t"] = alpha_t.detach()
    metrics["num_valid_pixels"] = count0.sum().detach()
    return ScaleAdaptiveTerms(total, count0, metrics)


_LEVEL_METRICS = ("loss", "l1", "grad", "valid_frac", "stencil_frac")


def _level_metrics(per_level: list, count0: Tensor, level_weights: Tensor) -> Dict[str, Tensor]:
    """Batch means (over groups with valid pixels) of the per-level values, in one reduction."""
    values = torch.stack([torch.stack(v) for v in per_level]).detach()  # (levels, metrics, groups)
    has_valid = (count0 > 0).to(values.dtype)
    means = (values * has_valid).sum(dim=-1) / has_valid.sum().clamp(min=1.0)
    out: Dict[str, Tensor] = {}
    for level in range(len(per_level)):
        for j, name in enumerate(_LEVEL_METRICS):
            out[f"level{level}_{name}"] = means[level, j]
        out[f"level{level}_weight"] = level_weights[level].detach()
    return out


@autocast_off
def scale_adaptive(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    progress: Progress = 0.0,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
    **params: Any,
) -> Tensor:
    r"""Scale-adaptive loss over a sparse-aware pyramid (the seed integration report, fixed).

    For each level :math:`l` of a factor-2 pyramid (prediction area-pooled, target and mask
    pooled by :func:`downsample_sparse` with ``gt_downsample``) and each image:

    .. math::
        R = \alpha_t\,(\hat p - \hat g) + (1 - \alpha_t)\,\frac{p - g}{s_g}, \qquad
        \mathcal L_l = (1 - \lambda_{sg})\,\operatorname{mean}_{valid}|R| + \lambda_{sg}\,\mathcal G(R)

    where :math:`\hat p, \hat g` are median/MAD-normalized (:func:`mad_normalize`),
    :math:`s_g = \max(\mathrm{MAD}_g, 0.05\,|\mathrm{med}_g|)` is the target's MAD (floored
    relative to its median so near-constant levels stay well conditioned) and :math:`\mathcal G` is the Sobel gradient term of
    :func:`gradient_matching` (one level, valid 3x3 stencils, normalized by the valid-pixel
    count). ``α_t = schedule(progress, alpha_schedule, alpha_start, alpha_end)``:
    α = 1 is scale-and-shift invariant, α = 0 is metric in the target's MAD units. The total
    is :math:`\sum_l w_l \mathcal L_l` with ``w = scale_weights(progress, num_scales, scale_schedule)``.

    On sparse LiDAR targets few full 3x3 stencils are valid at full resolution; the coarser
    levels of the sparse-aware pyramid give the gradient term its support. The prediction
    pyramid is dense, so at coarser levels the gradient reaches every pixel of a block
    that holds a valid target.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` prediction in the loss space (clamped
            depth, or inverse depth). Must be finite everywhere (it is pooled densely).
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        progress: training progress in ``[0, 1]`` (float or 0-dim tensor).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"``.
        scope: ``"image"`` (default) or ``"batch"`` (medians and MADs over the batch).
        **params: hyper-parameters, the fields of :class:`ScaleAdaptiveConfig`
            (``lambda_sg=0.5, num_scales=4, alpha_schedule="linear", alpha_start=1.0,
            alpha_end=0.0, scale_schedule="linear", gt_downsample="mean", eps=1e-6,
            scale_floor=0.05``).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Example:
        >>> target = torch.rand(2, 1, 16, 16) + 1.0
        >>> scale_adaptive(3.0 * target + 2.0, target, progress=0.0) < 1e-5  # α = 1: invariant
        tensor(True)
        >>> scale_adaptive(3.0 * target + 2.0, target, progress=1.0) > 0.1  # α = 0: metric
        tensor(True)
    """
    check_pair(pred, target)
    check_mask(mask, pred)
    check_reduction(reduction, scope)
    t = scale_adaptive_terms(pred, target, mask, progress, ScaleAdaptiveConfig(**params), scope)
    return reduce_images(t.value, t.count, reduction)
