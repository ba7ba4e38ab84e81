"""Scale-invariant logarithmic loss (Eigen et al.; BTS / packnet-sfm constants)."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from depthloss.functional._checks import check_float
from depthloss.functional._common import GLOBAL_SCOPES, GlobalScope, Reduction, autocast_off, check_reduction, prepare, reduce_images
from depthloss.functional._fused import masked_log_ratio
from depthloss.functional.conversions import DEFAULT_EPS, inverse_bounds
from depthloss.functional.moments import Moments, pair_moments

__all__ = ["log_ratio", "silog", "silog_from_moments"]


def log_ratio(pred_depth: Tensor, target_depth: Tensor) -> Tensor:
    """``log(pred) - log(target)``; inputs must hold a positive value at every entry.

    ``pred`` is clamped at the smallest normal float so a zero prediction gives a large
    finite value (and zero gradient) instead of ``-inf``.
    """
    tiny = torch.finfo(pred_depth.dtype).tiny
    return torch.log(pred_depth.clamp(min=tiny) / target_depth)  # one log instead of two


def inverse_log_ratio(
    pred_inv: Tensor, target_inv: Tensor, valid: Tensor, min_depth: Optional[float], max_depth: Optional[float]
) -> Tensor:
    """``log z_pred - log z_target`` from inverse depths, 0 off ``valid``.

    With ``z = 1 / clamp(rho, 1 / max_depth, 1 / min_depth)`` (what :func:`inv_to_depth`
    gives) the log-ratio of depths is the log-ratio of the clamped inverse depths, swapped:
    no reciprocal is ever taken.
    """
    return masked_log_ratio(target_inv, pred_inv, valid, *log_ratio_bounds(min_depth, max_depth))


def log_ratio_bounds(min_depth: Optional[float], max_depth: Optional[float]) -> Tuple[float, Optional[float]]:
    """The inverse-depth clamp ``(floor, ceil)`` behind :func:`inverse_log_ratio` and ``to_depth``."""
    low, high = inverse_bounds(min_depth, max_depth)
    return (DEFAULT_EPS if low is None else max(DEFAULT_EPS, low)), high


def silog_from_moments(m: Moments, lambd: float, ratio: float, eps: float) -> Tensor:
    """``ratio * sqrt(E[g^2] - lambd * E[g]^2 + eps)`` per group; 0 where ``Σw = 0``."""
    mean = m.mean
    radicand = (m.second - lambd * mean * mean).clamp(min=0.0) + eps
    ok = (m.sw > 0) & (radicand > 0)  # radicand 0 only with eps = 0: value 0, gradient 0 (not inf)
    value = ratio * torch.sqrt(torch.where(ok, radicand, torch.ones_like(radicand)))
    return torch.where(ok, value, torch.zeros_like(value))


@autocast_off
def silog(
    pred_depth: Tensor,
    target_depth: Tensor,
    mask: Optional[Tensor] = None,
    lambd: float = 0.85,
    ratio: float = 10.0,
    weights: Optional[Tensor] = None,
    eps: float = 1e-8,
    *,
    reduction: Reduction = "mean",
    scope: GlobalScope = "image",
) -> Tensor:
    r"""Scale-invariant log loss on metric depth.

    .. math:: \mathcal L = \text{ratio}\cdot\sqrt{E_w[g^2] - \lambda\,E_w[g]^2 + \epsilon},
              \qquad g_i = \log \hat d_i - \log d_i

    with weighted means :math:`E_w[x] = \sum_i w_i x_i / \sum_i w_i` over valid pixels.
    ``lambd = 1`` makes it invariant to ``pred -> a*pred``; the BTS / packnet-sfm defaults
    are ``lambd = 0.85, ratio = 10``. ``eps`` sits inside the square root so the gradient
    is finite for a perfect prediction. The radicand is clamped at 0 before ``eps`` (with
    ``lambd = 1`` rounding can make it slightly negative).

    Args:
        pred_depth: ``(B, 1, H, W)`` or ``(B, H, W)`` predicted depth, positive where valid.
        target_depth: same shape, positive where valid.
        mask: bool, same shape; ``None`` means every pixel is valid.
        lambd: variance weight in ``[0, 1]`` (default 0.85).
        ratio: output scale, ``> 0`` (default 10).
        weights: optional non-negative per-pixel weights (weighted moments).
        eps: added inside the square root, ``>= 0`` (default ``1e-8``, the seed's).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"``.
        scope: ``"image"`` (default), ``"batch"`` (packnet-sfm pools the batch), or ``"global"``
            (the batch statistics summed over all ranks of the default process group)

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``. Images without valid pixels give 0.

    Example:
        >>> target = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]])
        >>> silog(2.0 * target, target, lambd=1.0, eps=0.0)  # a global scale is free
        tensor(0.)
        >>> silog(2.0 * target, target, eps=0.0)  # 10 * sqrt(0.15) * log 2
        tensor(2.685)
    """
    check_float("lambd", lambd, low=0.0, high=1.0)
    check_float("ratio", ratio, low=0.0, low_inclusive=False)
    check_float("eps", eps, low=0.0)
    check_reduction(reduction, scope, GLOBAL_SCOPES)
    p = prepare(pred_depth, target_depth, mask, weights, scope, fill=None, pred_name="pred_depth", target_name="target_depth")
    value = silog_from_moments(pair_moments(masked_log_ratio(p.pred, p.target, p.valid), p), lambd, ratio, eps)
    return reduce_images(value, p.count, reduction)
