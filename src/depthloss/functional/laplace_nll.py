"""Laplace negative log-likelihood with a predicted per-pixel log-scale (aleatoric uncertainty)."""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import Tensor

from depthloss._checks import SCOPES, check_reduction
from depthloss.functional._plumbing import Reduction, Scope, autocast_off, reduce_images
from depthloss.functional.gaussian_nll import LOG_SCALE_RANGE, Residual, check_nll_args, nll_terms
from depthloss.functional.statistics import row_mean

__all__ = ["laplace_nll"]


@autocast_off
def laplace_nll(
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
    r"""Laplace negative log-likelihood with a predicted per-pixel log scale.

    .. math:: \mathcal L = \frac{1}{n} \sum_i |r_i|\, e^{-s_i} + s_i \;\big(+ \log 2\big),
              \qquad b_i = e^{s_i}

    over the ``n`` valid pixels, with ``r = log pred - log target`` (``residual="log"``,
    default) or ``r = pred - target`` (``"linear"``). For a fixed ``s`` it is minimized at
    ``pred = target``; for a fixed residual at ``b = |r|`` (``s = log|r|``). The L1
    counterpart of :func:`gaussian_nll`, with the same numerics: ``e^{-s}`` form, at least
    float32, ``s`` clamped to ``log_scale_range`` (default ``[-20, 20]``) with a
    straight-through gradient; ``full=True`` adds the constant ``log 2``.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` prediction (positive where valid for ``"log"``).
        target: same shape.
        log_scale: same shape, the predicted ``log b`` (any real value).
        mask: bool, same shape; ``None`` means every pixel is valid.
        residual: ``"log"`` (default) or ``"linear"``.
        full: add the constant ``log 2`` (default ``False``).
        log_scale_range: ``(low, high)`` clamp of ``log_scale`` (default ``(-20, 20)``).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, ``"none"`` or ``"pixel-mean"``.
        scope: ``"image"`` (default) or ``"batch"`` (one mean over the batch's valid pixels).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Reference:
        A. Kendall and Y. Gal, *What Uncertainties Do We Need in Bayesian Deep Learning for
        Computer Vision?*, NeurIPS 2017 (the Laplace likelihood of §4); E. Ilg et al.,
        *Uncertainty Estimates and Multi-Hypotheses Networks for Optical Flow*, ECCV 2018.

    Example:
        >>> target = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]])
        >>> laplace_nll(target, target, torch.zeros_like(target))
        tensor(0.)
        >>> laplace_nll(target + 0.5, target, torch.zeros_like(target), residual="linear")
        tensor(0.5000)
    """
    check_nll_args(residual, log_scale_range)
    check_reduction(reduction, scope, SCOPES, "laplace_nll")
    t = nll_terms(pred, target, log_scale, mask, residual, log_scale_range, scope)
    nll = t.r.abs() * torch.exp(-t.s) + t.s
    if full:
        nll = nll + math.log(2.0)
    return reduce_images(row_mean(nll, t.w), t.n_valid, reduction)
