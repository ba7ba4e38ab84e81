"""MiDaS's trimmed loss: trimmed MAE of median/MAD-normalized maps plus gradient matching."""

from __future__ import annotations

from typing import Optional

from torch import Tensor

from depthloss._checks import SCOPES, check_float, check_reduction
from depthloss.functional._plumbing import Reduction, Scope, autocast_off, prepare, reduce_images
from depthloss.functional.image import DataAndGradient, Operator, check_gradient_args, gradient_matching_terms
from depthloss.functional.statistics import mad_rows, trimmed_mean_rows

__all__ = ["ssi_trim"]


def ssi_trim_terms(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor],
    trim: float,
    scales: int,
    operator: str,
    eps: float,
    scope: str,
) -> DataAndGradient:
    """Per image: trimmed MAE of the normalized maps and gradient matching of their difference."""
    p = prepare(pred, target, mask, None, scope)
    p_hat = mad_rows(p.pred, p.valid, p.n_valid, eps).x_hat  # 0 at invalid pixels
    g_hat = mad_rows(p.target, p.valid, p.n_valid, eps).x_hat
    residual = p_hat - g_hat
    data = trimmed_mean_rows(residual.abs(), p.valid, p.n_valid, trim)
    images = (pred.shape[0], pred.shape[-2], pred.shape[-1])
    grad = gradient_matching_terms(residual.reshape(images), p.valid.reshape(images), scales, operator, scope)
    return DataAndGradient(data, grad, p.n_valid)


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

    .. math:: \mathcal L = \frac{1}{k} \sum_{\text{k smallest}} |\hat p_i - \hat g_i|
              + \alpha \sum_{s} \mathcal G_s(\hat p - \hat g)

    with :math:`\hat p, \hat g` the median/MAD-normalized maps (:func:`mad_normalize`),
    ``k = n - floor(trim * n)`` and :math:`\mathcal G_s` the gradient term of
    :func:`gradient_matching` at level ``s``. Invariant to ``pred -> a*pred + b`` for ``a > 0``.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` (MiDaS: disparity).
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        trim: fraction of the largest residuals dropped per image, in ``[0, 1)`` (default 0.2).
        alpha: weight of the gradient term, ``>= 0`` (default 0.5).
        scales: gradient-matching levels, ``>= 1`` (default 4).
        operator: ``"diff"`` (MiDaS, default) or ``"sobel"``.
        eps: lower bound on the MAD scale.
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"``.
        scope: ``"image"`` (default) or ``"batch"`` (normalization and trim over the batch).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Reference:
        R. Ranftl et al., *Towards Robust Monocular Depth Estimation: Mixing Datasets for
        Zero-shot Cross-dataset Transfer*, TPAMI 2020.

    Example:
        >>> target = torch.rand(2, 1, 8, 8) + 0.5
        >>> ssi_trim(2.0 * target + 1.0, target) < 1e-5  # invariant to scale and shift
        tensor(True)
    """
    check_float("trim", trim, low=0.0, high=1.0, high_inclusive=False)
    check_float("eps", eps, low=0.0, low_inclusive=False)
    check_gradient_args(alpha, scales, operator)
    check_reduction(reduction, scope, SCOPES, "ssi-trim")
    t = ssi_trim_terms(pred, target, mask, trim, scales, operator, eps, scope)
    return reduce_images(t.data + alpha * t.grad, t.n_valid, reduction)
