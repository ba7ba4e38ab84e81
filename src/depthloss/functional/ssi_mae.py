"""Trimmed MAE between median/MAD-normalized maps (MiDaS "ssitrim" data term)."""

from __future__ import annotations

from typing import Literal, NamedTuple, Optional

import torch
from torch import Tensor

from depthloss._checks import SCOPES, check_choice, check_float, check_reduction
from depthloss.functional._plumbing import Reduction, Scope, autocast_off, prepare, reduce_images, safe_div
from depthloss.functional.statistics import kept_count, kth_smallest, mad_rows, trimmed_sum_rows

__all__ = ["ssi_mae"]

TrimDenominator = Literal["kept", "valid"]
TrimScope = Literal["image", "batch"]
TrimRounding = Literal["ceil", "floor"]
MedianOver = Literal["valid", "all-pixels"]


class TrimmedResidual(NamedTuple):
    """The normalized residual ``p̂ - ĝ`` (0 off-mask), its mask, and its trimmed data term as per-image sums."""

    residual: Tensor
    valid: Tensor
    data_sum: Tensor
    data_den: Tensor
    n_valid: Tensor


def check_trim_args(
    trim: float,
    eps: float,
    data_scale: float,
    trim_denominator: str,
    trim_scope: str,
    trim_rounding: str,
    median_over: str,
) -> None:
    """Validate the hyper-parameters of the trimmed MAE (``ssi_mae``, ``ssi_trim``)."""
    check_float("trim", trim, low=0.0, high=1.0, high_inclusive=False)
    check_float("eps", eps, low=0.0, low_inclusive=False)
    check_float("data_scale", data_scale, low=0.0, low_inclusive=False)
    check_choice("trim_denominator", trim_denominator, ("kept", "valid"))
    check_choice("trim_scope", trim_scope, ("image", "batch"))
    check_choice("trim_rounding", trim_rounding, ("ceil", "floor"))
    check_choice("median_over", median_over, ("valid", "all-pixels"))


def trimmed_residual_terms(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor],
    trim: float,
    eps: float,
    data_scale: float,
    trim_denominator: str,
    trim_scope: str,
    trim_rounding: str,
    median_over: str,
    scope: str,
) -> TrimmedResidual:
    """Normalize both maps per image, then the sums of the kept ``|p̂ - ĝ|`` and their denominators."""
    p = prepare(pred, target, mask, None, scope)
    p_hat = mad_rows(p.pred, p.valid, p.n_valid, eps, median_over).x_hat  # 0 at invalid pixels
    g_hat = mad_rows(p.target, p.valid, p.n_valid, eps, median_over).x_hat
    residual = p_hat - g_hat
    r = residual.abs()
    if trim_scope == "batch" and trim > 0:
        # one threshold for the whole batch (Video Depth Anything, the MiDaS gist as intended):
        # values below it are kept, ties at it share the remaining slots equally
        n_all = p.n_valid.sum().reshape(1)
        keep = kept_count(n_all, trim, trim_rounding)
        tau = kth_smallest(r.reshape(1, -1), p.valid.reshape(1, -1), keep)
        below = p.valid & (r < tau)
        ties = p.valid & (r == tau)
        share = safe_div((keep - below.sum()).to(r.dtype), ties.sum().to(r.dtype))
        kept_sum = torch.where(below, r, 0.0).sum(dim=-1) + share * ties.sum(dim=-1).to(r.dtype) * tau
        kept = below.sum(dim=-1).to(r.dtype) + share * ties.sum(dim=-1).to(r.dtype)
    else:
        t = trimmed_sum_rows(r, p.valid, p.n_valid, trim, trim_rounding)
        kept_sum, kept = t.kept_sum, t.keep.to(r.dtype)
    den = kept if trim_denominator == "kept" else p.n_valid.to(r.dtype)
    return TrimmedResidual(residual, p.valid, data_scale * kept_sum, den, p.n_valid)


