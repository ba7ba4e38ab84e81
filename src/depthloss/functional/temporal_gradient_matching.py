"""Temporal gradient matching (TGM) of Video Depth Anything on ``(B, T, H, W)`` sequences."""

from __future__ import annotations

from typing import Literal, Optional

from torch import Tensor

from depthloss._checks import SCOPES, check_reduction
from depthloss.functional._plumbing import Reduction, Scope, autocast_off, reduce_images
from depthloss.functional.video import (
    TemporalTerms,
    align_sequences,
    check_temporal_args,
    check_video_pair,
    temporal_terms,
    video_rows,
)

__all__ = ["temporal_gradient_matching"]

ThresholdMode = Literal["range", "absolute"]
Align = Literal["lsq", "none"]


def tgm_terms(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor],
    threshold: float,
    threshold_mode: str,
    align: str,
    absolute: bool,
    temporal_scales: int,
    decay: float,
    scope: str,
) -> TemporalTerms:
    """Align ``pred`` per sequence (``align="lsq"``), then the temporal sums of :func:`temporal_terms`."""
    p, g, valid = video_rows(pred, target, mask)
    if align == "lsq":
        p = align_sequences(p, g, valid, scope)
    return temporal_terms(p, g, valid, threshold, threshold_mode, absolute, temporal_scales, decay, scope)


def reduce_temporal(t: TemporalTerms, reduction: str) -> Tensor:
    """Per-sequence values reduced; ``"pixel-mean"`` pools each level over the batch (the authors' form)."""
    if reduction == "pixel-mean":
        return t.pooled()
    return reduce_images(t.value, t.counts[:, 0], reduction)


@autocast_off
def temporal_gradient_matching(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    threshold: float = 0.05,
    threshold_mode: ThresholdMode = "range",
    align: Align = "lsq",
    absolute: bool = False,
    temporal_scales: int = 1,
    decay: float = 0.5,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Temporal gradient matching: the frame-to-frame change of the prediction matches the target's.

    .. math:: \mathcal L = \frac{1}{|S|} \sum_{(i, x) \in S}
              \bigl| (\tilde d_{i+1} - \tilde d_i)(x) - (g_{i+1} - g_i)(x) \bigr|,
              \qquad S = \{(i, x) : x \text{ valid in frames } i, i+1,\ |g_{i+1}(x) - g_i(x)| < \tau_{i+1}\}

    with :math:`\tilde d = s\,d + t` the prediction aligned to the target by one least-squares
    scale and shift over the whole sequence (all frames, valid pixels; gradients flow through
    ``s, t``), and the static-pixel threshold
    :math:`\tau_{i+1} = \text{threshold} \cdot (\max g_{i+1} - \min g_{i+1})` over the valid
    pixels of frame ``i + 1`` (``threshold_mode="range"``, default) or
    :math:`\tau = \text{threshold}` (``"absolute"``). Pixels whose target changes a lot between
    frames (motion, occlusion) are left out: there the per-pixel change is not a change of the
    same surface. With ``temporal_scales = L > 1`` the term is also taken at frame strides
    ``2, 4, ...`` (only strides shorter than the sequence) with weights ``decay**k``, and the
    levels are averaged. With ``align="lsq"`` the loss is invariant to ``pred -> a*pred + b``
    (``a != 0``) per sequence; with ``align="none"`` to a shift only.

    A sequence's value is the mean over its static pixel pairs; ``reduction="mean"`` averages
    the sequences that have at least one (0 if none); ``"pixel-mean"`` divides the batch's sum
    by the batch's count, level by level (the authors' "batch-based" reduction);
    ``scope="batch"`` fits one scale and shift for the whole batch and pools it. A single frame
    (``T = 1``) gives 0.

    **Differences from the authors' code, and the options that reproduce it.** The paper
    (Eq. 3) writes :math:`\bigl||d_{i+1} - d_i| - |g_{i+1} - g_i|\bigr|` with the mask
    :math:`|g_{i+1} - g_i| < 0.05`; the released training loss (``loss/loss.py``,
    ``TemporalGradientMatchingLoss`` called from ``VideoDepthLoss``) matches the *signed*
    changes, thresholds at 5 % of the next frame's valid target range, aligns the prediction
    per sequence by least squares (not detached) and pools the batch: the defaults here with
    ``reduction="pixel-mean"``. ``absolute=True`` gives the paper's form,
    ``threshold_mode="absolute"`` its fixed threshold. The authors' trim of the temporal
    residuals is 0 in ``VideoDepthLoss`` and is not offered; their ``temp_grad_scales=1`` there
    is the default ``temporal_scales``. Their code divides by zero for ``T = 1``; this gives 0.

    Args:
        pred: ``(B, T, H, W)`` sequences (Video Depth Anything: disparity).
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        threshold: static-pixel threshold, ``> 0`` (default 0.05).
        threshold_mode: ``"range"`` (default: relative to the frame's target range) or
            ``"absolute"``.
        align: ``"lsq"`` (default: per-sequence least-squares scale and shift of ``pred``) or
            ``"none"`` (``pred`` already in the target's units).
        absolute: compare ``|Δd|`` with ``|Δg|`` (the paper's equation) instead of the signed
            changes (default ``False``: the authors' code).
        temporal_scales: frame strides ``1, 2, 4, ...`` used, ``>= 1`` (default 1).
        decay: weight ratio between successive strides, ``>= 0`` (default 0.5).
        reduction: ``"mean"`` over sequences with a static pixel, ``"sum"``, ``"none"``
            (``(B,)``) or ``"pixel-mean"``.
        scope: ``"image"`` (default: per sequence) or ``"batch"``.

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Reference:
        S. Chen et al., *Video Depth Anything: Consistent Depth Estimation for Super-Long
        Videos*, CVPR 2025 (Sec. 3.2); the authors' code, DepthAnything/Video-Depth-Anything,
        ``loss/loss.py``.

    Example:
        >>> frame = 1 + torch.arange(4.0).reshape(1, 1, 2, 2) / 4
        >>> target = frame + 0.01 * torch.arange(4.0).reshape(1, 4, 1, 1)  # a slow drift
        >>> temporal_gradient_matching(2.0 * target + 1.0, target)  # tracks it, at any scale
        tensor(0.)
        >>> flicker = target.clone()
        >>> flicker[:, 1] += 0.02  # frame 1 jumps: |+0.02| and |-0.02| over 3 pairs
        >>> temporal_gradient_matching(flicker, target, align="none")
        tensor(0.0133)
    """
    check_temporal_args(threshold, threshold_mode, align, temporal_scales, decay)
    check_reduction(reduction, scope, SCOPES, "temporal_gradient_matching")
    check_video_pair(pred, target, mask)
    t = tgm_terms(pred, target, mask, threshold, threshold_mode, align, absolute, temporal_scales, decay, scope)
    return reduce_temporal(t, reduction)
