"""The seed's combined loss: SSI on inverse depth plus SILog on depth."""

from __future__ import annotations

from typing import NamedTuple, Optional

from torch import Tensor

from depthloss.functional._checks import check_float
from depthloss.functional._common import GLOBAL_SCOPES, GlobalScope, Prepared, Reduction, autocast_off, check_reduction, prepare, reduce_images
from depthloss.functional.conversions import check_depth_range
from depthloss.functional.moments import Moments, all_reduce_moments, pair_moments
from depthloss.functional._fused import masked_diff
from depthloss.functional._pair_sums import inverse_pair_sums
from depthloss.functional.silog import inverse_log_ratio, log_ratio_bounds, silog_from_moments
from depthloss.functional.ssi import ssi_from_moments

__all__ = ["ssi_silog"]

SILOG_EPS = 1e-8


class SsiSilogTerms(NamedTuple):
    """Per-group SSI (inverse depth) and SILog (depth) terms."""

    ssi: Tensor
    silog: Tensor


def ssi_silog_terms(
    p: Prepared,
    alpha: float,
    silog_ratio: float,
    silog_ratio2: float,
    min_depth: Optional[float],
    max_depth: Optional[float],
) -> SsiSilogTerms:
    """Both terms from a prepared inverse-depth pair (``prepare(..., fill=None)``)."""
    if p.unit:  # every sum in one fused function (see inverse_pair_sums)
        s = inverse_pair_sums(p.pred, p.target, p.valid, *log_ratio_bounds(min_depth, max_depth))
        return terms_from_sums(p.n, s.d1, s.d2, s.g1, s.g2, p.scope, alpha, silog_ratio, silog_ratio2)
    ssi_value = ssi_from_moments(pair_moments(masked_diff(p.pred, p.target, p.valid), p), alpha)
    g = inverse_log_ratio(p.pred, p.target, p.valid, min_depth, max_depth)
    silog_value = silog_from_moments(pair_moments(g, p), silog_ratio2, silog_ratio, SILOG_EPS)
    return SsiSilogTerms(ssi_value, silog_value)


def terms_from_sums(
    n: Tensor, d1: Tensor, d2: Tensor, g1: Tensor, g2: Tensor, scope: str,
    alpha: float, silog_ratio: float, silog_ratio2: float, ssi_n: Optional[Tensor] = None,
) -> SsiSilogTerms:  # fmt: skip
    """SSI and SILog per group from the residual sums ``Σd, Σd²`` and ``Σg, Σg²`` over ``n``
    pixels (all-reduced under ``scope="global"``); ``ssi_n`` replaces ``n`` for weighted SSI sums."""
    ssi_m = all_reduce_moments(Moments(n if ssi_n is None else ssi_n, d1, d2), scope)
    silog_m = all_reduce_moments(Moments(n, g1, g2), scope)
    return SsiSilogTerms(ssi_from_moments(ssi_m, alpha), silog_from_moments(silog_m, silog_ratio2, silog_ratio, SILOG_EPS))


def check_ssi_silog_args(alpha: float, silog_ratio: float, silog_ratio2: float, ssi_weight: float, silog_weight: float) -> None:
    check_float("alpha", alpha, low=0.0)
    check_float("silog_ratio", silog_ratio, low=0.0, low_inclusive=False)
    check_float("silog_ratio2", silog_ratio2, low=0.0, high=1.0)
    check_float("ssi_weight", ssi_weight, low=0.0)
    check_float("silog_weight", silog_weight, low=0.0)


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
            (the batch statistics summed over all ranks of the default process group)

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Example:
        >>> inv = torch.tensor([[[0.5, 0.25], [1.0, 0.1]]])
        >>> ssi_silog(inv, inv)  # 0.3 * 10 * sqrt(1e-8)
        tensor(0.0003)
    """
    check_ssi_silog_args(alpha, silog_ratio, silog_ratio2, ssi_weight, silog_weight)
    check_depth_range(min_depth, max_depth)
    check_reduction(reduction, scope, GLOBAL_SCOPES)
    p = prepare(pred_inv, target_inv, mask, weights, scope, fill=None, pred_name="pred_inv", target_name="target_inv")
    t = ssi_silog_terms(p, alpha, silog_ratio, silog_ratio2, min_depth, max_depth)
    return reduce_images(ssi_weight * t.ssi + silog_weight * t.silog, p.count, reduction)
