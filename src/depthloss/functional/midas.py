"""MiDaS's scale-and-shift-invariant loss: least-squares aligned MSE plus gradient matching."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from depthloss._checks import SCOPES, check_reduction
from depthloss.functional._plumbing import Reduction, Scope, autocast_off, prepare, reduce_images
from depthloss.functional.image import DataAndGradient, Operator, check_gradient_args, gradient_matching_terms
from depthloss.functional.statistics import lsq_rows, row_mean

__all__ = ["midas"]


def midas_terms(
    pred: Tensor, target: Tensor, mask: Optional[Tensor], scales: int, operator: str, scope: str
) -> DataAndGradient:
    """Per image: least-squares-aligned MSE and gradient matching of the aligned residual."""
    p = prepare(pred, target, mask, None, scope)
    fit = lsq_rows(p.pred, p.target, p.w)
    residual = torch.where(p.valid, fit.scale.unsqueeze(-1) * p.pred + fit.shift.unsqueeze(-1) - p.target, 0.0)
    data = row_mean(residual.square(), p.w)
    images = (pred.shape[0], pred.shape[-2], pred.shape[-1])
    grad = gradient_matching_terms(residual.reshape(images), p.valid.reshape(images), scales, operator, scope)
    return DataAndGradient(data, grad, p.n_valid)


@autocast_off
def midas(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    alpha: float = 0.5,
    scales: int = 4,
    operator: Operator = "diff",
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""MiDaS's scale-and-shift-invariant loss: :func:`ssi_lsq` plus gradient matching.

    .. math:: \mathcal L = \frac{1}{M}\sum_i (s\,p_i + t - g_i)^2 + \alpha \sum_{s} \mathcal G_s(s\,p + t - g)

    with ``(s, t)`` the per-image least-squares fit (:func:`lsq_scale_shift`). MiDaS's
    data term divides by ``2M``; this one by ``M``. Invariant to ``pred -> a*pred + b``.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` (MiDaS: disparity).
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        alpha: weight of the gradient term, ``>= 0`` (default 0.5).
        scales: gradient-matching levels, ``>= 1`` (default 4).
        operator: ``"diff"`` (MiDaS, default) or ``"sobel"``.
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"``.
        scope: ``"image"`` (default) or ``"batch"``: one least-squares fit (one scale and
            shift) for the whole batch, and the batch's sums over its pixel counts. This is
            *not* MiDaS's "batch-based" reduction, which aligns each image on its own.

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Reference:
        R. Ranftl et al., *Towards Robust Monocular Depth Estimation: Mixing Datasets for
        Zero-shot Cross-dataset Transfer*, TPAMI 2020.

    Example:
        >>> target = torch.rand(2, 1, 8, 8) + 0.5
        >>> midas(0.5 * target - 3.0, target) < 1e-5  # invariant to scale and shift
        tensor(True)
    """
    check_gradient_args(alpha, scales, operator)
    check_reduction(reduction, scope, SCOPES, "midas")
    t = midas_terms(pred, target, mask, scales, operator, scope)
    return reduce_images(t.data + alpha * t.grad, t.n_valid, reduction)
