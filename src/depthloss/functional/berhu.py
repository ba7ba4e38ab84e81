"""Reverse Huber (berHu) loss."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from depthloss._checks import SCOPES, check_float, check_reduction
from depthloss.functional._plumbing import Reduction, Scope, autocast_off, prepare, reduce_images
from depthloss.functional.statistics import row_mean

__all__ = ["berhu"]


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
    detached, the textbook definition (continuous at ``|d| = c``).

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)``.
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        weights: optional non-negative per-pixel weights (a weighted mean).
        threshold: the fraction of the largest residual where the loss turns quadratic,
            ``> 0`` (default 0.2).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"`` (``(B,)``).
        scope: ``"image"`` (default) or ``"batch"`` (one ``c`` and one mean for the batch).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Reference:
        I. Laina et al., *Deeper Depth Prediction with Fully Convolutional Residual
        Networks*, 3DV 2016.

    Example:
        >>> berhu(torch.tensor([[[0.0, 0.0]]]), torch.tensor([[[0.1, 1.0]]]))  # c = 0.2
        tensor(1.3500)
    """
    check_float("threshold", threshold, low=0.0, low_inclusive=False)
    check_reduction(reduction, scope, SCOPES, "berhu")
    p = prepare(pred, target, mask, weights, scope)
    d = (p.pred - p.target).abs()  # 0 at invalid pixels
    c = (threshold * d.amax(dim=-1, keepdim=True)).detach() if d.shape[-1] else d.sum(-1, keepdim=True)
    c_safe = torch.where(c > 0, c, torch.ones_like(c))
    value = row_mean(torch.where(d <= c, d, (d * d + c * c) / (2.0 * c_safe)), p.w)
    return reduce_images(value, p.n_valid, reduction)
