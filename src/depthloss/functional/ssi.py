"""Scale(-and-shift)-invariant losses: the seed's SSI, MiDaS's trimmed MAE and least-squares MSE."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from depthloss.functional._checks import check_float
from depthloss.functional._common import (
    GLOBAL_SCOPES,
    GlobalScope,
    Reduction,
    Scope,
    abs_sum,
    autocast_off,
    check_reduction,
    div_count,
    prepare,
    reduce_images,
    rowdot,
)
from depthloss.functional._fused import masked_diff
from depthloss.functional._select import kth_smallest
from depthloss.functional.lsq import lsq_rows
from depthloss.functional.median import mad_l1_rows, mad_rows
from depthloss.functional.moments import Moments, pair_moments

__all__ = ["ssi", "ssi_from_moments", "ssi_lsq", "ssi_mae", "trimmed_abs_mean_rows"]

# trim is applied as an exact integer fraction with this denominator (6 decimal places)
_TRIM_DENOMINATOR = 1_000_000


def ssi_from_moments(m: Moments, alpha: float) -> Tensor:
    """``var(d) + alpha * mean(d)^2`` from the sufficient statistics of ``d`` (0 where ``Σw = 0``)."""
    mean = m.mean
    var = (m.second - mean * mean).clamp(min=0.0)
    return var + alpha * mean * mean


@autocast_off
def ssi(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    alpha: float = 0.85,
    weights: Optional[Tensor] = None,
    *,
    reduction: Reduction = "mean",
    scope: GlobalScope = "image",
) -> Tensor:
    r"""The seed's scale-invariant loss on ``d = pred - target`` (usually inverse depth).

    .. math:: \mathcal L = \operatorname{var}_w(d) + \alpha\,\operatorname{mean}_w(d)^2,
              \quad \operatorname{mean}_w(d) = \frac{\sum_i w_i d_i}{\sum_i w_i},\
              \operatorname{var}_w(d) = \frac{\sum_i w_i d_i^2}{\sum_i w_i} - \operatorname{mean}_w(d)^2

    With ``alpha = 0`` the loss is invariant to ``pred -> pred + b``; with ``alpha = 1`` it is
    the (weighted) MSE. Weighted moments make the scale of ``weights`` cancel (the near-field
    analysis's solution 2-1), so no batch-dependent normalization is needed.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)``.
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        alpha: weight of the squared mean, ``>= 0`` (default 0.85, the seed's).
        weights: optional non-negative per-pixel weights.
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"``.
        scope: ``"image"`` (default), ``"batch"`` (packnet-sfm / seed pooling), or ``"global"``
            (the batch statistics summed over all ranks of the default process group)

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Example:
        >>> pred = torch.tensor([[[0.5, 0.6], [0.7, 0.8]]])
        >>> ssi(pred, pred - 0.1, alpha=0.0)  # a constant offset is free with alpha = 0
        tensor(0.)
        >>> ssi(pred, pred - 0.1)
        tensor(0.0085)
    """
    check_float("alpha", alpha, low=0.0)
    check_reduction(reduction, scope, GLOBAL_SCOPES)
    p = prepare(pred, target, mask, weights, scope, fill=None)
    value = ssi_from_moments(pair_moments(masked_diff(p.pred, p.target, p.valid), p), alpha)
    return reduce_images(value, p.count, reduction)


def trimmed_abs_mean_rows(residual: Tensor, valid: Tensor, count: Tensor, trim: float) -> Tensor:
    """Mean of the smallest ``count - floor(trim * count)`` values of ``|residual|`` over each row's valid entries.

    ``residual`` must be 0 off-mask. Exact with ties: the values below the cut-off ``tau``
    (the k-th smallest) are summed and the remaining ``k - #{r < tau}`` slots are filled
    with ``tau``. Rows without valid entries give 0.
    """
    if trim == 0.0:  # an L1 norm: no |r| buffer in the forward
        return div_count(abs_sum(residual), count.to(residual.dtype))
    r = residual.abs()
    # never round up to trim = 1 (keep >= 1 for every non-empty row, as trim < 1 promises)
    trim_num = min(round(trim * _TRIM_DENOMINATOR), _TRIM_DENOMINATOR - 1)
    keep = count - torch.div(count * trim_num, _TRIM_DENOMINATOR, rounding_mode="floor")
    tau = kth_smallest(r, valid, keep)
    below = valid & (r < tau.unsqueeze(-1))
    kept_sum = rowdot(r, below.view(torch.uint8).to(r.dtype))
    kept_sum = kept_sum + (keep - below.sum(dim=-1)).to(r.dtype) * tau
    return div_count(kept_sum, keep.to(r.dtype))


@autocast_off
def ssi_mae(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    trim: float = 0.2,
    eps: float = 1e-6,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Trimmed mean absolute error between median/MAD-normalized maps (MiDaS "ssitrim").

    .. math:: \mathcal L = \frac{1}{k} \sum_{\text{k smallest}} |\hat p_i - \hat g_i|,
              \qquad k = n - \lfloor \text{trim}\cdot n \rfloor

    with :math:`\hat p, \hat g` from :func:`mad_normalize` over the ``n`` valid pixels.
    Unlike the published code, the median is over valid pixels only and the trim drops the
    largest residuals of each image (not of a flattened batch or a size-1 dimension).
    Invariant to ``pred -> a*pred + b`` and ``target -> a*target + b`` for ``a > 0``.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)``.
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        trim: fraction of the largest residuals to drop, in ``[0, 1)`` (default 0.2, MiDaS);
            applied exactly to 6 decimal places.
        eps: lower bound on the MAD scale (default ``1e-6``).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"``.
        scope: ``"image"`` (default) or ``"batch"`` (normalization and trim over the batch).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Example:
        >>> target = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
        >>> ssi_mae(3.0 * target + 1.0, target)
        tensor(0.)
        >>> outlier = torch.tensor([[[1.0, 2.0], [3.0, 9.0]]])
        >>> ssi_mae(outlier, target, trim=0.0), ssi_mae(outlier, target, trim=0.25)
        (tensor(0.5556), tensor(0.3704))
    """
    check_float("trim", trim, low=0.0, high=1.0, high_inclusive=False)
    check_float("eps", eps, low=0.0, low_inclusive=False)
    check_reduction(reduction, scope)
    if trim == 0.0:  # the MAD-normalized L1 in one fused function (it sanitizes itself)
        p = prepare(pred, target, mask, None, scope, fill=None)
        value = div_count(mad_l1_rows(p.pred, p.target, p.valid, p.count, eps), p.n)
        return reduce_images(value, p.count, reduction)
    p = prepare(pred, target, mask, None, scope)
    p_hat = mad_rows(p.pred, p.valid, p.mask_f, p.count, eps).x_hat
    g_hat = mad_rows(p.target, p.valid, p.mask_f, p.count, eps).x_hat
    value = trimmed_abs_mean_rows(p_hat - g_hat, p.valid, p.count, trim)
    return reduce_images(value, p.count, reduction)


@autocast_off
def ssi_lsq(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""MSE after least-squares scale-and-shift alignment (MiDaS / DPT).

    .. math:: \mathcal L = \frac{\sum_i w_i (s\,p_i + t - g_i)^2}{\sum_i w_i}, \qquad
              (s, t) = \arg\min \sum_i w_i (s\,p_i + t - g_i)^2

    solved in closed form per image by :func:`lsq_scale_shift` (gradients flow through
    ``s`` and ``t``). Invariant to ``pred -> a*pred + b`` for ``a != 0``. MiDaS's data term
    divides by ``2M``; this is the plain mean (half MiDaS's value).

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` (MiDaS: disparity).
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        weights: optional non-negative per-pixel weights (fit and mean are weighted).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"``.
        scope: ``"image"`` (default) or ``"batch"`` (one fit for the batch).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Example:
        >>> target = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
        >>> ssi_lsq(0.5 * target - 2.0, target)
        tensor(0.)
    """
    check_reduction(reduction, scope)
    p = prepare(pred, target, mask, weights, scope)
    value = weighted_mse_rows(lsq_residual_rows(p.pred, p.target, p.w), p.w)
    return reduce_images(value, p.count, reduction)


def lsq_residual_rows(pred: Tensor, target: Tensor, w: Tensor) -> Tensor:
    """``s*pred + t - target`` with the per-row weighted least-squares ``(s, t)``."""
    fit = lsq_rows(pred, target, w)
    return fit.scale.unsqueeze(-1) * pred + fit.shift.unsqueeze(-1) - target


def weighted_mse_rows(residual: Tensor, w: Tensor) -> Tensor:
    """``Σ w r² / Σ w`` per row (0 where ``Σ w = 0``)."""
    return div_count((w * residual * residual).sum(dim=-1), w.sum(dim=-1))
