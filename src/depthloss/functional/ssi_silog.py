"""The seed's combined loss: SSI on inverse depth plus SILog on depth."""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor

from depthloss._checks import GLOBAL_SCOPES, check_reduction, check_ssi_silog_args
from depthloss.functional._plumbing import GlobalScope, Reduction, autocast_off, prepare, reduce_images, safe_sqrt
from depthloss.functional.depth import check_depth_range, log_depth_ratio
from depthloss.functional.statistics import moments

__all__ = ["ssi_silog"]

SILOG_EPS = 1e-8  # the seed's constant inside the square root


class SsiSilogTerms(NamedTuple):
    """Per-image SSI (inverse depth) and SILog (depth) terms, and the valid-pixel counts."""

    ssi: Tensor
    silog: Tensor
    n_valid: Tensor


def ssi_silog_terms(
    pred_inv: Tensor,
    target_inv: Tensor,
    mask: Optional[Tensor],
    alpha: float,
    silog_ratio: float,
    silog_ratio2: float,
    min_depth: Optional[float],
    max_depth: Optional[float],
    weights: Optional[Tensor],
    scope: str,
) -> SsiSilogTerms:
    """Both terms per image (arguments already validated)."""
    p = prepare(pred_inv, target_inv, mask, weights, scope, fill=1.0, pred_name="pred_inv", target_name="target_inv")
    d = moments(p.pred - p.target, p.w, scope)  # inverse depth; 0 at invalid pixels
    g = moments(log_depth_ratio(p.pred, p.target, min_depth, max_depth), p.w, scope)  # depth; 0 at invalid pixels
    ssi = d.variance + alpha * d.mean**2
    silog = silog_ratio * safe_sqrt((g.second - silog_ratio2 * g.mean**2).clamp(min=0.0) + SILOG_EPS)
    return SsiSilogTerms(ssi, torch.where(g.sw > 0, silog, 0.0), p.n_valid)


@autocast_off
def ssi_silog(
    pred_inv: Tensor,
    target_inv: Tensor,
    mask: Optional[Tensor] = None,
    alpha: float = 0.85,
    silog_ratio: float = 10.0,
    silog_ratio2: float = 0.85,
    ssi_weight: float = 0.7,
    silog_weight: float = 0.3,
    min_depth: Optional[float] = None,
    max_depth: Optional[float] = None,
    weights: Optional[Tensor] = None,
    *,
    reduction: Reduction = "mean",
    scope: GlobalScope = "image",
) -> Tensor:
    r"""``ssi_weight * SSI(inverse depth) + silog_weight * SILog(depth)`` (the seed's ``SSISilogLoss``).

    .. math:: \mathcal L = w_{ssi}\,\big(\operatorname{var}(d) + \alpha\,\bar d^2\big)
              + w_{silog}\cdot r\sqrt{E[g^2] - r_2\,E[g]^2 + 10^{-8}}

    with :math:`d = \hat\rho - \rho` on inverse depth and :math:`g = \log \hat z - \log z` on
    depth :math:`z = 1/\rho`, clamped to ``[min_depth, max_depth]`` when given.

    Args:
        pred_inv: ``(B, 1, H, W)`` or ``(B, H, W)`` predicted inverse depth.
        target_inv: same shape, positive where valid.
        mask: bool, same shape; ``None`` means every pixel is valid.
        alpha: SSI mean weight (default 0.85).
        silog_ratio: SILog scale ``r`` (default 10).
        silog_ratio2: SILog variance weight ``r_2`` in ``[0, 1]`` (default 0.85).
        ssi_weight: weight of the SSI term (default 0.7).
        silog_weight: weight of the SILog term (default 0.3).
        min_depth: optional lower depth clamp for the SILog term.
        max_depth: optional upper depth clamp for the SILog term.
        weights: optional non-negative per-pixel weights (weighted moments in both terms).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"``.
        scope: ``"image"`` (default), ``"batch"`` (the seed pools the batch), or ``"global"``
            (the batch statistics summed over all ranks of the default process group).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Example:
        >>> inv = torch.tensor([[[0.5, 0.25], [1.0, 0.1]]])
        >>> ssi_silog(inv, inv)  # 0.3 * 10 * sqrt(1e-8)
        tensor(0.0003)
    """
    check_ssi_silog_args(alpha, silog_ratio, silog_ratio2, ssi_weight, silog_weight)
    check_depth_range(min_depth, max_depth)
    check_reduction(reduction, scope, GLOBAL_SCOPES, "ssi_silog")
    t = ssi_silog_terms(
        pred_inv, target_inv, mask, alpha, silog_ratio, silog_ratio2, min_depth, max_depth, weights, scope
    )
    return reduce_images(ssi_weight * t.ssi + silog_weight * t.silog, t.n_valid, reduction)
