r"""Masked per-image statistics: moments, order statistics (median, trims), MAD, least squares.

Each public function takes ``(B, 1, H, W)`` or ``(B, H, W)`` maps and returns one value per
image over that image's valid pixels (``scope="batch"``: over the pooled batch). The
``*_rows`` helpers work on ``(G, N)`` rows (:func:`~depthloss.functional._plumbing.rows`)
and are what the losses call.

Order statistics are exact and differentiable: the selected element is gathered from the
input, so its gradient is one-hot (like ``torch.median``). Medians use ``torch.nanmedian``;
other ranks (trims) sort each row, and on the CPU an exact selection over each row's valid
entries replaces the sort (:mod:`depthloss._accel`).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor

from depthloss import _accel
from depthloss._checks import GLOBAL_SCOPES, SCOPES, check_choice, check_depth_map, check_float, check_mask
from depthloss.functional._plumbing import (
    GlobalScope,
    Scope,
    all_reduce_sum,
    autocast_off,
    compute_dtype,
    global_active,
    per_image,
    prepare,
    prepare_one,
    rows,
    safe_div,
)

__all__ = [
    "MadNormalized",
    "Moments",
    "ScaleShift",
    "kept_count",
    "kth_smallest",
    "lower_median",
    "lsq_rows",
    "lsq_scale_shift",
    "mad_normalize",
    "mad_rows",
    "masked_mean",
    "masked_median",
    "masked_var",
    "moments",
    "row_mean",
    "trimmed_mean_rows",
    "trimmed_sum_rows",
]


# -- moments ------------------------------------------------------------------------------
def row_mean(x: Tensor, w: Tensor) -> Tensor:
    """``Σ w·x / Σ w`` per ``(G, N)`` row (0 where ``Σ w = 0``); ``x`` finite where ``w > 0``."""
    return safe_div((w * x).sum(dim=-1), w.sum(dim=-1))


class Moments(NamedTuple):
    """Sufficient statistics of weighted values per row: ``Σw``, ``Σw·x``, ``Σw·x²``.

    Sums (not means), so they can be added across images or all-reduced across ranks.
    """

    sw: Tensor
    swx: Tensor
    swx2: Tensor

    @property
    def mean(self) -> Tensor:
        """``E_w[x] = Σw·x / Σw`` (0 where ``Σw = 0``)."""
        return safe_div(self.swx, self.sw)

    @property
    def second(self) -> Tensor:
        """``E_w[x²] = Σw·x² / Σw`` (0 where ``Σw = 0``)."""
        return safe_div(self.swx2, self.sw)

    @property
    def variance(self) -> Tensor:
        """``E_w[x²] - E_w[x]²``, clamped at 0 (rounding can make it slightly negative)."""
        return (self.second - self.mean**2).clamp(min=0.0)


def moments(x: Tensor, w: Tensor, scope: str = "image") -> Moments:
    """Row sums ``Σw``, ``Σw·x``, ``Σw·x²`` of ``(G, N)`` rows, all-reduced under ``scope="global"``.

    ``x`` must be finite where ``w > 0`` (sanitize it first).
    """
    wx = w * x
    m = Moments(w.sum(dim=-1), wx.sum(dim=-1), (wx * x).sum(dim=-1))
    if global_active(scope):
        m = Moments(*all_reduce_sum(m.sw, m.swx, m.swx2, scope=scope))
    return m


@autocast_off
def masked_mean(
    x: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    *,
    scope: GlobalScope = "image",
) -> Tensor:
    r"""Weighted mean of the valid pixels of each image.

    .. math:: \mu = \frac{\sum_i w_i x_i}{\sum_i w_i}

    Args:
        x: ``(B, 1, H, W)`` or ``(B, H, W)`` floating map.
        mask: bool, same shape; ``None`` means every pixel is valid.
        weights: non-negative float weights, same shape (default 1). Values at invalid
            pixels are ignored.
        scope: ``"image"`` (default), ``"batch"`` to pool the whole batch, or ``"global"``
            to pool the batch over all ranks of the default process group.

    Returns:
        ``(B,)`` means, 0 for images without valid pixels (or zero total weight). Under
        ``scope="batch"`` every entry holds the pooled mean.

    Example:
        >>> x = torch.tensor([[[1.0, 2.0], [3.0, 10.0]]])
        >>> mask = torch.tensor([[[True, True], [True, False]]])
        >>> masked_mean(x, mask)
        tensor([2.])
    """
    check_choice("scope", scope, GLOBAL_SCOPES)
    p = prepare_one(x, mask, weights, scope)
    return per_image(moments(p.x, p.w, scope).mean, x.shape[0], scope)


@autocast_off
def masked_var(
    x: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    *,
    scope: GlobalScope = "image",
) -> Tensor:
    r"""Weighted (population) variance of the valid pixels of each image.

    .. math:: \sigma^2 = \frac{\sum_i w_i (x_i - \mu)^2}{\sum_i w_i}

    (equal to :math:`E_w[x^2] - \mu^2`; the centred form is never negative and is stable
    in float32).

    Args:
        x: ``(B, 1, H, W)`` or ``(B, H, W)`` floating map.
        mask: bool, same shape; ``None`` means every pixel is valid.
        weights: non-negative float weights, same shape (default 1).
        scope: ``"image"`` (default), ``"batch"`` or ``"global"`` (all ranks).

    Returns:
        ``(B,)`` variances, 0 for images without valid pixels.

    Example:
        >>> x = torch.tensor([[[1.0, 2.0], [3.0, 10.0]]])
        >>> mask = torch.tensor([[[True, True], [True, False]]])
        >>> masked_var(x, mask)
        tensor([0.6667])
    """
    check_choice("scope", scope, GLOBAL_SCOPES)
    p = prepare_one(x, mask, weights, scope)
    m = moments(p.x, p.w, scope)
    centred = p.x - m.mean.unsqueeze(-1)
    (spread,) = all_reduce_sum((p.w * centred * centred).sum(dim=-1), scope=scope)
    return per_image(safe_div(spread, m.sw), x.shape[0], scope)


# -- order statistics -----------------------------------------------------------------------
def kth_smallest(x: Tensor, valid: Tensor, k: Tensor) -> Tensor:
    """Per-row ``k``-th smallest valid value of ``(G, N)`` rows (``k`` 1-based, ``(G,)``).

    Values at invalid entries are never read (they may be NaN). Rows with ``k == 0`` give 0
    with a zero gradient. The value is gathered from ``x``: its gradient is one-hot.
    """
    if x.shape[-1] == 0:
        return x.sum(dim=-1)
    fast = _accel.lookup("kth_smallest_index", x)
    if fast is not None:
        index = fast(x.detach(), valid, k)
    else:  # sort with invalid entries last, take rank k
        order = torch.sort(torch.where(valid, x.detach(), torch.inf), dim=-1, stable=True).indices
        index = order.gather(1, (k - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
    return _gathered(x, index, k > 0)


def lower_median(x: Tensor, valid: Tensor, count: Tensor) -> Tensor:
    """Per-row lower median of the valid entries of ``(G, N)`` rows (rank ``(n + 1) // 2``); 0 for empty rows."""
    if x.shape[-1] == 0:
        return x.sum(dim=-1)
    # NaN marks the entries to ignore; nanmedian is the lower median of the rest
    index = torch.nanmedian(torch.where(valid, x.detach(), torch.nan), dim=-1).indices
    return _gathered(x, index, count > 0)


def _gathered(x: Tensor, index: Tensor, ok: Tensor) -> Tensor:
    value = x.gather(1, index.unsqueeze(1)).squeeze(1)
    return torch.where(ok, value, torch.zeros_like(value))


@autocast_off
def masked_median(x: Tensor, mask: Optional[Tensor] = None, *, scope: Scope = "image") -> Tensor:
    """Exact per-image median of the valid pixels.

    For an even number of valid values this is the *lower* of the two middle values,
    torch's convention (``torch.median``), so the result is always one of the inputs and
    the gradient is one-hot on it. All images are processed at once (no loop over images,
    no host synchronization).

    Args:
        x: ``(B, 1, H, W)`` or ``(B, H, W)`` floating map.
        mask: bool, same shape; ``None`` means every pixel is valid.
        scope: ``"image"`` (default) or ``"batch"`` for the median of the pooled batch.

    Returns:
        ``(B,)`` medians in the compute dtype (float32 for half inputs); 0 for images
        without valid pixels.

    Example:
        >>> x = torch.tensor([[[4.0, 1.0], [3.0, 100.0]]])
        >>> mask = torch.tensor([[[True, True], [True, False]]])
        >>> masked_median(x, mask)
        tensor([3.])
        >>> masked_median(x)  # lower median of 1, 3, 4, 100
        tensor([3.])
    """
    check_choice("scope", scope, SCOPES)
    check_depth_map("x", x)
    check_mask(mask, x, "x")
    values = rows(x, scope).to(compute_dtype(x))
    valid = torch.ones_like(values, dtype=torch.bool) if mask is None else rows(mask, scope)
    return per_image(lower_median(values, valid, valid.sum(dim=-1)), x.shape[0], scope)


# trims are applied as an exact integer fraction with this denominator (6 decimal places)
_TRIM_DENOMINATOR = 1_000_000


class Trimmed(NamedTuple):
    """Per-row sum of the ``keep`` smallest valid values, and ``keep``."""

    kept_sum: Tensor
    keep: Tensor


def kept_count(count: Tensor, trim: float, rounding: str = "ceil") -> Tensor:
    """How many of ``count`` values a trim of ``trim`` keeps.

    ``"ceil"`` (depthloss): ``n - floor(trim * n)``, exact with ``trim`` to 6 decimal places, at
    least 1 for a non-empty row. ``"floor"`` (the MiDaS and Video Depth Anything code):
    ``floor((1 - trim) * n)`` in float64 arithmetic, as Python's ``int(n * (1 - trim))``
    (it may keep 0 values, or one fewer than ``"ceil"``, e.g. 62 of 90 at trim 0.3).
    """
    if rounding == "floor":
        return torch.floor(count.to(torch.float64) * (1.0 - trim)).to(count.dtype)
    # never round up to trim = 1: every non-empty row keeps at least one value
    trim_num = min(round(trim * _TRIM_DENOMINATOR), _TRIM_DENOMINATOR - 1)
    return count - torch.div(count * trim_num, _TRIM_DENOMINATOR, rounding_mode="floor")


def trimmed_sum_rows(r: Tensor, valid: Tensor, count: Tensor, trim: float, rounding: str = "ceil") -> Trimmed:
    """Sum of the ``keep`` smallest valid values of each ``(G, N)`` row (:func:`kept_count`).

    Exact with ties: the values below the cut-off ``tau`` (the ``keep``-th smallest) are summed
    and the remaining ``keep - #{r < tau}`` slots hold ``tau``. Rows without valid entries give 0.
    """
    if trim == 0.0:
        return Trimmed(torch.where(valid, r, 0.0).sum(dim=-1), count)
    keep = kept_count(count, trim, rounding)
    tau = kth_smallest(r, valid, keep)
    below = valid & (r < tau.unsqueeze(-1))
    kept = torch.where(below, r, 0.0).sum(dim=-1) + (keep - below.sum(dim=-1)).to(r.dtype) * tau
    return Trimmed(kept, keep)


def trimmed_mean_rows(r: Tensor, valid: Tensor, count: Tensor, trim: float) -> Tensor:
    """Mean of the ``k = n - floor(trim * n)`` smallest valid values of each ``(G, N)`` row (0 for empty rows)."""
    t = trimmed_sum_rows(r, valid, count, trim)
    return safe_div(t.kept_sum, t.keep.to(r.dtype))


# -- median / MAD normalization ---------------------------------------------------------------
class MadNormalized(NamedTuple):
    """Result of :func:`mad_normalize`: the normalized map and the per-image ``shift`` and ``scale``."""

    x_hat: Tensor
    shift: Tensor
    scale: Tensor


def mad_rows(x: Tensor, valid: Tensor, count: Tensor, eps: float, median_over: str = "valid") -> MadNormalized:
    """``(x - median) / max(mean|x - median|, eps)`` per ``(G, N)`` row over the valid entries.

    ``x_hat`` is 0 at invalid entries, whatever ``x`` holds there. ``median_over="all-pixels"``
    reproduces the MiDaS / Video Depth Anything code: the median of every pixel of the row with
    the invalid ones read as 0 (the MAD stays over the valid entries).
    """
    if median_over == "all-pixels":
        everything = torch.ones_like(valid)
        shift = lower_median(torch.where(valid, x, 0.0), everything, everything.sum(dim=-1))
    else:
        shift = lower_median(x, valid, count)
    centred = torch.where(valid, x - shift.unsqueeze(-1), 0.0)
    mad = safe_div(centred.abs().sum(dim=-1), count.to(x.dtype))
    scale = mad.clamp(min=eps)
    return MadNormalized(centred / scale.unsqueeze(-1), shift, scale)


@autocast_off
def mad_normalize(
    x: Tensor,
    mask: Optional[Tensor] = None,
    eps: float = 1e-6,
    *,
    scope: Scope = "image",
) -> MadNormalized:
    r"""Shift by the median and divide by the mean absolute deviation, per image.

    .. math:: \hat x = \frac{x - \operatorname{med}(x)}{\max\left(\tfrac{1}{n}\sum_i |x_i - \operatorname{med}(x)|,\ \epsilon\right)}

    over the valid pixels (MiDaS's ``normalize_prediction_robust``, with the median taken
    over valid pixels only). The result is invariant to ``x -> a*x + b`` for ``a > 0``
    (as long as the deviation stays above ``eps``).

    Args:
        x: ``(B, 1, H, W)`` or ``(B, H, W)`` floating map.
        mask: bool, same shape; ``None`` means every pixel is valid.
        eps: lower bound on the scale (default ``1e-6``), keeps constant images finite.
        scope: ``"image"`` (default) or ``"batch"``.

    Returns:
        ``MadNormalized(x_hat, shift, scale)``: ``x_hat`` has ``x``'s shape and is 0 at
        invalid pixels; ``shift`` and ``scale`` have shape ``(B,)``. Images without valid
        pixels get ``shift = 0`` and ``scale = eps``.

    Example:
        >>> x = torch.tensor([[[1.0, 2.0], [3.0, 6.0]]])
        >>> x_hat, shift, scale = mad_normalize(x)
        >>> x_hat
        tensor([[[-0.6667,  0.0000],
                 [ 0.6667,  2.6667]]])
        >>> shift, scale
        (tensor([2.]), tensor([1.5000]))
    """
    check_choice("scope", scope, SCOPES)
    check_float("eps", eps, low=0.0, low_inclusive=False)
    p = prepare_one(x, mask, None, scope)
    out = mad_rows(p.x, p.valid, p.n_valid, eps)
    b = x.shape[0]
    return MadNormalized(out.x_hat.reshape(x.shape), per_image(out.shift, b, scope), per_image(out.scale, b, scope))


# -- least squares -------------------------------------------------------------------------
class ScaleShift(NamedTuple):
    """Per-image least-squares ``scale`` and ``shift``, each of shape ``(B,)``."""

    scale: Tensor
    shift: Tensor


# A prediction whose weighted variance is below (_DEGENERATE_ULPS * eps * |mean|)^2 is treated
# as constant: at that level the variance is rounding noise of the centring itself.
_DEGENERATE_ULPS = 64.0


def lsq_rows(pred: Tensor, target: Tensor, w: Tensor) -> ScaleShift:
    """Weighted least squares ``s * pred + t ≈ target`` per ``(G, N)`` row, in centred form.

    ``pred`` and ``target`` must be finite where ``w > 0``.
    """
    sw = w.sum(dim=-1)
    p_mean = safe_div((w * pred).sum(dim=-1), sw)
    t_mean = safe_div((w * target).sum(dim=-1), sw)
    pc = pred - p_mean.unsqueeze(-1)
    var = safe_div((w * pc * pc).sum(dim=-1), sw)
    cov = safe_div((w * pc * (target - t_mean.unsqueeze(-1))).sum(dim=-1), sw)
    info = torch.finfo(pred.dtype)
    constant = var <= (_DEGENERATE_ULPS * info.eps * p_mean.detach()).square() + info.tiny
    scale = torch.where(constant, torch.zeros_like(var), safe_div(cov, var))
    return ScaleShift(scale, t_mean - scale * p_mean)


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
