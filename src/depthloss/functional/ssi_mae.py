"""Trimmed MAE between median/MAD-normalized maps (MiDaS "ssitrim" data term)."""

from __future__ import annotations

from typing import Optional

from torch import Tensor

from depthloss._checks import SCOPES, check_float, check_reduction
from depthloss.functional._plumbing import Reduction, Scope, autocast_off, prepare, reduce_images
from depthloss.functional.statistics import mad_rows, trimmed_mean_rows

__all__ = ["ssi_mae"]


@autocast_off
def ssi_mae(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    trim: float = 0.2,
    eps: float = 1e-6,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Trimmed mean absolute error between median/MAD-normalized maps (MiDaS "ssitrim").

    .. math:: \mathcal L = \frac{1}{k} \sum_{\text{k smallest}} |\hat p_i - \hat g_i|,
              \qquad k = n - \lfloor \text{trim}\cdot n \rfloor

    with :math:`\hat p, \hat g` from :func:`mad_normalize` over the ``n`` valid pixels.
    Unlike the published code, the median is over valid pixels only and the trim drops the
    largest residuals of each image (not of a flattened batch or a size-1 dimension).
    Invariant to ``pred -> a*pred + b`` and ``target -> a*target + b`` for ``a > 0``.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)``.
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        trim: fraction of the largest residuals to drop, in ``[0, 1)`` (default 0.2, MiDaS);
            applied exactly to 6 decimal places.
        eps: lower bound on the MAD scale (default ``1e-6``).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"``.
        scope: ``"image"`` (default) or ``"batch"`` (normalization and trim over the batch).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Example:
        >>> target = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
        >>> ssi_mae(3.0 * target + 1.0, target)
        tensor(0.)
        >>> outlier = torch.tensor([[[1.0, 2.0], [3.0, 9.0]]])
        >>> ssi_mae(outlier, target, trim=0.0), ssi_mae(outlier, target, trim=0.25)
        (tensor(0.5556), tensor(0.3704))
    """
    check_float("trim", trim, low=0.0, high=1.0, high_inclusive=False)
    check_float("eps", eps, low=0.0, low_inclusive=False)
    check_reduction(reduction, scope, SCOPES, "ssi_mae")
    p = prepare(pred, target, mask, None, scope)
    p_hat = mad_rows(p.pred, p.valid, p.n_valid, eps).x_hat
    g_hat = mad_rows(p.target, p.valid, p.n_valid, eps).x_hat
    value = trimmed_mean_rows((p_hat - g_hat).abs(), p.valid, p.n_valid, trim)
    return reduce_images(value, p.n_valid, reduction)
