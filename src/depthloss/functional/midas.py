"""The two MiDaS training losses: trimmed MAE and least-squares MSE, each with gradient matching."""

from __future__ import annotations

from typing import NamedTuple, Optional

from torch import Tensor

from depthloss.functional._checks import check_choice, check_float, check_int
from depthloss.functional._common import Prepared, Reduction, Scope, autocast_off, check_reduction, prepare, reduce_images
from depthloss.functional.gradients import OPERATORS, Operator, gradient_matching_terms
from depthloss.functional.median import mad_rows
from depthloss.functional.ssi import lsq_residual_rows, trimmed_abs_mean_rows, weighted_mse_rows

__all__ = ["midas", "ssi_trim"]


class DataAndGradient(NamedTuple):
    """Per-group data term and gradient term of a MiDaS-style loss, and the valid counts."""

    data: Tensor
    grad: Tensor
    count: Tensor


def _gradient_term(residual: Tensor, p: Prepared, shape: tuple, scales: int, operator: str, scope: str) -> Tensor:
    """Gradient matching of a ``(G, N)`` residual laid back out as ``(B, H, W)`` images."""
    valid = p.valid.reshape(shape)
    return gradient_matching_terms(residual.reshape(shape), valid, scales, operator, scope)


def _image_shape(x: Tensor) -> tuple:
    return (x.shape[0], x.shape[-2], x.shape[-1])


def _check_gradient_args(alpha: float, scales: int, operator: str) -> None:
    check_float("alpha", alpha, low=0.0)
    check_int("scales", scales, low=1)
    check_choice("operator", operator, OPERATORS)


def ssi_trim_terms(
    pred: Tensor, target: Tensor, mask: Optional[Tensor], trim: float, scales: int, operator: str, eps: float, scope: str
) -> DataAndGradient:
    """Trimmed MAE of MAD-normalized maps and gradient matching of their difference."""
    p = prepare(pred, target, mask, None, scope)
    p_hat = mad_rows(p.pred, p.valid, p.mask_f, p.count, eps).x_hat
    g_hat = mad_rows(p.target, p.valid, p.mask_f, p.count, eps).x_hat
    residual = p_hat - g_hat
    data = trimmed_abs_mean_rows(residual, p.valid, p.count, trim)
    grad = _gradient_term(residual, p, _image_shape(pred), scales, operator, scope)
    return DataAndGradient(data, grad, p.count)


@autocast_off
def ssi_trim(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    trim: float = 0.2,
    alpha: float = 0.5,
    scales: int = 4,
    operator: Operator = "diff",
    eps: float = 1e-6,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""MiDaS's trimmed loss: :func:`ssi_mae` plus gradient matching of the normalized residual.

    .. math:: \mathcal L = \text{ssi\_mae}(p, g) + \alpha \sum_{s} \mathcal G_s(\hat p - \hat g)

    with :math:`\hat p, \hat g` the median/MAD-normalized maps and :math:`\mathcal G_s`
    the gradient term of :func:`gradient_matching` at level ``s``. Invariant to
    ``pred -> a*pred + b`` for ``a > 0``.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` (MiDaS: disparity).
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        trim: fraction of the largest residuals dropped per image, in ``[0, 1)`` (default 0.2).
        alpha: weight of the gradient term, ``>= 0`` (default 0.5).
        scales: gradient-matching levels (default 4).
        operator: ``"diff"`` (MiDaS, default) or ``"sobel"``.
        eps: lower bound on the MAD scale.
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"``.
        scope: ``"image"`` (default) or ``"batch"``.

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Example:
        >>> target = torch.rand(2, 1, 8, 8) + 0.5
        >>> ssi_trim(2.0 * target + 1.0, target) < 1e-5  # invariant to scale and shift
        tensor(True)
    """
    check_float("trim", trim, low=0.0, high=1.0, high_inclusive=False)
    check_float("eps", eps, low=0.0, low_inclusive=False)
    _check_gradient_args(alpha, scales, operator)
    check_reduction(reduction, scope)
    t = ssi_trim_terms(pred, target, mask, trim, scales, operator, eps, scope)
    return reduce_images(t.data + alpha * t.grad, t.count, reduction)


def midas_terms(
    pred: Tensor, target: Tensor, mask: Optional[Tensor], scales: int, operator: str, scope: str
) -> DataAndGradient:
    """Least-squares-aligned MSE and gradient matching of the aligned residual."""
    p = prepare(pred, target, mask, None, scope)
    residual = lsq_residual_rows(p.pred, p.target, p.w)
    data = weighted_mse_rows(residual, p.w)
    grad = _gradient_term(residual, p, _image_shape(pred), scales, operator, scope)
    return DataAndGradient(data, grad, p.count)


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
        scales: gradient-matching levels (default 4).
        operator: ``"diff"`` (MiDaS, default) or ``"sobel"``.
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"``.
        scope: ``"image"`` (default) or ``"batch"`` (MiDaS's batch-based reduction).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Example:
        >>> target = torch.rand(2, 1, 8, 8) + 0.5
        >>> midas(0.5 * target - 3.0, target) < 1e-5  # invariant to scale and shift
        tensor(True)
    """
    _check_gradient_args(alpha, scales, operator)
    check_reduction(reduction, scope)
    t = midas_terms(pred, target, mask, scales, operator, scope)
    return reduce_images(t.data + alpha * t.grad, t.count, reduction)
