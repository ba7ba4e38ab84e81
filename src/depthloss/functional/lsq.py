"""Closed-form per-image least-squares scale and shift alignment."""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor

from depthloss.functional._checks import check_choice
from depthloss.functional._common import SCOPES, Scope, autocast_off, per_image, prepare, div_count

__all__ = ["ScaleShift", "lsq_scale_shift"]

# A prediction whose weighted variance is below (_DEGENERATE_ULPS * eps * |mean|)^2 is treated
# as constant: at that level the variance is rounding noise of the centring itself.
_DEGENERATE_ULPS = 64.0


class ScaleShift(NamedTuple):
    """Per-image least-squares ``scale`` and ``shift``, each of shape ``(B,)``."""

    scale: Tensor
    shift: Tensor


def lsq_rows(pred: Tensor, target: Tensor, w: Tensor) -> ScaleShift:
    """Weighted least squares ``s*pred + t ~ target`` per row of ``(G, N)`` tensors (finite where ``w > 0``)."""
    sw = w.sum(dim=-1)
    p_mean = div_count((w * pred).sum(dim=-1), sw)
    t_mean = div_count((w * target).sum(dim=-1), sw)
    pc = pred - p_mean.unsqueeze(-1)
    wpc = w * pc
    var = div_count((wpc * pc).sum(dim=-1), sw)
    cov = div_count((wpc * (target - t_mean.unsqueeze(-1))).sum(dim=-1), sw)
    eps = torch.finfo(pred.dtype).eps
    tol = (_DEGENERATE_ULPS * eps * p_mean.detach()).square() + torch.finfo(pred.dtype).tiny
    ok = var > tol
    scale = torch.where(ok, cov / torch.where(ok, var, torch.ones_like(var)), torch.zeros_like(var))
    shift = t_mean - scale * p_mean
    return ScaleShift(scale, shift)


@autocast_off
def lsq_scale_shift(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    *,
    scope: Scope = "image",
) -> ScaleShift:
    r"""Per-image closed-form least squares :math:`\min_{s,t} \sum_i w_i (s\,p_i + t - g_i)^2`.

    Solved in centred form, which is numerically stable in float32:

    .. math:: s = \frac{\operatorname{cov}_w(p, g)}{\operatorname{var}_w(p)}, \qquad t = \bar g - s\,\bar p

    (MiDaS / DPT ``compute_scale_and_shift``). Gradients flow through ``s`` and ``t``.

    **Degenerate systems.** When the prediction is constant over the valid pixels (its
    weighted variance is at rounding level: one valid pixel, a flat prediction) the
    minimizer is not unique; the fallback is ``s = 0, t = mean(target)``, so the aligned
    prediction is the target mean and the residual is the target's deviation from it.
    Images without valid pixels give ``s = 0, t = 0``. Both are finite, never NaN.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` prediction.
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        weights: optional non-negative per-pixel weights (weighted least squares).
        scope: ``"image"`` (default) or ``"batch"`` for one fit over the batch.

    Returns:
        ``ScaleShift(scale, shift)``, each ``(B,)``.

    Example:
        >>> pred = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
        >>> target = 2 * pred + 1
        >>> lsq_scale_shift(pred, target)
        ScaleShift(scale=tensor([2.]), shift=tensor([1.]))
    """
    check_choice("scope", scope, SCOPES)
    p = prepare(pred, target, mask, weights, scope)
    fit = lsq_rows(p.pred, p.target, p.w)
    b = pred.shape[0]
    return ScaleShift(per_image(fit.scale, b, scope), per_image(fit.shift, b, scope))
