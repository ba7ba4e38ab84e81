"""Masked, weighted per-image moments and the sufficient statistics behind them."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from depthloss.functional._checks import check_choice
from depthloss.functional._common import GLOBAL_SCOPES, GlobalScope, autocast_off, div_count, per_image, prepare_one, rowdot
from depthloss.functional._distributed import all_reduce_sum, global_active

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


class _MomentSums(torch.autograd.Function):
    """``(Σw·x, Σw·x²)`` per row with a fused backward.

    Autograd through ``(w*x).sum()`` and ``(w*x*x).sum()`` materializes four full-size
    temporaries; here the forward uses dot products and the backward one buffer:
    ``∂/∂x = w·(g₁ + 2g₂x)``, ``∂/∂w = x·(g₁ + g₂x)``. With ``w = None`` the rows are
    unweighted and ``x`` is already 0 off the mask (``mask_f``, 0/1 floats, masks the gradient).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, w: Optional[Tensor], mask_f: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        wx = x if w is None else w * x
        ctx.save_for_backward(x, w, mask_f)
        return wx.sum(dim=-1), rowdot(wx, x)

    @staticmethod
    def backward(ctx: Any, g1: Tensor, g2: Tensor) -> Tuple[Optional[Tensor], Optional[Tensor], None]:
        x, w, mask_f = ctx.saved_tensors
        g1, g2 = g1.unsqueeze(-1), g2.unsqueeze(-1)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = x * (2.0 * g2)
            grad_x.add_(g1)
            grad_x.mul_(mask_f if w is None else w)
        if w is not None and ctx.needs_input_grad[1]:
            grad_w = x * g2
            grad_w.add_(g1)
            grad_w.mul_(x)
        return grad_x, grad_w, None


def moments(x: Tensor, w: Tensor, sw: Optional[Tensor] = None) -> Moments:
    """Row sums ``Σw``, ``Σw·x``, ``Σw·x²`` of ``(G, N)`` tensors; ``x`` must be finite where ``w > 0``.

    ``sw`` may be given when ``x`` is 0 wherever ``w`` should not count (then ``w`` need not be
    masked, only ``sw`` restricted to the valid pixels).
    """
    s1, s2 = _MomentSums.apply(x, w, None)
    return Moments(w.sum(dim=-1) if sw is None else sw, s1, s2)


def all_reduce_moments(m: Moments, scope: str) -> Moments:
    """``m`` summed over the ranks under an active ``scope="global"`` (one collective), else ``m``."""
    if not global_active(scope):
        return m
    return Moments(*all_reduce_sum(m.sw.to(m.swx.dtype), m.swx, m.swx2, scope=scope))


def pair_moments(x: Tensor, p: Any) -> Moments:
    """Moments of a map derived from a :class:`Prepared` pair that is 0 off-mask (all-reduced under ``scope="global"``)."""
    m = unit_moments(x, p.mask_f, p.n) if p.unit else moments(x, p.w)
    return all_reduce_moments(m, p.scope)


def unit_moments(x: Tensor, mask_f: Tensor, n: Tensor) -> Moments:
    """:func:`moments` with unit weights on a 0/1 float mask, for ``x`` that is already 0 off it.

    ``n`` is the per-row count (``mask_f.sum(-1)``): no products with the mask in the forward.
    """
    s1, s2 = _MomentSums.apply(x, None, mask_f)
    return Moments(n, s1, s2)


@autocast_off
def masked_mean(
    x: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    *,
    scope: GlobalScope = "image",
) -> Tensor:
    r"""Weighted mean of the valid pixels of each image.

    .. math:: \mu = \frac{\sum_i w_i x_i}{\sum_i w_i}

    Args:
        x: ``(B, 1, H, W)`` or ``(B, H, W)`` floating map.
        mask: bool, same shape; ``None`` means every pixel is valid.
        weights: non-negative float weights, same shape (default 1). Values at invalid
            pixels are ignored.
        scope: ``"image"`` (default), ``"batch"`` to pool the whole batch, or ``"global"``
            to pool the batch over all ranks of the default process group.

    Returns:
        ``(B,)`` means, 0 for images without valid pixels (or zero total weight). Under
        ``scope="batch"`` every entry holds the pooled mean.

    Example:
        >>> x = torch.tensor([[[1.0, 2.0], [3.0, 10.0]]])
        >>> mask = torch.tensor([[[True, True], [True, False]]])
        >>> masked_mean(x, mask)
        tensor([2.])
    """
    check_choice("scope", scope, GLOBAL_SCOPES)
    p = prepare_one(x, mask, weights, scope)
    return per_image(all_reduce_moments(moments(p.x, p.w), scope).mean, x.shape[0], scope)


@autocast_off
def masked_var(
    x: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    *,
    scope: GlobalScope = "image",
) -> Tensor:
    r"""Weighted (population) variance of the valid pixels of each image.

    .. math:: \sigma^2 = \frac{\sum_i w_i x_i^2}{\sum_i w_i} - \mu^2

    computed in the numerically stable centred form :math:`\sum_i w_i (x_i-\mu)^2 / \sum_i w_i`
    (the same quantity, never negative).

    Args:
        x: ``(B, 1, H, W)`` or ``(B, H, W)`` floating map.
        mask: bool, same shape; ``None`` means every pixel is valid.
        weights: non-negative float weights, same shape (default 1).
        scope: ``"image"`` (default), ``"batch"`` or ``"global"`` (all ranks).

    Returns:
        ``(B,)`` variances, 0 for images without valid pixels.

    Example:
        >>> x = torch.tensor([[[1.0, 2.0], [3.0, 10.0]]])
        >>> mask = torch.tensor([[[True, True], [True, False]]])
        >>> masked_var(x, mask)
        tensor([0.6667])
    """
    check_choice("scope", scope, GLOBAL_SCOPES)
    p = prepare_one(x, mask, weights, scope)
    m = all_reduce_moments(moments(p.x, p.w), scope)
    centred = p.x - m.mean.unsqueeze(-1)
    (spread,) = all_reduce_sum((p.w * centred * centred).sum(dim=-1), scope=scope)
    var = div_count(spread, m.sw)
    return per_image(var, x.shape[0], scope)
