"""ZoeDepth's gradient L1 loss: L1 on the squared magnitude and the angle of forward-difference gradients."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from depthloss._checks import SCOPES, check_reduction
from depthloss.functional._plumbing import Reduction, Scope, autocast_off, prepare, reduce_images, safe_div
from depthloss.functional.derivatives import AngleMode, check_angle, forward_gradient_field

__all__ = ["grad_l1"]


@autocast_off
def grad_l1(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    angle: AngleMode = "atan2",
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""ZoeDepth's ``GradL1Loss``: L1 between the gradient fields of ``pred`` and ``target``.

    .. math:: \mathcal L = \frac{1}{|S|} \sum_{i \in S} |m^p_i - m^g_i|
              + \frac{1}{|S|} \sum_{i \in S} |\theta^p_i - \theta^g_i|

    with forward differences ``dx = x[i, j] - x[i, j-1]``, ``dy = x[i, j] - x[i-1, j]`` on
    ``(H - 1) x (W - 1)`` positions, ``m = dx² + dy²`` (ZoeDepth's ``mag``: the *squared* norm)
    and ``θ`` the gradient's angle; ``S``: the positions whose three stencil pixels
    ``(i, j), (i, j-1), (i-1, j)`` are valid (ZoeDepth's ``grad_mask``), per image.

    **Angle.** ``angle="atan2"`` (default): ``atan2(dy, dx)`` in ``(-π, π]``, the full
    direction. Where the gradient is exactly 0 the angle is read as 0 with a zero gradient
    (torch's ``atan2`` has a 0/0 derivative there); the angle is discontinuous across
    ``dx < 0, dy = 0`` (``±π``), where the L1 sees a jump of ``2π``, as any unwrapped angle
    loss does. ``angle="atan"``: ZoeDepth's ``atan(dy / (dx + 1e-10))``, the orientation
    modulo π in ``(-π/2, π/2)`` (discontinuous at ``dx = 0``).

    **Differences from the authors' code, and the options that reproduce it.** ZoeDepth
    selects the valid positions with ``[mask_g]`` and takes ``l1_loss`` (a mean) over them:
    one mean over all valid positions of the batch, so an image with more valid pixels weighs
    more. depthloss computes the means per image (dense, no indexing) and averages the
    images; ``reduction="pixel-mean"`` (or ``scope="batch"``) pools the batch, which is
    exactly ZoeDepth's value (with ``angle="atan"``). ZoeDepth fails on ``mask=None``; here it
    means every pixel is valid. ZoeDepth applies it to metric depth (its ``metric_depth`` output).

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` depth.
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        angle: ``"atan2"`` (default) or ``"atan"`` (ZoeDepth's).
        reduction: ``"mean"`` over images with a valid pixel (an image without a valid stencil
            adds 0), ``"sum"``, ``"none"``
            (``(B,)``), or ``"pixel-mean"``: both terms pooled over the batch's valid stencils
            (ZoeDepth's reduction).
        scope: ``"image"`` (default) or ``"batch"`` (the same pooling, as one value).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Reference:
        S. F. Bhat et al., *ZoeDepth: Zero-shot Transfer by Combining Relative and Metric
        Depth*, arXiv:2302.12288 (2023); isl-org/ZoeDepth ``zoedepth/trainers/loss.py``
        (``grad``, ``grad_mask``, ``GradL1Loss``).

    Example:
        >>> target = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # dx = 1, dy = 2 at (1, 1)
        >>> grad_l1(target + 5.0, target)  # a constant offset has the same gradients
        tensor(0.)
        >>> grad_l1(2.0 * target, target)  # |20 - 5| + 0: the angle is unchanged
        tensor(15.)
    """
    check_angle(angle)
    check_reduction(reduction, scope, SCOPES, "grad-l1")
    p = prepare(pred, target, mask, None, "image")
    images = (pred.shape[0], pred.shape[-2], pred.shape[-1])
    valid = p.valid.reshape(images)
    fp = forward_gradient_field(p.pred.reshape(images), valid, angle)
    fg = forward_gradient_field(p.target.reshape(images), valid, angle)
    s = fp.valid  # the three stencil pixels are valid
    mag_sum = torch.where(s, (fp.magnitude - fg.magnitude).abs(), 0.0).sum(dim=(-2, -1))
    angle_sum = torch.where(s, (fp.angle - fg.angle).abs(), 0.0).sum(dim=(-2, -1))
    count = s.sum(dim=(-2, -1)).to(mag_sum.dtype)
    if scope != "image" or reduction == "pixel-mean":  # one mean over the batch's stencils (ZoeDepth)
        pooled = safe_div(mag_sum.sum(), count.sum()) + safe_div(angle_sum.sum(), count.sum())
        if reduction == "pixel-mean":
            return pooled
        return reduce_images(pooled.reshape(1), p.n_valid.sum().reshape(1), reduction)
    per_image = safe_div(mag_sum, count) + safe_div(angle_sum, count)
    return reduce_images(per_image, p.n_valid, reduction)
