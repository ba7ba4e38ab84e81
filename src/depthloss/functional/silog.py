"""Scale-invariant logarithmic loss (Eigen et al.; BTS / packnet-sfm constants)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from depthloss._checks import GLOBAL_SCOPES, check_float, check_reduction
from depthloss.functional._plumbing import GlobalScope, Reduction, autocast_off, prepare, reduce_images, safe_sqrt
from depthloss.functional.statistics import moments

__all__ = ["silog"]


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
    ``lambd = 1`` rounding can make it slightly negative). A non-positive prediction at a
    valid pixel is clamped to the smallest normal float (a large finite ``g``, zero gradient).

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
            (the batch statistics summed over all ranks of the default process group).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``. Images without valid pixels give 0.

    Reference:
        D. Eigen, C. Puhrsch, R. Fergus, *Depth Map Prediction from a Single Image using a
        Multi-Scale Deep Network*, NeurIPS 2014; constants from BTS (Lee et al. 2019).

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
    check_reduction(reduction, scope, GLOBAL_SCOPES, "silog")
    p = prepare(
        pred_depth, target_depth, mask, weights, scope, fill=1.0, pred_name="pred_depth", target_name="target_depth"
    )
    tiny = torch.finfo(p.pred.dtype).tiny  # a non-positive value at a valid pixel: large but finite
    g = torch.log(p.pred.clamp(min=tiny)) - torch.log(p.target.clamp(min=tiny))  # 0 at invalid pixels
    m = moments(g, p.w, scope)
    value = ratio * safe_sqrt((m.second - lambd * m.mean**2).clamp(min=0.0) + eps)
    return reduce_images(torch.where(m.sw > 0, value, 0.0), p.n_valid, reduction)
