"""Masked mean absolute error."""

from __future__ import annotations

from typing import Optional

from torch import Tensor

from depthloss._checks import SCOPES, check_reduction
from depthloss.functional._plumbing import Reduction, Scope, autocast_off, prepare, reduce_images
from depthloss.functional.statistics import row_mean

__all__ = ["l1"]


@autocast_off
def l1(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Masked mean absolute error per image.

    .. math:: \mathcal L = \frac{\sum_i w_i\,|p_i - g_i|}{\sum_i w_i}

    over the valid pixels, on the maps as given (depth, inverse depth or anything else).

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)``.
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        weights: optional non-negative per-pixel weights (a weighted mean).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"`` (``(B,)``).
        scope: ``"image"`` (default) or ``"batch"`` (one mean over all valid pixels of the batch).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Example:
        >>> l1(torch.tensor([[[1.0, 2.0]]]), torch.tensor([[[2.0, 4.0]]]))
        tensor(1.5000)
    """
    check_reduction(reduction, scope, SCOPES, "l1")
    p = prepare(pred, target, mask, weights, scope)
    value = row_mean((p.pred - p.target).abs(), p.w)
    return reduce_images(value, p.n_valid, reduction)
