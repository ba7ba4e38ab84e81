"""MiDaS's trimmed loss: the trimmed MAE of :mod:`ssi_mae` plus gradient matching of the normalized residual."""

from __future__ import annotations

from typing import Optional

from torch import Tensor

from depthloss._checks import SCOPES, check_reduction
from depthloss.functional._plumbing import Reduction, Scope, autocast_off
from depthloss.functional.image import (
    DataAndGradient,
    Operator,
    check_gradient_args,
    gradient_term,
    reduce_data_and_gradient,
)
from depthloss.functional.ssi_mae import (
    MedianOver,
    TrimDenominator,
    TrimRounding,
    TrimScope,
    check_trim_args,
    trimmed_residual_terms,
)

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
    data_scale: float = 1.0,
    trim_denominator: str = "kept",
    trim_scope: str = "image",
    trim_rounding: str = "ceil",
    median_over: str = "valid",
) -> DataAndGradient:
    """Per image: the trimmed MAE of the normalized maps and gradient matching of their difference."""
    t = trimmed_residual_terms(
        pred, target, mask, trim, eps, data_scale, trim_denominator, trim_scope, trim_rounding, median_over, scope
    )
    images = (pred.shape[0], pred.shape[-2], pred.shape[-1])
    grad_sum, grad_den = gradient_term(t.residual.reshape(images), t.valid.reshape(images), scales, operator, scope)
    return DataAndGradient(t.data_sum, t.data_den, grad_sum, grad_den, t.n_valid)


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
    data_scale: float = 1.0,
    trim_denominator: TrimDenominator = "kept",
    trim_scope: TrimScope = "image",
    trim_rounding: TrimRounding = "ceil",
    median_over: MedianOver = "valid",
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
    The data-term options (``data_scale``, ``trim_denominator``, ``trim_scope``,
    ``trim_rounding``, ``median_over``) and what they reproduce are :func:`ssi_mae`'s.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` (MiDaS: disparity).
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        trim: fraction of the largest residuals dropped per image, in ``[0, 1)`` (default 0.2).
        alpha: weight of the gradient term, ``>= 0`` (default 0.5).
        scales: gradient-matching levels, ``>= 1`` (default 4).
        operator: ``"diff"`` (MiDaS, default) or ``"sobel"``.
        eps: lower bound on the MAD scale.
        data_scale: factor of the data term (default 1; MiDaS: 0.5).
        trim_denominator: ``"kept"`` (default) or ``"valid"``.
        trim_scope: ``"image"`` (default) or ``"batch"``.
        trim_rounding: ``"ceil"`` (default) or ``"floor"``.
        median_over: ``"valid"`` (default) or ``"all-pixels"``.
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, ``"none"``, or
            ``"pixel-mean"``: each term, and each gradient level, pooled over the batch
            (MiDaS's "batch-based" reduction).
        scope: ``"image"`` (default) or ``"batch"`` (normalization and trim over the batch).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Reference:
        R. Ranftl et al., *Towards Robust Monocular Depth Estimation: Mixing Datasets for
        Zero-shot Cross-dataset Transfer*, TPAMI 2022.

    Example:
        >>> target = torch.rand(2, 1, 8, 8) + 0.5
        >>> ssi_trim(2.0 * target + 1.0, target) < 1e-5  # invariant to scale and shift
        tensor(True)
    """
    check_trim_args(trim, eps, data_scale, trim_denominator, trim_scope, trim_rounding, median_over)
    check_gradient_args(alpha, scales, operator)
    check_reduction(reduction, scope, SCOPES, "ssi-trim")
    t = ssi_trim_terms(
        pred, target, mask, trim, scales, operator, eps, scope, data_scale, trim_denominator, trim_scope,
        trim_rounding, median_over,
    )  # fmt: skip
    return reduce_data_and_gradient(t, alpha, reduction)
