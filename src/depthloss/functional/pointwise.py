"""Masked per-pixel losses: L1, MSE, reverse Huber (berHu) and absolute relative error."""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from depthloss.functional._checks import check_float
from depthloss.functional._common import (
    Prepared,
    Reduction,
    Scope,
    autocast_off,
    check_reduction,
    float_mask,
    prepare,
    reduce_images,
    div_count,
)

__all__ = ["abs_rel", "berhu", "l1", "mse"]


def _weighted_mean(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor],
    weights: Optional[Tensor],
    reduction: str,
    scope: str,
    pixel_loss: Callable[[Prepared], Tensor],
    fill: float = 0.0,
) -> Tensor:
    """Per-image ``Σ w·ℓ / Σ w`` of a per-pixel loss, then the reduction."""
    check_reduction(reduction, scope)
    p = prepare(pred, target, mask, weights, scope, fill=fill)
    value = div_count((p.w * pixel_loss(p)).sum(dim=-1), p.w.sum(dim=-1))
    return reduce_images(value, p.count, reduction)


_DOC_ARGS = """
    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)``.
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        weights: optional non-negative per-pixel weights (weighted mean).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"`` (``(B,)``).
        scope: ``"image"`` (default) or ``"batch"`` (one mean over all valid pixels of the batch).
"""


@autocast_off
def l1(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Masked mean absolute error :math:`\sum_i w_i |p_i - g_i| / \sum_i w_i` per image.
    {args}
    Example:
        >>> l1(torch.tensor([[[1.0, 2.0]]]), torch.tensor([[[2.0, 4.0]]]))
        tensor(1.5000)
    """
    return _weighted_mean(pred, target, mask, weights, reduction, scope, lambda p: (p.pred - p.target).abs())


@autocast_off
def mse(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Masked mean squared error :math:`\sum_i w_i (p_i - g_i)^2 / \sum_i w_i` per image.
    {args}
    Example:
        >>> mse(torch.tensor([[[1.0, 2.0]]]), torch.tensor([[[2.0, 4.0]]]))
        tensor(2.5000)
    """
    return _weighted_mean(pred, target, mask, weights, reduction, scope, lambda p: (p.pred - p.target).square())


def _berhu_pixels(p: Prepared, threshold: float) -> Tensor:
    d = (p.pred - p.target).abs()
    # c = threshold * max |d| over the group's valid pixels, detached (Laina et al. 2016)
    c = (threshold * (d * float_mask(p.valid, d.dtype)).amax(dim=-1, keepdim=True)).detach()
    c_safe = torch.where(c > 0, c, torch.ones_like(c))
    quadratic = (d * d + c * c) / (2.0 * c_safe)
    return torch.where(d <= c, d, quadratic)


@autocast_off
def berhu(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    threshold: float = 0.2,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Reverse Huber loss (Laina et al., 2016), masked mean per image.

    .. math:: \mathcal B(d) = \begin{cases} |d| & |d| \le c \\ \frac{d^2 + c^2}{2c} & |d| > c \end{cases},
              \qquad c = 0.2 \max_i |d_i|

    with ``c`` computed per image over valid pixels (per batch under ``scope="batch"``) and
    detached, the textbook definition (continuous at ``|d| = c``). ``threshold`` (default
    0.2, ``> 0``) is the fraction of the largest residual where the loss turns quadratic.
    {args}
    Example:
        >>> berhu(torch.tensor([[[0.0, 0.0]]]), torch.tensor([[[0.1, 1.0]]]))  # c = 0.2
        tensor(1.3500)
    """
    check_float("threshold", threshold, low=0.0, low_inclusive=False)
    return _weighted_mean(pred, target, mask, weights, reduction, scope, lambda p: _berhu_pixels(p, threshold))


@autocast_off
def abs_rel(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Absolute relative error :math:`\sum_i w_i |p_i - g_i| / g_i \,/\, \sum_i w_i` per image.

    Divides by the *target* (the seed divided by the prediction, which rewards predicting
    large values). Targets must be positive where valid; invalid pixels are sanitized to 1
    before the division.
    {args}
    Example:
        >>> abs_rel(torch.tensor([[[1.0, 3.0]]]), torch.tensor([[[2.0, 4.0]]]))
        tensor(0.3750)
    """
    return _weighted_mean(
        pred, target, mask, weights, reduction, scope, lambda p: (p.pred - p.target).abs() / p.target, fill=1.0
    )


for _fn in (l1, mse, berhu, abs_rel):
    _fn.__doc__ = (_fn.__doc__ or "").replace("{args}", _DOC_ARGS)