@autocast_off
def ssi_mae(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    trim: float = 0.2,
    eps: float = 1e-6,
    data_scale: float = 1.0,
    trim_denominator: TrimDenominator = "kept",
    trim_scope: TrimScope = "image",
    trim_rounding: TrimRounding = "ceil",
    median_over: MedianOver = "valid",
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Trimmed mean absolute error between median/MAD-normalized maps (MiDaS "ssitrim").

    .. math:: \mathcal L = \frac{1}{k} \sum_{\text{k smallest}} |\hat p_i - \hat g_i|,
              \qquad k = n - \lfloor \text{trim}\cdot n \rfloor

    with :math:`\hat p, \hat g` from :func:`mad_normalize` over the ``n`` valid pixels (a true
    trimmed mean). Invariant to ``pred -> a*pred + b`` and ``target -> a*target + b`` for
    ``a > 0``. With ``trim=0`` this is Metric3D's / Depth Anything's affine-invariant L1.

    **Differences from the published code, and the options that reproduce it.** The MiDaS
    paper divides the kept sum by ``2n`` (all valid pixels, ``data_scale=0.5,
    trim_denominator="valid"``) and keeps ``floor(0.8 n)`` (``trim_rounding="floor"``). The
    authors' gist takes the median over all pixels with invalid ones as 0
    (``median_over="all-pixels"``), pools the batch (``reduction="pixel-mean"``) and, as
    published, trims nothing (its sort result is sliced as a tuple: ``trim=0``); as intended,
    and in Video Depth Anything, one threshold is taken for the whole batch
    (``trim_scope="batch"``). depthloss's defaults are the paper's per-image definition with
    the median over valid pixels and a true trimmed mean.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)``.
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        trim: fraction of the largest residuals to drop, in ``[0, 1)`` (default 0.2, MiDaS);
            applied exactly to 6 decimal places.
        eps: lower bound on the MAD scale (default ``1e-6``).
        data_scale: factor of the data term (default 1; MiDaS: 0.5).
        trim_denominator: ``"kept"`` (default: a trimmed mean) or ``"valid"`` (the kept sum
            over all valid pixels: MiDaS, Video Depth Anything).
        trim_scope: ``"image"`` (default) or ``"batch"`` (one threshold for the batch).
        trim_rounding: ``"ceil"`` (default: keep ``n - floor(trim n)``) or ``"floor"`` (keep
            ``floor((1 - trim) n)``, the authors' ``int(...)``).
        median_over: ``"valid"`` (default) or ``"all-pixels"`` (the authors' code).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, ``"none"``, or
            ``"pixel-mean"`` (the batch's kept sums over its denominators: MiDaS's "batch-based").
        scope: ``"image"`` (default) or ``"batch"`` (normalization and trim over the batch).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Reference:
        R. Ranftl et al., *Towards Robust Monocular Depth Estimation: Mixing Datasets for
        Zero-shot Cross-dataset Transfer*, TPAMI 2022 (Eq. 7); the authors' loss gist
        (``ranftlr``, linked in isl-org/MiDaS#33).

    Example:
        >>> target = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
        >>> ssi_mae(3.0 * target + 1.0, target)
        tensor(0.)
        >>> outlier = torch.tensor([[[1.0, 2.0], [3.0, 9.0]]])
        >>> ssi_mae(outlier, target, trim=0.0), ssi_mae(outlier, target, trim=0.25)
        (tensor(0.5556), tensor(0.3704))
    """
    check_trim_args(trim, eps, data_scale, trim_denominator, trim_scope, trim_rounding, median_over)
    check_reduction(reduction, scope, SCOPES, "ssi_mae")
    t = trimmed_residual_terms(
        pred, target, mask, trim, eps, data_scale, trim_denominator, trim_scope, trim_rounding, median_over, scope
    )
    if reduction == "pixel-mean":
        return safe_div(t.data_sum.sum(), t.data_den.sum())
    return reduce_images(safe_div(t.data_sum, t.data_den), t.n_valid, reduction)
