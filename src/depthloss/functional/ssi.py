"""The seed's scale-invariant loss on inverse depth: ``var(d) + alpha * mean(d)^2``."""

from __future__ import annotations

from typing import Optional

from torch import Tensor

from depthloss._checks import GLOBAL_SCOPES, check_float, check_reduction
from depthloss.functional._plumbing import GlobalScope, Reduction, autocast_off, prepare, reduce_images
from depthloss.functional.statistics import moments

__all__ = ["ssi"]


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
            (the batch statistics summed over all ranks of the default process group).

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
    check_reduction(reduction, scope, GLOBAL_SCOPES, "ssi")
    p = prepare(pred, target, mask, weights, scope)
    m = moments(p.pred - p.target, p.w, scope)  # d is 0 at invalid pixels
    return reduce_images(m.variance + alpha * m.mean**2, p.n_valid, reduction)
