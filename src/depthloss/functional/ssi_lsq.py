"""MSE after least-squares scale-and-shift alignment (MiDaS / DPT data term)."""

from __future__ import annotations

from typing import Optional

from torch import Tensor

from depthloss._checks import SCOPES, check_reduction
from depthloss.functional._plumbing import Reduction, Scope, autocast_off, prepare, reduce_images
from depthloss.functional.statistics import lsq_rows, row_mean

__all__ = ["ssi_lsq"]


@autocast_off
def ssi_lsq(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""MSE after least-squares scale-and-shift alignment (MiDaS / DPT).

    .. math:: \mathcal L = \frac{\sum_i w_i (s\,p_i + t - g_i)^2}{\sum_i w_i}, \qquad
              (s, t) = \arg\min \sum_i w_i (s\,p_i + t - g_i)^2

    solved in closed form per image by :func:`lsq_scale_shift` (gradients flow through
    ``s`` and ``t``). Invariant to ``pred -> a*pred + b`` for ``a != 0``. MiDaS's data term
    divides by ``2M``; this is the plain mean (twice MiDaS's value).

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` (MiDaS: disparity).
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        weights: optional non-negative per-pixel weights (fit and mean are weighted).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"``.
        scope: ``"image"`` (default) or ``"batch"`` (one fit for the batch).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Example:
        >>> target = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
        >>> ssi_lsq(0.5 * target - 2.0, target)
        tensor(0.)
    """
    check_reduction(reduction, scope, SCOPES, "ssi_lsq")
    p = prepare(pred, target, mask, weights, scope)
    fit = lsq_rows(p.pred, p.target, p.w)
    aligned = fit.scale.unsqueeze(-1) * p.pred + fit.shift.unsqueeze(-1)
    value = row_mean((aligned - p.target).square(), p.w)
    return reduce_images(value, p.n_valid, reduction)
