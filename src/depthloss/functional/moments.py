"""Masked, weighted per-image moments and the sufficient statistics behind them."""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor

from depthloss.functional._checks import check_choice
from depthloss.functional._common import SCOPES, Scope, autocast_off, per_image, prepare_one, div_count

__all__ = ["masked_mean", "masked_var"]


class Moments(NamedTuple):
    """Sufficient statistics of weighted values per group: ``Σw``, ``Σw·x``, ``Σw·x²``.

    Sums (not means) so that they can be added across images or all-reduced across ranks.
    """

    sw: Tensor
    swx: Tensor
    swx2: Tensor

    @property
    def mean(self) -> Tensor:
        """``Σw·x / Σw`` (0 where ``Σw = 0``)."""
        return div_count(self.swx, self.sw)

    @property
    def second(self) -> Tensor:
        """``Σw·x² / Σw`` (0 where ``Σw = 0``)."""
        return div_count(self.swx2, self.sw)


def moments(x: Tensor, w: Tensor) -> Moments:
    """Row sums ``Σw``, ``Σw·x``, ``Σw·x²`` of ``(G, N)`` tensors; ``x`` must be finite where ``w > 0``."""
    wx = w * x
    return Moments(w.sum(dim=-1), wx.sum(dim=-1), (wx * x).sum(dim=-1))


@autocast_off
def masked_mean(
    x: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    *,
    scope: Scope = "image",
) -> Tensor:
    r"""Weighted mean of the valid pixels of each image.

    .. math:: \mu = \frac{\sum_i w_i x_i}{\sum_i w_i}

    Args:
        x: ``(B, 1, H, W)`` or ``(B, H, W)`` floating map.
        mask: bool, same shape; ``None`` means every pixel is valid.
        weights: non-negative float weights, same shape (default 1). Values at invalid
            pixels are ignored.
        scope: ``"image"`` (default) or ``"batch"`` to pool the whole batch.

    Returns:
        ``(B,)`` means, 0 for images without valid pixels (or zero total weight). Under
        ``scope="batch"`` every entry holds the pooled mean.

    Example:
        >>> x = torch.tensor([[[1.0, 2.0], [3.0, 10.0]]])
        >>> mask = torch.tensor([[[True, True], [True, False]]])
        >>> masked_mean(x, mask)
        tensor([2.])
    """
    check_choice("scope", scope, SCOPES)
    p = prepare_one(x, mask, weights, scope)
    return per_image(moments(p.x, p.w).mean, x.shape[0], scope)


@autocast_off
def masked_var(
    x: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    *,
    scope: Scope = "image",
) -> Tensor:
    r"""Weighted (population) variance of the valid pixels of each image.

    .. math:: \sigma^2 = \frac{\sum_i w_i x_i^2}{\sum_i w_i} - \mu^2

    computed in the numerically stable centred form :math:`\sum_i w_i (x_i-\mu)^2 / \sum_i w_i`
    (the same quantity, never negative).

    Args:
        x: ``(B, 1, H, W)`` or ``(B, H, W)`` floating map.
        mask: bool, same shape; ``None`` means every pixel is valid.
        weights: non-negative float weights, same shape (default 1).
        scope: ``"image"`` (default) or ``"batch"``.

    Returns:
        ``(B,)`` variances, 0 for images without valid pixels.

    Example:
        >>> x = torch.tensor([[[1.0, 2.0], [3.0, 10.0]]])
        >>> mask = torch.tensor([[[True, True], [True, False]]])
        >>> masked_var(x, mask)
        tensor([0.6667])
    """
    check_choice("scope", scope, SCOPES)
    p = prepare_one(x, mask, weights, scope)
    m = moments(p.x, p.w)
    centred = p.x - m.mean.unsqueeze(-1)
    var = div_count((p.w * centred * centred).sum(dim=-1), m.sw)
    return per_image(var, x.shape[0], scope)
