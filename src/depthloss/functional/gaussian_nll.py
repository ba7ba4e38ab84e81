"""Gaussian negative log-likelihood with a predicted per-pixel log-scale (aleatoric uncertainty)."""

from __future__ import annotations

import math
from typing import Literal, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from depthloss._checks import SCOPES, check_choice, check_float, check_like, check_ordered, check_reduction
from depthloss.functional._plumbing import Reduction, Scope, autocast_off, compute_dtype, prepare, reduce_images, rows
from depthloss.functional.statistics import row_mean

__all__ = ["gaussian_nll"]

Residual = Literal["log", "linear"]
#: the documented default range of the predicted log-scale (straight-through clamp)
LOG_SCALE_RANGE: Tuple[float, float] = (-20.0, 20.0)


class NllTerms(NamedTuple):
    """Rows of the residual ``r``, the clamped log-scale ``s``, the weights and the valid counts."""

    r: Tensor
    s: Tensor
    w: Tensor
    n_valid: Tensor


def check_nll_args(residual: str, log_scale_range: Tuple[float, float]) -> None:
    """Validate the hyper-parameters shared by the Gaussian and Laplace NLL."""
    check_choice("residual", residual, ("log", "linear"))
    if not isinstance(log_scale_range, (tuple, list)) or len(log_scale_range) != 2:
        raise TypeError(f"log_scale_range must be a pair (low, high), got {log_scale_range!r}")
    low = check_float("log_scale_range", log_scale_range[0])
    high = check_float("log_scale_range", log_scale_range[1])
    check_ordered("log_scale_range", low, high, strict=True, shown=tuple(log_scale_range))


def straight_through_clamp(s: Tensor, low: float, high: float) -> Tensor:
    """``clamp(s, low, high)`` in the forward pass, the identity's gradient in the backward pass.

    A hard clamp would give a zero gradient outside the range, so a log-scale that left it
    could never come back; with the straight-through form the loss's gradient at the clamped
    value keeps pulling it back. Infinite values are read as the bound they exceed.
    """
    s = torch.where(torch.isinf(s), torch.where(s > 0, high, low), s)  # +-inf: the bound (zero gradient)
    # the clamped value exactly (no `s + (clamp(s) - s)` rounding for huge s), the identity's gradient
    return s.clamp(low, high).detach() + (s - s.detach())


def nll_terms(
    pred: Tensor,
    target: Tensor,
    log_scale: Tensor,
    mask: Optional[Tensor],
    residual: str,
    log_scale_range: Tuple[float, float],
    scope: str,
) -> NllTerms:
    """Validate, flatten and sanitize: residual and log-scale are 0 at invalid pixels."""
    check_like("log_scale", log_scale, "pred", pred)
    p = prepare(pred, target, mask, None, scope, fill=1.0)
    dtype = compute_dtype(p.pred, log_scale)
    pr, tr = p.pred.to(dtype), p.target.to(dtype)
    if residual == "log":
        tiny = torch.finfo(dtype).tiny  # a non-positive value at a valid pixel: large but finite
        r = torch.log(pr.clamp(min=tiny)) - torch.log(tr.clamp(min=tiny))
    else:
        r = pr - tr
    s = torch.where(p.valid, rows(log_scale, scope).to(dtype), 0.0)
    s = straight_through_clamp(s, float(log_scale_range[0]), float(log_scale_range[1]))
    return NllTerms(r, s, p.w.to(dtype), p.n_valid)


@autocast_off
def gaussian_nll(
    pred: Tensor,
    target: Tensor,
    log_scale: Tensor,
    mask: Optional[Tensor] = None,
    residual: Residual = "log",
    full: bool = False,
    log_scale_range: Tuple[float, float] = LOG_SCALE_RANGE,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Gaussian negative log-likelihood with a predicted per-pixel log standard deviation.

    .. math:: \mathcal L = \frac{1}{n} \sum_i \tfrac12 \big(r_i\, e^{-s_i}\big)^2 + s_i
              \;\big(+ \tfrac12 \log 2\pi\big),
              \qquad \sigma_i = e^{s_i}

    over the ``n`` valid pixels, with ``r = log pred - log target`` (``residual="log"``,
    default: σ is a relative error, as UniDepth and Metric3D measure depth in log space) or
    ``r = pred - target`` (``"linear"``: σ in the units of the maps). For a fixed ``s`` it is
    minimized at ``pred = target``; for a fixed residual at ``σ² = r²`` (``s = log|r|``).

    **Numerics.** The formula uses ``e^{-s}`` (never ``1/σ²`` of an overflowed ``σ``), in at
    least float32. ``s`` is clamped to ``log_scale_range`` (default ``[-20, 20]``, σ from
    ``2e-9`` to ``5e8``) with a straight-through gradient: the value is finite for any
    predicted log-scale, and a log-scale outside the range still receives the gradient that
    brings it back. ``full=True`` adds the constant ``½ log 2π`` (``torch.nn.GaussianNLLLoss``'s
    ``full``; it changes no gradient).

    **Differences from common code.** ``torch.nn.GaussianNLLLoss`` takes a variance and clamps
    it at ``eps`` (a zero gradient below it) and averages over all pixels of the batch
    (``scope="batch"``); here the network predicts ``log σ``, statistics are per image.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` prediction (positive where valid for ``"log"``).
        target: same shape.
        log_scale: same shape, the predicted ``log σ`` (any real value).
        mask: bool, same shape; ``None`` means every pixel is valid.
        residual: ``"log"`` (default) or ``"linear"``.
        full: add the constant ``½ log 2π`` (default ``False``).
        log_scale_range: ``(low, high)`` clamp of ``log_scale`` (default ``(-20, 20)``).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, ``"none"`` or ``"pixel-mean"``.
        scope: ``"image"`` (default) or ``"batch"`` (one mean over the batch's valid pixels).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Reference:
        A. Kendall and Y. Gal, *What Uncertainties Do We Need in Bayesian Deep Learning for
        Computer Vision?*, NeurIPS 2017 (Eq. 5, ``s = log σ²`` there; here ``s = log σ``).

    Example:
        >>> target = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]])
        >>> gaussian_nll(target, target, torch.zeros_like(target))  # r = 0, σ = 1
        tensor(0.)
        >>> r = math.log(2.0)  # pred = 2 target: the optimum is s = log r
        >>> gaussian_nll(2 * target, target, torch.full_like(target, math.log(r)), residual="log")
        tensor(0.1335)
    """
    check_nll_args(residual, log_scale_range)
    check_reduction(reduction, scope, SCOPES, "gaussian_nll")
    t = nll_terms(pred, target, log_scale, mask, residual, log_scale_range, scope)
    z = t.r * torch.exp(-t.s)
    nll = 0.5 * z * z + t.s
    if full:
        nll = nll + 0.5 * math.log(2.0 * math.pi)
    return reduce_images(row_mean(nll, t.w), t.n_valid, reduction)
