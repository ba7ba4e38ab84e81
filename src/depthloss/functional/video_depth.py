"""Video Depth Anything's training loss: per-frame SSI (trimmed MAE + gradient matching) + lambda * TGM."""

from __future__ import annotations

from typing import Optional, Tuple

from torch import Tensor

from depthloss._checks import SCOPES, check_float, check_reduction
from depthloss.functional._plumbing import Reduction, Scope, autocast_off, reduce_images, safe_div
from depthloss.functional.image import check_gradient_args
from depthloss.functional.ssi_mae import MedianOver, check_trim_args
from depthloss.functional.ssi_trim import ssi_trim_terms
from depthloss.functional.temporal_gradient_matching import Align, ThresholdMode, tgm_terms
from depthloss.functional.video import check_temporal_args, check_video_pair

__all__ = ["video_depth"]


def video_depth_parts(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor],
    alpha: float,
    scales: int,
    trim: float,
    eps: float,
    median_over: str,
    threshold: float,
    threshold_mode: str,
    align: str,
    absolute: bool,
    temporal_scales: int,
    decay: float,
    reduction: str,
    scope: str,
) -> Tuple[Tensor, Tensor]:
    """The reduced spatial term and the reduced TGM term (both reduced over the same sequences)."""
    b, t, h, w = pred.shape
    frames = (b * t, h, w)
    s = ssi_trim_terms(
        pred.reshape(frames), target.reshape(frames), None if mask is None else mask.reshape(frames),
        trim, scales, "diff", eps, "image", median_over=median_over,
    )  # fmt: skip
    # per-frame sums -> per-sequence sums (one row for the batch under scope="batch")
    data_sum = s.data_sum.reshape(b, t).sum(dim=1)
    data_den = s.data_den.reshape(b, t).sum(dim=1)
    grad_sum = s.grad_sum.reshape(b, t, scales).sum(dim=1)
    grad_den = s.grad_den.reshape(b, t, scales).sum(dim=1)
    n_valid = s.n_valid.reshape(b, t).sum(dim=1)
    temporal = tgm_terms(pred, target, mask, threshold, threshold_mode, align, absolute, temporal_scales, decay, scope)
    if reduction == "pixel-mean":  # every term and level pooled over the batch (the authors' "batch-based")
        spatial = safe_div(data_sum.sum(), data_den.sum()) + alpha * safe_div(grad_sum.sum(0), grad_den.sum(0)).sum()
        return spatial, temporal.pooled()
    if scope != "image":
        data_sum, data_den = data_sum.sum(0, keepdim=True), data_den.sum(0, keepdim=True)
        grad_sum, grad_den = grad_sum.sum(0, keepdim=True), grad_den.sum(0, keepdim=True)
        n_valid = n_valid.sum(0, keepdim=True)
    spatial_rows = safe_div(data_sum, data_den) + alpha * safe_div(grad_sum, grad_den).sum(dim=-1)
    return reduce_images(spatial_rows, n_valid, reduction), reduce_images(temporal.value, n_valid, reduction)


@autocast_off
def video_depth(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    tgm_weight: float = 10.0,
    alpha: float = 0.5,
    scales: int = 4,
    trim: float = 0.0,
    eps: float = 1e-6,
    median_over: MedianOver = "valid",
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
    r"""Video Depth Anything's loss: spatial SSI per frame plus ``tgm_weight`` times TGM.

    .. math:: \mathcal L = \underbrace{\frac{\sum_i \sum_{x} |\hat d_i - \hat g_i|}{\sum_i n_i}
              + \alpha \sum_{s} \mathcal G_s(\hat d - \hat g)}_{\text{spatial}}
              + \lambda\, \mathcal L_{TGM}(d, g)

    per sequence: every frame ``i`` is median/MAD-normalized on its own (:func:`ssi_mae`'s
    :math:`\hat d_i, \hat g_i`, optionally trimmed), the absolute residuals of all frames are
    summed over the sequence's ``n = Σ n_i`` valid pixels, :math:`\mathcal G_s` is MiDaS's
    forward-difference gradient matching at level ``s`` pooled over the frames the same way
    (:func:`ssi_trim`'s terms), and :math:`\mathcal L_{TGM}` is
    :func:`temporal_gradient_matching` (the prediction aligned per sequence by least squares).
    Invariant to ``pred -> a*pred + b`` per sequence for ``a > 0``.

    ``reduction="pixel-mean"`` pools each term, each gradient level and the TGM sums over the
    whole batch: the authors' "batch-based" reduction. ``scope="batch"`` pools the sums of the
    spatial term over the batch and fits one TGM alignment for it (frames are still normalized
    one by one).

    **Differences from the authors' code, and the options that reproduce it.** The released
    ``VideoDepthLoss`` (``loss/loss.py``) is this loss with ``reduction="pixel-mean"``,
    ``median_over="all-pixels"`` (their median of ``mask * target`` counts invalid pixels as
    0) and the defaults ``tgm_weight=10, alpha=0.5, scales=4, trim=0``; depthloss's default
    takes the median over valid pixels and one value per sequence. Their least-squares fit
    solves the normal equations with ``det + 1e-6``; this one is centred (the same minimizer
    up to rounding). See :func:`temporal_gradient_matching` for the TGM options.

    Args:
        pred: ``(B, T, H, W)`` sequences (disparity).
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        tgm_weight: ``λ``, weight of the TGM term, ``>= 0`` (default 10, the authors' code).
        alpha: weight of the spatial gradient term, ``>= 0`` (default 0.5).
        scales: spatial gradient levels, ``>= 1`` (default 4).
        trim: fraction of the largest spatial residuals dropped per frame (default 0).
        eps: lower bound on the MAD scale.
        median_over: ``"valid"`` (default) or ``"all-pixels"`` (the authors' code).
        threshold, threshold_mode, align, absolute, temporal_scales, decay: the TGM term's
            (:func:`temporal_gradient_matching`).
        reduction: ``"mean"`` over sequences with a valid pixel, ``"sum"``, ``"none"``
            (``(B,)``) or ``"pixel-mean"``.
        scope: ``"image"`` (default: per sequence) or ``"batch"``.

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Reference:
        S. Chen et al., *Video Depth Anything: Consistent Depth Estimation for Super-Long
        Videos*, CVPR 2025 (Sec. 3.2); DepthAnything/Video-Depth-Anything, ``loss/loss.py``.

    Example:
        >>> frame = 1 + torch.arange(16.0).reshape(1, 1, 4, 4) / 16
        >>> target = frame + 0.01 * torch.arange(3.0).reshape(1, 3, 1, 1)
        >>> video_depth(3.0 * target + 1.0, target) < 1e-5  # scale and shift are free
        tensor(True)
    """
    check_float("tgm_weight", tgm_weight, low=0.0)
    check_trim_args(trim, eps, 1.0, "kept", "image", "ceil", median_over)
    check_gradient_args(alpha, scales, "diff")
    check_temporal_args(threshold, threshold_mode, align, temporal_scales, decay)
    check_reduction(reduction, scope, SCOPES, "video_depth")
    check_video_pair(pred, target, mask)
    spatial, temporal = video_depth_parts(
        pred, target, mask, alpha, scales, trim, eps, median_over, threshold, threshold_mode, align, absolute,
        temporal_scales, decay, reduction, scope,
    )  # fmt: skip
    return spatial + tgm_weight * temporal
