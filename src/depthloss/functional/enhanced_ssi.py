"""The seed's EnhancedSSILoss: SSI plus L1 on inverse depth, weights moving with progress."""

from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

from torch import Tensor

from depthloss._checks import SCOPES, check_float, check_pair, check_progress, check_reduction
from depthloss.functional._plumbing import Progress, Reduction, Scope, as_progress, autocast_off, prepare, reduce_images
from depthloss.functional.statistics import moments, row_mean

__all__ = ["enhanced_ssi", "enhanced_ssi_weights"]


class SsiL1Terms(NamedTuple):
    """Per-image SSI and L1 terms and the valid-pixel counts."""

    ssi: Tensor
    l1: Tensor
    n_valid: Tensor


def ssi_l1_terms(pred: Tensor, target: Tensor, mask: Optional[Tensor], alpha: float, scope: str) -> SsiL1Terms:
    """Per image: the seed's SSI ``var(d) + alpha * mean(d)^2`` and the L1 ``mean |d|``, ``d = pred - target``."""
    p = prepare(pred, target, mask, None, scope)
    d = p.pred - p.target  # 0 at invalid pixels
    m = moments(d, p.w, scope)
    return SsiL1Terms(m.variance + alpha * m.mean**2, row_mean(d.abs(), p.w), p.n_valid)


def enhanced_ssi_weights(
    progress: Tensor, ssi_weight: float = 0.8, l1_weight: float = 0.2, adaptive_weighting: bool = True
) -> Tuple[Tensor, Tensor]:
    """``(w_ssi, w_l1)``: ``ssi_weight + 0.1 (1 - p)`` and ``l1_weight + 0.1 p``, normalized to sum 1.

    Without ``adaptive_weighting`` the base weights, as given (not normalized: the seed's).
    """
    if not adaptive_weighting:
        return progress * 0.0 + ssi_weight, progress * 0.0 + l1_weight
    w_ssi = ssi_weight + 0.1 * (1.0 - progress)
    w_l1 = l1_weight + 0.1 * progress
    total = w_ssi + w_l1
    return w_ssi / total, w_l1 / total


@autocast_off
def enhanced_ssi(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    progress: Progress = 0.0,
    alpha: float = 0.85,
    ssi_weight: float = 0.8,
    l1_weight: float = 0.2,
    adaptive_weighting: bool = True,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""SSI plus L1 with progress-adaptive weights (the seed's ``EnhancedSSILoss``).

    .. math:: \mathcal L = w_{ssi}\,\text{SSI}(p, g) + w_{l1}\,\text{L1}(p, g), \qquad
              (w_{ssi}, w_{l1}) \propto (0.8 + 0.1\,(1 - t),\ 0.2 + 0.1\,t)

    normalized to sum 1, with ``t`` the training progress: relative early, more metric late.
    Usually on inverse depth.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)``.
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        progress: training progress in ``[0, 1]`` (float or 0-dim tensor).
        alpha: SSI mean weight (default 0.85).
        ssi_weight: base SSI weight (default 0.8).
        l1_weight: base L1 weight (default 0.2).
        adaptive_weighting: move the weights with progress (default True); False uses the
            base weights as given.
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"``.
        scope: ``"image"`` (default) or ``"batch"``.

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Example:
        >>> target = torch.tensor([[[0.5, 0.25], [1.0, 0.1]]])
        >>> enhanced_ssi(target + 0.1, target, progress=1.0)  # (0.8 * 0.0085 + 0.3 * 0.1) / 1.1
        tensor(0.0335)
    """
    check_pair(pred, target)
    check_progress(progress)
    check_float("alpha", alpha, low=0.0)
    check_float("ssi_weight", ssi_weight, low=0.0)
    check_float("l1_weight", l1_weight, low=0.0)
    if not isinstance(adaptive_weighting, bool):
        raise TypeError(f"adaptive_weighting must be a bool, got {type(adaptive_weighting).__name__}")
    check_reduction(reduction, scope, SCOPES, "enhanced-ssi")
    w_ssi, w_l1 = enhanced_ssi_weights(as_progress(progress, pred), ssi_weight, l1_weight, adaptive_weighting)
    t = ssi_l1_terms(pred, target, mask, alpha, scope)
    return reduce_images(w_ssi * t.ssi + w_l1 * t.l1, t.n_valid, reduction)
