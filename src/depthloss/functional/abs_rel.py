"""Absolute relative error on depth."""

from __future__ import annotations

from typing import Optional

from torch import Tensor

from depthloss._checks import SCOPES, check_reduction
from depthloss.functional._plumbing import Reduction, Scope, autocast_off, prepare, reduce_images
from depthloss.functional.statistics import row_mean

__all__ = ["abs_rel"]

# Depths below this are clamped before dividing by them: a positive subnormal target would
# otherwise turn a finite error into inf (float32's smallest normal number is 1.2e-38).
TARGET_FLOOR = 1e-12


@autocast_off
def abs_rel(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Absolute relative error per image.

    .. math:: \mathcal L = \frac{\sum_i w_i\,|p_i - g_i| / g_i}{\sum_i w_i}

    Divides by the *target* (the seed divided by the prediction, which rewards predicting
    large values). Targets must be positive where valid; invalid pixels are replaced by 1
    before the division, and targets are floored at ``1e-12`` (so a positive subnormal
    target gives a large finite error, not inf).

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` depth.
        target: same shape, positive where valid.
        mask: bool, same shape; ``None`` means every pixel is valid.
        weights: optional non-negative per-pixel weights (a weighted mean).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"`` (``(B,)``).
        scope: ``"image"`` (default) or ``"batch"`` (one mean over all valid pixels of the batch).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Example:
        >>> abs_rel(torch.tensor([[[1.0, 3.0]]]), torch.tensor([[[2.0, 4.0]]]))
        tensor(0.3750)
    """
    check_reduction(reduction, scope, SCOPES, "abs_rel")
    p = prepare(pred, target, mask, weights, scope, fill=1.0)
    value = row_mean((p.pred - p.target).abs() / p.target.clamp(min=TARGET_FLOOR), p.w)
    return reduce_images(value, p.n_valid, reduction)
