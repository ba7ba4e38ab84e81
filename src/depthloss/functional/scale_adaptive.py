"""Scale-adaptive loss: a MAD-normalized / metric residual blend over a sparse-aware pyramid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional

import torch
from torch import Tensor

from depthloss._checks import (
    SCOPES,
    check_choice,
    check_float,
    check_int,
    check_mask,
    check_pair,
    check_progress,
    check_reduction,
)
from depthloss.functional._plumbing import (
    Progress,
    Reduction,
    Scope,
    as_progress,
    autocast_off,
    compute_dtype,
    reduce_images,
    rows,
    safe_div,
)
from depthloss.functional.image import SPARSE_MODES, SparseMode, derivatives, downsample_sparse, masked_mean_pool
from depthloss.functional.schedules import SCHEDULE_KINDS, ScheduleKind, scale_weights, schedule
from depthloss.functional.statistics import mad_rows

__all__ = ["ScaleAdaptiveConfig", "scale_adaptive"]


class ScaleAdaptiveTerms(NamedTuple):
    """Per-image loss, the per-image valid counts at full resolution, and detached metrics."""

    value: Tensor
    n_valid: Tensor
    metrics: Dict[str, Tensor]


@dataclass(frozen=True)
class ScaleAdaptiveConfig:
    """Validated hyper-parameters of :func:`scale_adaptive` (see its arguments)."""

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


def scale_adaptive_terms(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor],
    progress: Progress,
    cfg: ScaleAdaptiveConfig,
    scope: str,
) -> ScaleAdaptiveTerms:
    """The loss per image and its metrics (arguments validated, maps in the loss space)."""
    dtype = compute_dtype(pred, target)
    shape = (pred.shape[0], pred.shape[-2], pred.shape[-1])
    valid = torch.ones(shape, dtype=torch.bool, device=pred.device) if mask is None else mask.reshape(shape)
    # invalid pixels are replaced before any arithmetic: they never reach a value or a gradient
    x = torch.where(valid, pred.to(dtype).reshape(shape), 0.0)
    g = torch.where(valid, target.to(dtype).reshape(shape), 0.0)

    t = as_progress(progress, x)
    alpha = (
        schedule(t, cfg.alpha_schedule, cfg.alpha_start, cfg.alpha_end).to(dtype).detach()
    )  # a hyper-parameter: no gradient
    level_weights = scale_weights(t, cfg.num_scales, cfg.scale_schedule).to(dtype)

    count0 = rows(valid, scope).sum(dim=-1)
    weighted: List[Tensor] = []
    per_level: List[List[Tensor]] = []  # per level: loss, l1, grad, valid fraction, stencil fraction
    for level in range(cfg.num_scales):
        factor = min(2**level, max(shape[1], shape[2], 1))  # levels past the image size: one pixel
        # the target pooled sparse-aware; the prediction as the mean of the same valid pixels
        g_l, m_l = downsample_sparse(g, valid, factor, cfg.gt_downsample) if level else (g, valid)
        x_l = masked_mean_pool(x, valid, factor).depth if level else x
        xr, gr, mr = rows(x_l, scope), rows(g_l, scope), rows(m_l, scope)
        n = mr.sum(dim=-1)
        p_hat = mad_rows(xr, mr, n, cfg.eps)
        g_hat = mad_rows(gr, mr, n, cfg.eps)
        # the metric term's unit: the target's MAD, floored relative to its median so a
        # (nearly) constant level (one return, a flat wall) stays well conditioned
        unit = torch.maximum(g_hat.scale, cfg.scale_floor * g_hat.shift.abs()).unsqueeze(-1)
        residual = alpha * (p_hat.x_hat - g_hat.x_hat) + (1.0 - alpha) * (xr - gr) / unit
        residual = torch.where(mr, residual, 0.0)

        l1 = safe_div(residual.abs().sum(dim=-1), n.to(dtype))
        (gx, gy), (stencil, _) = derivatives(residual.reshape(x_l.shape), m_l, "sobel")
        grad_sum = rows(torch.where(stencil, gx.abs() + gy.abs(), 0.0), scope).sum(dim=-1)
        grad = safe_div(grad_sum, n.to(dtype))
        level_loss = (1.0 - cfg.lambda_sg) * l1 + cfg.lambda_sg * grad
        weighted.append(level_weights[level] * level_loss)

        pixels = mr.shape[-1]
        stencils = rows(stencil, scope).sum(dim=-1).to(dtype)
        per_level.append([level_loss, l1, grad, n / pixels, safe_div(stencils, n.to(dtype))])
    total = torch.stack(weighted).sum(dim=0)
    metrics = _level_metrics(per_level, count0, level_weights)
    metrics["alpha_t"] = alpha
    metrics["num_valid_pixels"] = count0.sum()
    return ScaleAdaptiveTerms(total, count0, metrics)


_LEVEL_METRICS = ("loss", "l1", "grad", "valid_frac", "stencil_frac")


def _level_metrics(per_level: List[List[Tensor]], count0: Tensor, level_weights: Tensor) -> Dict[str, Tensor]:
    """Means over the images with valid pixels of the per-level values (detached)."""
    values = torch.stack([torch.stack(v) for v in per_level]).detach()  # (levels, metrics, images)
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
    lambda_sg: float = 0.5,
    num_scales: int = 4,
    alpha_schedule: ScheduleKind = "linear",
    alpha_start: float = 1.0,
    alpha_end: float = 0.0,
    scale_schedule: ScheduleKind = "linear",
    gt_downsample: SparseMode = "mean",
    eps: float = 1e-6,
    scale_floor: float = 0.05,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Scale-adaptive loss over a sparse-aware pyramid (the seed integration report, fixed).

    For each level :math:`l` of a factor-2 pyramid and each image:

    .. math::
        R = \alpha_t\,(\hat p - \hat g) + (1 - \alpha_t)\,\frac{p - g}{s_g}, \qquad
        \mathcal L_l = (1 - \lambda_{sg})\,\operatorname{mean}_{valid}|R| + \lambda_{sg}\,\mathcal G(R)

    where :math:`\hat p, \hat g` are median/MAD-normalized (:func:`mad_normalize`),
    :math:`s_g = \max(\mathrm{MAD}_g, \text{scale\_floor}\cdot|\mathrm{med}_g|)` is the target's MAD,
    floored relative to its median so near-constant levels stay well conditioned, and
    :math:`\mathcal G` is the Sobel gradient term (``Σ |∂x R| + |∂y R|`` over valid 3x3
    stencils, divided by the valid-pixel count). ``α_t = schedule(progress, alpha_schedule,
    alpha_start, alpha_end)``: α = 1 is scale-and-shift invariant, α = 0 is metric in the
    target's MAD units. The total is :math:`\sum_l w_l \mathcal L_l` with
    ``w = scale_weights(progress, num_scales, scale_schedule)``.

    The target and mask of level :math:`l` are pooled by :func:`downsample_sparse` with
    ``gt_downsample`` (``"nearest"`` reproduces the seed); the prediction is the mean of the
    same valid pixels of each block (:func:`~depthloss.functional.image.masked_mean_pool`), so
    invalid pixels receive exactly zero gradient at every level and may hold anything, NaN
    included. On sparse LiDAR targets few full 3x3 stencils are valid at full resolution;
    the coarser levels give the gradient term its support.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` prediction in the loss space (clamped depth,
            or inverse depth).
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        progress: training progress in ``[0, 1]`` (float or 0-dim tensor).
        lambda_sg: weight of the gradient term in ``[0, 1]`` (default 0.5).
        num_scales: pyramid levels, ``>= 1`` (default 4).
        alpha_schedule: schedule kind of α (default ``"linear"``).
        alpha_start: α at progress 0, in ``[0, 1]`` (default 1: scale-and-shift invariant).
        alpha_end: α at progress 1, in ``[0, 1]`` (default 0: metric).
        scale_schedule: schedule kind of the level weights (default ``"linear"``).
        gt_downsample: sparse pooling of the target: ``"mean"`` (default), ``"min"`` or
            ``"nearest"`` (the seed's).
        eps: lower bound on MAD scales (default ``1e-6``).
        scale_floor: relative floor of the metric term's unit (default 0.05).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"``.
        scope: ``"image"`` (default) or ``"batch"`` (medians and MADs over the batch).

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
    check_progress(progress)
    cfg = ScaleAdaptiveConfig(
        lambda_sg, num_scales, alpha_schedule, alpha_start, alpha_end, scale_schedule, gt_downsample, eps, scale_floor
    )
    check_reduction(reduction, scope, SCOPES, "scale-adaptive")
    t = scale_adaptive_terms(pred, target, mask, progress, cfg, scope)
    return reduce_images(t.value, t.n_valid, reduction)
