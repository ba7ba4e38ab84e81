"""MiDaS's scale-and-shift-invariant loss: least-squares aligned MSE plus gradient matching."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from depthloss._checks import SCOPES, check_float, check_reduction
from depthloss.functional._plumbing import Reduction, Scope, autocast_off, prepare
from depthloss.functional.image import (
    DataAndGradient,
    Operator,
    check_gradient_args,
    gradient_term,
    reduce_data_and_gradient,
)
from depthloss.functional.statistics import lsq_rows

__all__ = ["midas"]


def midas_terms(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor],
    scales: int,
    operator: str,
    scope: str,
    data_scale: float = 1.0,
) -> DataAndGradient:
    """Per image: least-squares-aligned MSE and gradient matching of the aligned residual, as sums."""
    p = prepare(pred, target, mask, None, scope)
    fit = lsq_rows(p.pred, p.target, p.w)
    residual = torch.where(p.valid, fit.scale.unsqueeze(-1) * p.pred + fit.shift.unsqueeze(-1) - p.target, 0.0)
    images = (pred.shape[0], pred.shape[-2], pred.shape[-1])
    grad_sum, grad_den = gradient_term(residual.reshape(images), p.valid.reshape(images), scales, operator, scope)
    data_sum = data_scale * residual.square().sum(dim=-1)
    return DataAndGradient(data_sum, p.n_valid.to(data_sum.dtype), grad_sum, grad_den, p.n_valid)


@autocast_off
def midas(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    alpha: float = 0.5,
    scales: int = 4,
    operator: Operator = "diff",
    data_scale: float = 1.0,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""MiDaS's scale-and-shift-invariant loss: :func:`ssi_lsq` plus gradient matching.

    .. math:: \mathcal L = \frac{1}{M}\sum_i (s\,p_i + t - g_i)^2 + \alpha \sum_{s} \mathcal G_s(s\,p + t - g)

    with ``(s, t)`` the per-image least-squares fit (:func:`lsq_scale_shift`). Invariant to
    ``pred -> a*pred + b``. MiDaS's data term divides by ``2M`` (``data_scale=0.5``) and its
    published loss reduces "batch-based": every term and gradient level summed over the
    batch and divided by the batch's pixel counts (``reduction="pixel-mean"``); so
    ``midas(p, g, m, data_scale=0.5, reduction="pixel-mean")`` is the authors' loss
    (``ScaleAndShiftInvariantLoss`` of the dvdhfnr gist). depthloss's default averages
    per-image losses: every image counts the same, whatever its valid pixels.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` (MiDaS: disparity).
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        alpha: weight of the gradient term, ``>= 0`` (default 0.5).
        scales: gradient-matching levels, ``>= 1`` (default 4).
        operator: ``"diff"`` (MiDaS, default) or ``"sobel"``.
        data_scale: factor of the data term (default 1; MiDaS: 0.5).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, ``"none"``, or
            ``"pixel-mean"`` (each term and level pooled over the batch: MiDaS's "batch-based").
        scope: ``"image"`` (default) or ``"batch"``: one least-squares fit (one scale and
            shift) for the whole batch. This is *not* MiDaS's "batch-based" reduction, which
            aligns each image on its own (that is ``reduction="pixel-mean"``).

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
    check_float("data_scale", data_scale, low=0.0, low_inclusive=False)
    check_reduction(reduction, scope, SCOPES, "midas")
    t = midas_terms(pred, target, mask, scales, operator, scope, data_scale)
    return reduce_data_and_gradient(t, alpha, reduction)
