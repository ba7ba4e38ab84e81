"""Float64, loop-based reference oracles for every public kernel of ``depthloss.functional``.

These are written for clarity, not speed, and are deliberately independent of the library:
nothing here imports ``depthloss``. Each oracle follows the formula in DESIGN.md §2-3 and the
kernel's docstring literally:

- inputs are converted to float64 (``.double()``) and results are float64;
- maps are ``(B, 1, H, W)`` or ``(B, H, W)``; statistics are taken over the valid pixels of
  each image (boolean indexing ``x[mask]`` is fine here), or over the whole batch pooled
  as one group for ``scope="batch"``;
- reductions: ``"mean"`` averages the per-image values over images with at least one valid
  pixel (0 if there is none), ``"pixel-mean"`` weights each image by its valid pixels,
  ``"sum"`` sums them, ``"none"`` returns ``(B,)``; under
  ``scope="batch"`` the single pooled value is returned for ``"mean"`` and ``"sum"`` and
  ``"none"`` is an error;
- a group without valid pixels (or with zero total weight) has value 0;
- medians are lower medians: the element of rank ``(n - 1) // 2`` (0-based) of the sorted
  valid values (``torch.median``'s convention).

The composite losses (``ssi_silog``, ``enhanced_ssi``, ``progressive_ssi``, ``ssi_trim``,
``midas``, ``scale_adaptive``, ``near_field_ssi_silog``) are written from the formulas in the
README's Losses table and DESIGN §4 (and their docstrings' definitions), one image at a
time with Python floats, never by calling a building block of the library.

Only hyper-parameter *semantics* are implemented here; input validation is tested in
``test_validation.py`` and the per-loss files.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "abs_rel",
    "berhu",
    "confidence_loss",
    "depth_to_inv",
    "downsample",
    "downsample_sparse",
    "enhanced_ssi",
    "gaussian_nll",
    "gradient_matching",
    "hdn",
    "hdn_random",
    "inv_to_depth",
    "l1",
    "laplace_nll",
    "local_ssi",
    "lsq_scale_shift",
    "mad_normalize",
    "masked_mean",
    "masked_median",
    "masked_var",
    "midas",
    "mse",
    "near_field_ssi_silog",
    "near_field_weights",
    "progressive_ssi",
    "ranking",
    "ranking_pairs",
    "scale_adaptive",
    "scale_weights",
    "schedule",
    "silog",
    "sobel",
    "sobel_mask",
    "ssi",
    "ssi_lsq",
    "ssi_mae",
    "ssi_silog",
    "ssi_trim",
    "temporal_gradient_matching",
    "video_depth",
    "video_depth_authors",
]

Group = Tuple[Tensor, ...]


# --------------------------------------------------------------------------------------------
# plumbing: images, masks, groups, reductions
# --------------------------------------------------------------------------------------------


def _images(x: Tensor) -> Tensor:
    """A float64 copy of a ``(B, 1, H, W)`` or ``(B, H, W)`` map as ``(B, H, W)``."""
    x = x.detach().to("cpu", torch.float64)
    return x[:, 0] if x.dim() == 4 else x.clone()


def _mask_images(mask: Optional[Tensor], like: Tensor) -> Tensor:
    """The bool mask as ``(B, H, W)``; ``None`` means every pixel is valid."""
    if mask is None:
        return torch.ones(_images(like).shape, dtype=torch.bool)
    mask = mask.detach().cpu()
    return mask[:, 0] if mask.dim() == 4 else mask.clone()


def _groups(scope: str, mask: Optional[Tensor], *maps: Optional[Tensor]) -> List[Group]:
    """For every group (one per image, or one for the batch): the 1-D valid values of each map.

    A ``None`` map stands for all-ones weights.
    """
    m = _mask_images(mask, maps[0])
    imgs = [torch.ones(m.shape, dtype=torch.float64) if x is None else _images(x) for x in maps]
    if scope == "batch":
        return [tuple(x[m] for x in imgs)]
    return [tuple(x[b][m[b]] for x in imgs) for b in range(m.shape[0])]


def _reduce(values: Sequence[float], counts: Sequence[int], reduction: str, scope: str) -> Tensor:
    """Per-group values -> the reduced loss (see the module docstring)."""
    if scope == "batch":
        if reduction == "none":
            raise ValueError("reduction='none' needs scope='image'")
        return torch.tensor(float(values[0]), dtype=torch.float64)
    if reduction == "none":
        return torch.tensor([float(v) for v in values], dtype=torch.float64)
    if reduction == "sum":
        return torch.tensor(math.fsum(float(v) for v in values), dtype=torch.float64)
    if reduction == "pixel-mean":  # images weighted by their valid pixels
        total = sum(counts)
        return torch.tensor(
            math.fsum(float(v) * n for v, n in zip(values, counts)) / max(total, 1), dtype=torch.float64
        )
    kept = [float(v) for v, n in zip(values, counts) if n > 0]
    mean = math.fsum(kept) / len(kept) if kept else 0.0
    return torch.tensor(mean, dtype=torch.float64)


def _per_image(values: Sequence[float], batch_size: int, scope: str) -> Tensor:
    """A per-group statistic as ``(B,)``: the pooled value repeated under ``scope="batch"``."""
    if scope == "batch":
        return torch.full((batch_size,), float(values[0]), dtype=torch.float64)
    return torch.tensor([float(v) for v in values], dtype=torch.float64)


def _loss(
    per_group: Callable[..., float],
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor],
    weights: Optional[Tensor],
    reduction: str,
    scope: str,
) -> Tensor:
    """Evaluate ``per_group(p, g, w)`` on every non-empty group (0 for empty ones), then reduce."""
    groups = _groups(scope, mask, pred, target, weights)
    values = [per_group(p, g, w) if p.numel() > 0 else 0.0 for p, g, w in groups]
    return _reduce(values, [p.numel() for p, _, _ in groups], reduction, scope)


def _wmean(x: Tensor, w: Tensor) -> float:
    """Weighted mean ``Σ w x / Σ w``; 0 when ``Σ w = 0``."""
    sw = float(w.sum())
    return float((w * x).sum()) / sw if sw > 0 else 0.0


def _wvar(x: Tensor, w: Tensor) -> float:
    """Weighted population variance ``Σ w (x - μ)² / Σ w``; 0 when ``Σ w = 0``."""
    sw = float(w.sum())
    if sw <= 0:
        return 0.0
    mu = _wmean(x, w)
    return float((w * (x - mu) ** 2).sum()) / sw


def _lower_median(x: Tensor) -> float:
    """Lower median: the sorted value of 0-based rank ``(n - 1) // 2``; 0 for no values."""
    values = sorted(x.tolist())
    return values[(len(values) - 1) // 2] if values else 0.0


# --------------------------------------------------------------------------------------------
# moments, medians, normalization, least squares
# --------------------------------------------------------------------------------------------


def masked_mean(
    x: Tensor, mask: Optional[Tensor] = None, weights: Optional[Tensor] = None, *, scope: str = "image"
) -> Tensor:
    """``μ = Σ w x / Σ w`` over valid pixels; 0 without valid pixels or with zero total weight."""
    groups = _groups(scope, mask, x, weights)
    return _per_image([_wmean(v, w) for v, w in groups], x.shape[0], scope)


def masked_var(
    x: Tensor, mask: Optional[Tensor] = None, weights: Optional[Tensor] = None, *, scope: str = "image"
) -> Tensor:
    """``σ² = Σ w (x - μ)² / Σ w`` over valid pixels (population variance); 0 if empty."""
    groups = _groups(scope, mask, x, weights)
    return _per_image([_wvar(v, w) for v, w in groups], x.shape[0], scope)


def masked_median(x: Tensor, mask: Optional[Tensor] = None, *, scope: str = "image") -> Tensor:
    """Lower median of the valid pixels per image (``sorted(v)[(n - 1) // 2]``); 0 if empty."""
    groups = _groups(scope, mask, x)
    return _per_image([_lower_median(v) for (v,) in groups], x.shape[0], scope)


def _mad(v: Tensor, eps: float) -> Tuple[float, float]:
    """``(median, max(mean |v - median|, eps))`` of a 1-D vector; ``(0, eps)`` when empty."""
    if v.numel() == 0:
        return 0.0, eps
    med = _lower_median(v)
    return med, max(float((v - med).abs().mean()), eps)


def mad_normalize(
    x: Tensor, mask: Optional[Tensor] = None, eps: float = 1e-6, *, scope: str = "image"
) -> Tuple[Tensor, Tensor, Tensor]:
    """``x̂ = (x - med) / max(mean |x - med|, eps)`` at valid pixels, 0 at invalid ones.

    Returns ``(x_hat, shift, scale)`` with ``x_hat`` of ``x``'s shape and ``shift = med``,
    ``scale = max(MAD, eps)`` of shape ``(B,)``; empty images give ``shift = 0, scale = eps``.
    """
    xi, m = _images(x), _mask_images(mask, x)
    b = xi.shape[0]
    x_hat = torch.zeros_like(xi)
    if scope == "batch":
        med, scale = _mad(xi[m], eps)
        x_hat[m] = (xi[m] - med) / scale
        shifts, scales = [med], [scale]
    else:
        shifts, scales = [], []
        for i in range(b):
            med, scale = _mad(xi[i][m[i]], eps)
            shifts.append(med)
            scales.append(scale)
            x_hat[i][m[i]] = (xi[i][m[i]] - med) / scale
    return x_hat.reshape(x.shape), _per_image(shifts, b, scope), _per_image(scales, b, scope)


def _lsq(p: Tensor, g: Tensor, w: Tensor) -> Tuple[float, float]:
    """Weighted least squares ``min Σ w (s p + t - g)²`` by Cramer's rule on the normal equations.

    ``[Σw·p² Σw·p; Σw·p Σw] [s; t] = [Σw·p·g; Σw·g]``. Degenerate systems: zero total
    weight gives ``(0, 0)``; a prediction constant over the pixels with positive weight
    gives ``(0, Σw·g / Σw)``.
    """
    sw = float(w.sum())
    if sw <= 0:
        return 0.0, 0.0
    used = p[w > 0]
    if bool((used == used[0]).all()):
        return 0.0, _wmean(g, w)
    swp, swg = float((w * p).sum()), float((w * g).sum())
    swpp, swpg = float((w * p * p).sum()), float((w * p * g).sum())
    det = sw * swpp - swp * swp
    s = (sw * swpg - swp * swg) / det
    t = (swpp * swg - swp * swpg) / det
    return s, t


def lsq_scale_shift(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    *,
    scope: str = "image",
) -> Tuple[Tensor, Tensor]:
    """Per-image ``(s, t) = argmin Σ w (s·pred + t - target)²`` over valid pixels (see ``_lsq``)."""
    groups = _groups(scope, mask, pred, target, weights)
    fits = [_lsq(p, g, w) if p.numel() > 0 else (0.0, 0.0) for p, g, w in groups]
    b = pred.shape[0]
    return _per_image([f[0] for f in fits], b, scope), _per_image([f[1] for f in fits], b, scope)


# --------------------------------------------------------------------------------------------
# image gradients
# --------------------------------------------------------------------------------------------

# correlation taps: gx uses KX, gy its transpose
_KX = [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]


def _sobel_at(img: List[List[float]], i: int, j: int) -> Tuple[float, float]:
    """``(gx, gy)`` at interior pixel ``(i, j)``: ``Σ_ab K[a][b] x[i+a-1][j+b-1] / 8`` (K^T for gy)."""
    gx = gy = 0.0
    for a in range(3):
        for c in range(3):
            v = img[i + a - 1][j + c - 1]
            gx += _KX[a][c] * v
            gy += _KX[c][a] * v
    return gx / 8.0, gy / 8.0


def _window_valid(m: List[List[bool]], i: int, j: int) -> bool:
    """The 3x3 window around ``(i, j)`` lies inside the image and is entirely valid."""
    h, w = len(m), len(m[0])
    if i < 1 or j < 1 or i > h - 2 or j > w - 2:
        return False
    return all(m[i + a][j + c] for a in (-1, 0, 1) for c in (-1, 0, 1))


def sobel(x: Tensor) -> Tuple[Tensor, Tensor]:
    """Normalized Sobel ``(gx, gy)``: taps ``[-1 0 1; -2 0 2; -1 0 1] / 8`` (and the transpose).

    Correlation (``gx > 0`` where values grow to the right). Pixels without a full 3x3
    window inside the image (the one-pixel border; everything if ``H < 3`` or ``W < 3``) are 0.
    """
    xi = _images(x)
    b, h, w = xi.shape
    gx, gy = torch.zeros_like(xi), torch.zeros_like(xi)
    for n in range(b):
        img = xi[n].tolist()
        for i in range(1, h - 1):
            for j in range(1, w - 1):
                gx[n, i, j], gy[n, i, j] = _sobel_at(img, i, j)
    return gx.reshape(x.shape), gy.reshape(x.shape)


def sobel_mask(mask: Tensor) -> Tensor:
    """True where the whole 3x3 window is inside the image and valid."""
    m = _mask_images(mask, mask)
    out = torch.zeros_like(m)
    for n in range(m.shape[0]):
        ml = m[n].tolist()
        for i in range(m.shape[1]):
            for j in range(m.shape[2]):
                out[n, i, j] = _window_valid(ml, i, j)
    return out.reshape(mask.shape)


def _level_sum(r: List[List[float]], m: List[List[bool]], operator: str) -> float:
    """``Σ |∂x r| + |∂y r|`` over the derivatives whose whole stencil is valid."""
    h, w = len(r), len(r[0])
    total = 0.0
    if operator == "sobel":
        for i in range(h):
            for j in range(w):
                if _window_valid(m, i, j):
                    gx, gy = _sobel_at(r, i, j)
                    total += abs(gx) + abs(gy)
        return total
    # "diff": forward differences, valid where both pixels are valid
    for i in range(h):
        for j in range(w):
            if j + 1 < w and m[i][j] and m[i][j + 1]:
                total += abs(r[i][j + 1] - r[i][j])
            if i + 1 < h and m[i][j] and m[i + 1][j]:
                total += abs(r[i + 1][j] - r[i][j])
    return total


def gradient_matching(
    residual: Tensor,
    mask: Optional[Tensor] = None,
    scales: int = 4,
    operator: str = "sobel",
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """``Σ_s (1 / M_s) Σ_valid |∂x r^s| + |∂y r^s|`` with ``r^s = r[::2^s, ::2^s]`` (mask likewise).

    ``M_s`` is the number of valid pixels at level ``s`` (a level with ``M_s = 0`` adds 0).
    ``scope="batch"`` divides the batch's sum by the batch's count, per level.
    """
    r, m = _images(residual), _mask_images(mask, residual)
    b = r.shape[0]
    # per image and level: (sum of |gradients| over valid stencils, valid pixel count)
    stats = []
    for n in range(b):
        per_level = []
        for s in range(scales):
            step = 2**s
            r_s = [row[::step] for row in r[n].tolist()[::step]]
            m_s = [row[::step] for row in m[n].tolist()[::step]]
            count = sum(sum(1 for v in row if v) for row in m_s)
            # invalid pixels of r may be NaN/inf; they never enter a valid stencil
            r_s = [[v if ok else 0.0 for v, ok in zip(rr, mm)] for rr, mm in zip(r_s, m_s)]
            per_level.append((_level_sum(r_s, m_s, operator), count))
        stats.append(per_level)
    if scope == "batch":
        value = 0.0
        for s in range(scales):
            total = sum(stats[n][s][0] for n in range(b))
            count = sum(stats[n][s][1] for n in range(b))
            value += total / count if count > 0 else 0.0
        values, counts = [value], [int(m.sum())]
    else:
        values = [sum(t / c if c > 0 else 0.0 for t, c in stats[n]) for n in range(b)]
        counts = [int(m[n].sum()) for n in range(b)]
    return _reduce(values, counts, reduction, scope)


# --------------------------------------------------------------------------------------------
# scale(-and-shift)-invariant losses
# --------------------------------------------------------------------------------------------


def ssi(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    alpha: float = 0.85,
    weights: Optional[Tensor] = None,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """``var_w(d) + alpha · mean_w(d)²`` with ``d = pred - target`` (weighted population moments)."""

    def value(p: Tensor, g: Tensor, w: Tensor) -> float:
        d = p - g
        return _wvar(d, w) + alpha * _wmean(d, w) ** 2

    return _loss(value, pred, target, mask, weights, reduction, scope)


def _kept_count(n: int, trim: float) -> int:
    """``k = n - floor(trim · n)`` with ``trim`` read as the exact decimal it was written as."""
    return n - math.floor(Fraction(repr(float(trim))) * n)


def _trimmed(
    p: Tensor,
    g: Tensor,
    m: Tensor,
    trim: float,
    eps: float,
    trim_scope: str,
    trim_rounding: str,
    median_over: str,
    scope: str,
) -> Tuple[Tensor, List[float], List[float]]:
    """The normalized residual map ``p̂ - ĝ`` and, per group, the kept sum of ``|p̂ - ĝ|`` and the kept count.

    ``p̂, ĝ``: shifted by the lower median (of the valid values, or with ``median_over=
    "all-pixels"`` of every pixel, invalid ones read as 0) and divided by ``max(MAD, eps)``
    (MAD over the valid values). Kept: the ``k`` smallest, ``k = n - floor(trim·n)`` (``"ceil"``)
    or ``floor((1 - trim)·n)`` (``"floor"``), per group; ``trim_scope="batch"`` takes one cut
    ``tau`` (the ``k``-th smallest of the whole batch) and shares the slots left at ``tau``
    equally among the values equal to it.
    """
    residual = torch.zeros_like(p)
    groups = _group_indices(scope, p.shape[0])
    for images in groups:
        pv, gv = _valid_values(p, m, images), _valid_values(g, m, images)
        if not pv:
            continue
        if median_over == "all-pixels":
            pm = _lower_median(torch.cat([torch.where(m[b], p[b], 0.0).reshape(-1) for b in images]))
            gm = _lower_median(torch.cat([torch.where(m[b], g[b], 0.0).reshape(-1) for b in images]))
        else:
            pm, gm = (
                _lower_median(torch.tensor(pv, dtype=torch.float64)),
                _lower_median(torch.tensor(gv, dtype=torch.float64)),
            )
        ps = max(math.fsum(abs(x - pm) for x in pv) / len(pv), eps)
        gs = max(math.fsum(abs(x - gm) for x in gv) / len(gv), eps)
        for b in images:
            residual[b][m[b]] = (p[b][m[b]] - pm) / ps - (g[b][m[b]] - gm) / gs
    per_group = [sorted(_valid_values(residual.abs(), m, images)) for images in groups]

    def keep(n: int) -> int:
        return _kept_count(n, trim) if trim_rounding == "ceil" else math.floor(n * (1.0 - trim))

    if trim_scope == "batch" and trim > 0:
        everything = sorted(_valid_values(residual.abs(), m, range(p.shape[0])))
        k = keep(len(everything))
        if k == 0:
            return residual, [0.0] * len(groups), [0.0] * len(groups)
        tau = everything[k - 1]
        below = sum(1 for x in everything if x < tau)
        ties = sum(1 for x in everything if x == tau)
        share = (k - below) / ties
        sums = [math.fsum(x for x in r if x < tau) + share * tau * sum(1 for x in r if x == tau) for r in per_group]
        kept = [sum(1 for x in r if x < tau) + share * sum(1 for x in r if x == tau) for r in per_group]
        return residual, sums, kept
    ks = [keep(len(r)) for r in per_group]
    return residual, [math.fsum(r[:k]) for r, k in zip(per_group, ks)], [float(k) for k in ks]


def ssi_mae(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    trim: float = 0.2,
    eps: float = 1e-6,
    data_scale: float = 1.0,
    trim_denominator: str = "kept",
    trim_scope: str = "image",
    trim_rounding: str = "ceil",
    median_over: str = "valid",
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """``data_scale · (Σ of the kept |p̂ - ĝ|) / den``, ``den`` the kept count or the valid count.

    See :func:`_trimmed`; ``"pixel-mean"`` divides the batch's kept sums by its denominators.
    """
    p, g, m = _images(pred), _images(target), _mask_images(mask, pred)
    _, sums, kept = _trimmed(p, g, m, trim, eps, trim_scope, trim_rounding, median_over, scope)
    counts = [sum(int(m[b].sum()) for b in images) for images in _group_indices(scope, p.shape[0])]
    dens = kept if trim_denominator == "kept" else [float(n) for n in counts]
    if reduction == "pixel-mean":
        return torch.tensor(data_scale * math.fsum(sums) / sum(dens) if sum(dens) > 0 else 0.0, dtype=torch.float64)
    values = [data_scale * s / d if d > 0 else 0.0 for s, d in zip(sums, dens)]
    return _reduce_per_image(values, _counts(m), reduction, scope)


def ssi_lsq(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """``Σ w (s p + t - g)² / Σ w`` with ``(s, t)`` the weighted least-squares fit (see ``_lsq``)."""

    def value(p: Tensor, g: Tensor, w: Tensor) -> float:
        s, t = _lsq(p, g, w)
        return _wmean((s * p + t - g) ** 2, w)

    return _loss(value, pred, target, mask, weights, reduction, scope)


def silog(
    pred_depth: Tensor,
    target_depth: Tensor,
    mask: Optional[Tensor] = None,
    lambd: float = 0.85,
    ratio: float = 10.0,
    weights: Optional[Tensor] = None,
    eps: float = 1e-8,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """``ratio · sqrt(E_w[g²] - lambd · E_w[g]² + eps)``, ``g = log pred - log target``.

    Evaluated as ``var_w(g) + (1 - lambd) · E_w[g]²`` (the same quantity, never negative
    for ``lambd <= 1``); 0 when the total weight is 0.
    """

    def value(p: Tensor, g: Tensor, w: Tensor) -> float:
        if float(w.sum()) <= 0:
            return 0.0
        e = torch.log(p) - torch.log(g)
        return ratio * math.sqrt(_wvar(e, w) + (1.0 - lambd) * _wmean(e, w) ** 2 + eps)

    return _loss(value, pred_depth, target_depth, mask, weights, reduction, scope)


# --------------------------------------------------------------------------------------------
# pointwise losses
# --------------------------------------------------------------------------------------------


def l1(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """``Σ w |p - g| / Σ w`` per image."""
    return _loss(lambda p, g, w: _wmean((p - g).abs(), w), pred, target, mask, weights, reduction, scope)


def mse(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """``Σ w (p - g)² / Σ w`` per image."""
    return _loss(lambda p, g, w: _wmean((p - g) ** 2, w), pred, target, mask, weights, reduction, scope)


def abs_rel(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """``Σ w |p - g| / g / Σ w`` per image (divides by the target)."""
    return _loss(lambda p, g, w: _wmean((p - g).abs() / g, w), pred, target, mask, weights, reduction, scope)


def berhu(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    weights: Optional[Tensor] = None,
    threshold: float = 0.2,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """``Σ w B(d) / Σ w`` with ``B(d) = |d|`` if ``|d| <= c`` else ``(d² + c²) / (2c)``.

    ``c = threshold · max |d|`` over the group's valid pixels (regardless of weights).
    """

    def value(p: Tensor, g: Tensor, w: Tensor) -> float:
        d = [abs(a - b) for a, b in zip(p.tolist(), g.tolist())]
        c = threshold * max(d)
        per_pixel = [x if x <= c else (x * x + c * c) / (2.0 * c) for x in d]
        return _wmean(torch.tensor(per_pixel, dtype=torch.float64), w)

    return _loss(value, pred, target, mask, weights, reduction, scope)


# --------------------------------------------------------------------------------------------
# weights and schedules
# --------------------------------------------------------------------------------------------


def near_field_weights(
    depth: Tensor,
    threshold: Union[float, Tensor] = 1.0,
    near_weight: float = 5.0,
    transition: float = 0.3,
    mode: str = "smooth",
) -> Tensor:
    """Per-pixel weight ``w(d)``, ``w_n = near_weight``, ``t = threshold``, ``τ = transition``.

    - smooth: ``1 + (w_n - 1) · (1 - tanh((d - t) / τ)) / 2``
    - linear: ``w_n`` for ``d <= t - τ``, 1 for ``d >= t + τ``, linear in between
    - step:   ``w_n`` for ``d < t``, else 1

    Non-finite depths (NaN, ±inf) are far: weight 1.
    """
    t = float(threshold)
    x = depth.detach().to("cpu", torch.float64)
    out = torch.empty_like(x)
    flat_in, flat_out = x.reshape(-1), out.reshape(-1)
    for i, d in enumerate(flat_in.tolist()):
        if not math.isfinite(d):
            w = 1.0
        elif mode == "step":
            w = near_weight if d < t else 1.0
        elif mode == "smooth":
            w = 1.0 + (near_weight - 1.0) * 0.5 * (1.0 - math.tanh((d - t) / transition))
        elif d <= t - transition:
            w = near_weight
        elif d >= t + transition:
            w = 1.0
        else:  # linear from (t - τ, w_n) to (t + τ, 1)
            w = near_weight + (1.0 - near_weight) * (d - (t - transition)) / (2.0 * transition)
        flat_out[i] = w
    return out


def schedule(
    progress: Union[float, Tensor], kind: str = "linear", start: float = 1.0, end: float = 0.0, milestone: float = 0.5
) -> float:
    """Interpolate ``start -> end`` over ``p = clamp(progress, 0, 1)``.

    constant: ``s``; linear: ``s + (e - s) p``; cosine: ``e + (s - e) (1 + cos πp) / 2``;
    step: ``s`` if ``p < milestone`` else ``e``.
    """
    p = min(max(float(progress), 0.0), 1.0)
    if kind == "constant":
        return float(start)
    if kind == "linear":
        return start + (end - start) * p
    if kind == "cosine":
        return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * p))
    if kind == "step":
        return float(start) if p < milestone else float(end)
    raise ValueError(kind)


def scale_weights(progress: Union[float, Tensor], num_scales: int, kind: str = "linear") -> Tensor:
    """``w_s = (1 - t) c_s + t f_s``, ``c_s ∝ 2^s``, ``f_s ∝ 2^-s`` (each summing to 1), ``t = schedule(p, kind, 0, 1)``.

    ``kind="constant"`` gives uniform weights ``1 / num_scales``.
    """
    if kind == "constant":
        return torch.tensor([1.0 / num_scales] * num_scales, dtype=torch.float64)
    t = schedule(progress, kind, 0.0, 1.0)
    coarse_total = math.fsum(2.0**s for s in range(num_scales))
    fine_total = math.fsum(2.0**-s for s in range(num_scales))
    return torch.tensor(
        [(1.0 - t) * 2.0**s / coarse_total + t * 2.0**-s / fine_total for s in range(num_scales)],
        dtype=torch.float64,
    )


# --------------------------------------------------------------------------------------------
# pyramids
# --------------------------------------------------------------------------------------------


def _out_size(n: int, factor: int) -> int:
    """``ceil(n / factor)``."""
    return (n + factor - 1) // factor


def _blocks(h: int, w: int, factor: int):
    """Yield ``(oi, oj, rows, cols)``: each output pixel and the input block it covers (clipped)."""
    for oi in range(_out_size(h, factor)):
        for oj in range(_out_size(w, factor)):
            rows = range(oi * factor, min(oi * factor + factor, h))
            cols = range(oj * factor, min(oj * factor + factor, w))
            yield oi, oj, rows, cols


def _bilinear_taps(out_index: int, in_size: int, out_size: int) -> Tuple[int, int, float]:
    """``align_corners=False`` source taps: ``src = (o + 0.5) · in/out - 0.5`` clamped at 0."""
    src = max((out_index + 0.5) * in_size / out_size - 0.5, 0.0)
    i0 = math.floor(src)
    i1 = min(i0 + 1, in_size - 1)
    return i0, i1, src - i0


def downsample(x: Tensor, factor: int, mode: str = "area") -> Tensor:
    """Downsample to ``ceil(H/f) x ceil(W/f)``.

    area: mean of each ``f x f`` block (border blocks average the pixels they hold).
    bilinear: ``align_corners=False`` interpolation to that size, written out explicitly.
    """
    xi = _images(x)
    b, h, w = xi.shape
    oh, ow = _out_size(h, factor), _out_size(w, factor)
    out = torch.zeros(b, oh, ow, dtype=torch.float64)
    for n in range(b):
        img = xi[n].tolist()
        if mode == "area":
            for oi, oj, rows, cols in _blocks(h, w, factor):
                vals = [img[i][j] for i in rows for j in cols]
                out[n, oi, oj] = math.fsum(vals) / len(vals)
        else:
            for oi in range(oh):
                i0, i1, li = _bilinear_taps(oi, h, oh)
                for oj in range(ow):
                    j0, j1, lj = _bilinear_taps(oj, w, ow)
                    top = (1 - lj) * img[i0][j0] + lj * img[i0][j1]
                    bottom = (1 - lj) * img[i1][j0] + lj * img[i1][j1]
                    out[n, oi, oj] = (1 - li) * top + li * bottom
    return out.unsqueeze(1) if x.dim() == 4 else out


def downsample_bilinear_torch(x: Tensor, factor: int) -> Tensor:
    """Second bilinear oracle: torch's own definition, ``F.interpolate`` on float64."""
    xi = _images(x).unsqueeze(1)
    size = (_out_size(xi.shape[-2], factor), _out_size(xi.shape[-1], factor))
    out = F.interpolate(xi, size=size, mode="bilinear", align_corners=False)
    return out if x.dim() == 4 else out[:, 0]


def downsample_sparse(depth: Tensor, mask: Tensor, factor: int, mode: str = "mean") -> Tuple[Tensor, Tensor]:
    """Sparse-aware downsampling to ``ceil(H/f) x ceil(W/f)``; depth is 0 where invalid.

    mean: mean of the block's valid depths, valid if the block has one; min: smallest valid
    depth of the block; nearest: the block's top-left pixel and its validity.
    """
    di, m = _images(depth), _mask_images(mask, depth)
    b, h, w = di.shape
    oh, ow = _out_size(h, factor), _out_size(w, factor)
    out = torch.zeros(b, oh, ow, dtype=torch.float64)
    out_mask = torch.zeros(b, oh, ow, dtype=torch.bool)
    for n in range(b):
        img, ml = di[n].tolist(), m[n].tolist()
        for oi, oj, rows, cols in _blocks(h, w, factor):
            if mode == "nearest":
                i, j = rows[0], cols[0]
                vals = [img[i][j]] if ml[i][j] else []
            else:
                vals = [img[i][j] for i in rows for j in cols if ml[i][j]]
            if vals:
                out_mask[n, oi, oj] = True
                out[n, oi, oj] = math.fsum(vals) / len(vals) if mode == "mean" else min(vals)
    if depth.dim() == 4:
        return out.unsqueeze(1), out_mask.unsqueeze(1)
    return out, out_mask


# --------------------------------------------------------------------------------------------
# conversions
# --------------------------------------------------------------------------------------------


def _clamp(v: float, low: Optional[float], high: Optional[float]) -> float:
    if low is not None:
        v = max(v, low)
    if high is not None:
        v = min(v, high)
    return v


def depth_to_inv(
    depth: Tensor, eps: float = 1e-6, min_depth: Optional[float] = None, max_depth: Optional[float] = None
) -> Tensor:
    """``1 / max(clamp(d, min_depth, max_depth), eps)`` where ``d > 0``; 0 where ``d <= 0`` or NaN."""
    x = depth.detach().to("cpu", torch.float64)
    out = [1.0 / max(_clamp(d, min_depth, max_depth), eps) if d > 0 else 0.0 for d in x.reshape(-1).tolist()]
    return torch.tensor(out, dtype=torch.float64).reshape(x.shape)


def inv_to_depth(
    inv_depth: Tensor, eps: float = 1e-6, min_depth: Optional[float] = None, max_depth: Optional[float] = None
) -> Tensor:
    """``d = 1 / max(v, eps)`` where ``v > 0``, clamped to ``[min_depth, max_depth]``; 0 where ``v <= 0`` or NaN.

    A depth of 0 marks "no measurement" (DESIGN §3: 0 <-> invalid preserved). Every ``v > 0``
    is valid, ``+inf`` included (depth 0+, which the clamp raises to ``min_depth`` when given;
    without ``min_depth`` it stays 0).
    """
    x = inv_depth.detach().to("cpu", torch.float64)
    out = []
    for v in x.reshape(-1).tolist():
        if not v > 0:
            out.append(0.0)
            continue
        d = 1.0 / max(v, eps)
        out.append(_clamp(d, min_depth, max_depth) if (d > 0 or min_depth) else 0.0)
    return torch.tensor(out, dtype=torch.float64).reshape(x.shape)


# --------------------------------------------------------------------------------------------
# composite losses (README "Losses", DESIGN §4), one image (or the pooled batch) at a time
# --------------------------------------------------------------------------------------------


def _clamp_progress(progress: Union[float, Tensor]) -> float:
    return min(max(float(progress), 0.0), 1.0)


def _group_indices(scope: str, batch: int) -> List[List[int]]:
    """The images of each group: one group per image, or one group holding the whole batch."""
    return [list(range(batch))] if scope == "batch" else [[b] for b in range(batch)]


def _valid_values(x: Tensor, m: Tensor, images: Sequence[int]) -> List[float]:
    """The valid values of ``images`` (``(B, H, W)`` float64 and bool), row-major, image after image."""
    out: List[float] = []
    for b in images:
        out.extend(x[b][m[b]].tolist())
    return out


def _counts(m: Tensor) -> List[int]:
    return [int(m[b].sum()) for b in range(m.shape[0])]


def _moments(x: Sequence[float], w: Optional[Sequence[float]] = None) -> Tuple[float, float, float]:
    """``(Σw, E_w[x], E_w[x²])``; the means are 0 when ``Σw = 0``."""
    w = [1.0] * len(x) if w is None else list(w)
    sw = math.fsum(w)
    if sw <= 0:
        return sw, 0.0, 0.0
    return sw, math.fsum(a * b for a, b in zip(w, x)) / sw, math.fsum(a * b * b for a, b in zip(w, x)) / sw


def _ssi_value(d: Sequence[float], alpha: float, w: Optional[Sequence[float]] = None) -> float:
    """The seed's SSI ``var_w(d) + alpha · mean_w(d)²`` (population variance, centred)."""
    sw, mean, _ = _moments(d, w)
    if sw <= 0:
        return 0.0
    w = [1.0] * len(d) if w is None else list(w)
    var = math.fsum(a * (x - mean) ** 2 for a, x in zip(w, d)) / sw
    return var + alpha * mean * mean


def _silog_value(
    g: Sequence[float], ratio: float, ratio2: float, eps: float = 1e-8, w: Optional[Sequence[float]] = None
) -> float:
    """``ratio · sqrt(max(E_w[g²] - ratio2 · E_w[g]², 0) + eps)``; 0 without values."""
    sw, mean, second = _moments(g, w)
    if sw <= 0 or not g:
        return 0.0
    w = [1.0] * len(g) if w is None else list(w)
    var = math.fsum(a * (x - mean) ** 2 for a, x in zip(w, g)) / sw  # E[g²] - E[g]², never negative
    return ratio * math.sqrt(max(var + (1.0 - ratio2) * mean * mean, 0.0) + eps)


def _depth_of_inverse(rho: float, min_depth: Optional[float], max_depth: Optional[float]) -> float:
    """Depth ``z = 1 / ρ`` clamped to ``[min_depth, max_depth]`` (and to at most 1e6: ``ρ >= 1e-6``)."""
    z = 1.0 / max(rho, 1e-6)
    return _clamp(z, min_depth or None, max_depth)


def _reduce_per_image(values: Sequence[float], counts: Sequence[int], reduction: str, scope: str) -> Tensor:
    if scope == "batch":
        return _reduce([values[0]], [sum(counts)], reduction, scope)
    return _reduce(values, counts, reduction, scope)


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
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """``ssi_weight · (var(d) + alpha · mean(d)²) + silog_weight · r sqrt(E[g²] - r2 E[g]² + 1e-8)``.

    ``d = ρ_pred - ρ_target`` on inverse depth, ``g = log z_pred - log z_target`` on depth
    ``z = 1/ρ`` clamped to ``[min_depth, max_depth]``; weighted moments in both terms.
    """

    def value(p: Tensor, g: Tensor, w: Tensor) -> float:
        ps, gs, ws = p.tolist(), g.tolist(), w.tolist()
        d = [a - b for a, b in zip(ps, gs)]
        e = [
            math.log(_depth_of_inverse(a, min_depth, max_depth)) - math.log(_depth_of_inverse(b, min_depth, max_depth))
            for a, b in zip(ps, gs)
        ]
        return ssi_weight * _ssi_value(d, alpha, ws) + silog_weight * _silog_value(e, silog_ratio, silog_ratio2, w=ws)

    return _loss(value, pred_inv, target_inv, mask, weights, reduction, scope)


def _ssi_l1(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor],
    alpha: float,
    w_ssi: float,
    w_l1: float,
    reduction: str,
    scope: str,
) -> Tensor:
    def value(p: Tensor, g: Tensor, w: Tensor) -> float:
        d = (p - g).tolist()
        return w_ssi * _ssi_value(d, alpha) + w_l1 * math.fsum(abs(x) for x in d) / len(d)

    return _loss(value, pred, target, mask, None, reduction, scope)


def enhanced_ssi(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    progress: Union[float, Tensor] = 0.0,
    alpha: float = 0.85,
    ssi_weight: float = 0.8,
    l1_weight: float = 0.2,
    adaptive_weighting: bool = True,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """``w_ssi · SSI + w_l1 · L1``, ``(w_ssi, w_l1) ∝ (ssi_weight + 0.1(1 - p), l1_weight + 0.1 p)``.

    Normalized to sum 1; without ``adaptive_weighting`` the base weights as given.
    """
    p = _clamp_progress(progress)
    if adaptive_weighting:
        a, b = ssi_weight + 0.1 * (1.0 - p), l1_weight + 0.1 * p
        a, b = a / (a + b), b / (a + b)
    else:
        a, b = ssi_weight, l1_weight
    return _ssi_l1(pred, target, mask, alpha, a, b, reduction, scope)


def progressive_ssi(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    progress: Union[float, Tensor] = 0.0,
    alpha: float = 0.85,
    ssi_weight_start: float = 0.9,
    ssi_weight_end: float = 0.7,
    l1_weight_start: float = 0.1,
    l1_weight_end: float = 0.3,
    weight_schedule: str = "linear",
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """``w_ssi(p) · SSI + w_l1(p) · L1`` with each weight ``schedule(p, kind, start, end)``, normalized to sum 1."""
    a = schedule(progress, weight_schedule, ssi_weight_start, ssi_weight_end)
    b = schedule(progress, weight_schedule, l1_weight_start, l1_weight_end)
    return _ssi_l1(pred, target, mask, alpha, a / (a + b), b / (a + b), reduction, scope)


def _group_counts(m: Tensor, scope: str) -> List[int]:
    return [sum(int(m[b].sum()) for b in images) for images in _group_indices(scope, m.shape[0])]


def _data_plus_gradient(
    data_sums: Sequence[float],
    data_dens: Sequence[float],
    residual: Tensor,
    m: Tensor,
    scales: int,
    operator: str,
    alpha: float,
    reduction: str,
    scope: str,
) -> Tensor:
    """``data + alpha · grad`` from per-group data sums and denominators and the residual map."""
    if reduction == "pixel-mean":  # every term and gradient level pooled over the batch
        total = sum(data_dens)
        data = math.fsum(data_sums) / total if total > 0 else 0.0
        grad = float(gradient_matching(residual, m, scales, operator, scope="batch"))
        return torch.tensor(data + alpha * grad, dtype=torch.float64)
    grads = gradient_matching(
        residual, m, scales, operator, reduction="none" if scope == "image" else "mean", scope=scope
    )
    values = [s / d + alpha * g if d > 0 else 0.0 for s, d, g in zip(data_sums, data_dens, grads.reshape(-1).tolist())]
    return _reduce_per_image(values, _counts(m), reduction, scope)


def midas(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    alpha: float = 0.5,
    scales: int = 4,
    operator: str = "diff",
    data_scale: float = 1.0,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """``data_scale · mean (s·p + t - g)² + alpha · Σ_s G_s(s·p + t - g)``, ``(s, t)`` the least-squares fit.

    One fit per image (the pooled batch under ``scope="batch"``); ``G_s`` is the gradient
    term of :func:`gradient_matching` on the aligned residual (0 at invalid pixels).
    ``reduction="pixel-mean"`` (MiDaS's "batch-based"): each term and gradient level summed over
    the batch and divided by the batch's counts.
    """
    p, g, m = _images(pred), _images(target), _mask_images(mask, pred)
    residual = torch.zeros_like(p)
    data: List[float] = []
    for images in _group_indices(scope, p.shape[0]):
        pv, gv = _valid_values(p, m, images), _valid_values(g, m, images)
        if not pv:
            data.append(0.0)
            continue
        s, t = _lsq(
            torch.tensor(pv, dtype=torch.float64),
            torch.tensor(gv, dtype=torch.float64),
            torch.ones(len(pv), dtype=torch.float64),
        )
        for b in images:
            residual[b][m[b]] = s * p[b][m[b]] + t - g[b][m[b]]
        r = [s * a + t - c for a, c in zip(pv, gv)]
        data.append(data_scale * math.fsum(x * x for x in r))
    return _data_plus_gradient(
        data, [float(n) for n in _group_counts(m, scope)], residual, m, scales, operator, alpha, reduction, scope
    )


def ssi_trim(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    trim: float = 0.2,
    alpha: float = 0.5,
    scales: int = 4,
    operator: str = "diff",
    eps: float = 1e-6,
    data_scale: float = 1.0,
    trim_denominator: str = "kept",
    trim_scope: str = "image",
    trim_rounding: str = "ceil",
    median_over: str = "valid",
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """:func:`ssi_mae`'s data term ``+ alpha · Σ_s G_s(p̂ - ĝ)`` (median/MAD-normalized maps).

    ``G_s`` as in :func:`gradient_matching` on the normalized residual; ``"pixel-mean"`` pools
    each term and level over the batch.
    """
    p, g, m = _images(pred), _images(target), _mask_images(mask, pred)
    residual, sums, kept = _trimmed(p, g, m, trim, eps, trim_scope, trim_rounding, median_over, scope)
    dens = kept if trim_denominator == "kept" else [float(n) for n in _group_counts(m, scope)]
    return _data_plus_gradient(
        [data_scale * x for x in sums], dens, residual, m, scales, operator, alpha, reduction, scope
    )


def _masked_block_mean(x: Tensor, m: Tensor, factor: int) -> Tensor:
    """``(B, H, W)`` -> mean of the valid pixels of each ``factor x factor`` block (0 for blocks without one)."""
    b_, h, w = x.shape
    out = torch.zeros(b_, _out_size(h, factor), _out_size(w, factor), dtype=torch.float64)
    for n in range(b_):
        img, ml = x[n].tolist(), m[n].tolist()
        for oi, oj, rows, cols in _blocks(h, w, factor):
            vals = [img[i][j] for i in rows for j in cols if ml[i][j]]
            if vals:
                out[n, oi, oj] = math.fsum(vals) / len(vals)
    return out


def scale_adaptive(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    progress: Union[float, Tensor] = 0.0,
    lambda_sg: float = 0.5,
    num_scales: int = 4,
    alpha_schedule: str = "linear",
    alpha_start: float = 1.0,
    alpha_end: float = 0.0,
    scale_schedule: str = "linear",
    gt_downsample: str = "mean",
    eps: float = 1e-6,
    scale_floor: float = 0.05,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """``Σ_l w_l [(1 - λ) mean|R| + λ · sobel(R)]``, ``R = α(p̂ - ĝ) + (1 - α)(p - g)/s_g`` (README).

    Level ``l`` of a factor-2 pyramid: the target and its mask pooled by
    :func:`downsample_sparse` (``gt_downsample``), the prediction the mean of the valid pixels
    of each block. Per image (or the pooled batch) at each level: ``p̂, ĝ`` MAD-normalized
    (:func:`mad_normalize`), ``s_g = max(MAD_g, scale_floor · |med_g|)`` (``MAD_g`` floored at
    ``eps``), ``α = schedule(progress, alpha_schedule, alpha_start, alpha_end)``. ``mean|R|``
    and the Sobel term (``Σ |∂x R| + |∂y R|`` over full valid 3x3 windows) are divided by the
    level's valid count; ``w = scale_weights(progress, num_scales, scale_schedule)``.
    """
    alpha = schedule(progress, alpha_schedule, alpha_start, alpha_end)
    level_weights = scale_weights(progress, num_scales, scale_schedule).tolist()
    p0, g0, m0 = _images(pred), _images(target), _mask_images(mask, pred)
    groups = _group_indices(scope, p0.shape[0])
    totals = [0.0] * len(groups)
    for level in range(num_scales):
        factor = 2**level
        if level == 0:
            p, g, m = p0, g0, m0
        else:
            g, m = downsample_sparse(g0, m0, factor, gt_downsample)
            p = _masked_block_mean(p0, m0, factor)
        for k, images in enumerate(groups):
            pv, gv = _valid_values(p, m, images), _valid_values(g, m, images)
            n = len(pv)
            if n == 0:
                continue
            pm, ps = _mad(torch.tensor(pv, dtype=torch.float64), eps)
            gm, gs = _mad(torch.tensor(gv, dtype=torch.float64), eps)
            unit = max(gs, scale_floor * abs(gm))

            def residual(a: float, c: float) -> float:
                return alpha * ((a - pm) / ps - (c - gm) / gs) + (1.0 - alpha) * (a - c) / unit

            l1 = math.fsum(abs(residual(a, c)) for a, c in zip(pv, gv)) / n
            grad_sum = 0.0
            for b in images:
                pl, gl, ml = p[b].tolist(), g[b].tolist(), m[b].tolist()
                r = [[residual(a, c) if ok else 0.0 for a, c, ok in zip(pr, gr, mr)] for pr, gr, mr in zip(pl, gl, ml)]
                grad_sum += _level_sum(r, ml, "sobel")
            totals[k] += level_weights[level] * ((1.0 - lambda_sg) * l1 + lambda_sg * grad_sum / n)
    return _reduce_per_image(totals, _counts(m0), reduction, scope)


def near_field_ssi_silog(
    pred_inv: Tensor,
    target_inv: Tensor,
    mask: Optional[Tensor] = None,
    progress: Union[float, Tensor] = 0.0,
    weights: Optional[Tensor] = None,
    alpha: float = 0.85,
    silog_ratio: float = 10.0,
    silog_ratio2: float = 0.85,
    ssi_weight: float = 0.7,
    silog_weight: float = 0.3,
    near_threshold: float = 1.0,
    near_weight: float = 5.0,
    transition: float = 0.3,
    weight_mode: str = "smooth",
    ssi_weighting: str = "weighted-mean",
    ssi_weight_norm: str = "fixed",
    ssi_weight_mean: float = 1.75,
    silog_weight_clamp: Tuple[float, float] = (0.7, 2.0),
    ssi_weight_clamp: Tuple[float, float] = (0.5, 5.0),
    threshold_schedule: Optional[str] = None,
    threshold_start: float = 0.5,
    threshold_end: float = 1.5,
    combine: str = "sum",
    split_weights: Tuple[float, float] = (0.7, 0.3),
    grad_clip: Optional[float] = None,
    min_depth: Optional[float] = None,
    max_depth: Optional[float] = None,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """Near-field-weighted SSI-SILog (README / DESIGN §4), per image or over the pooled batch.

    - ``w``: :func:`near_field_weights` of the target depth (threshold fixed, or
      ``clamp(schedule(progress, ...), 0.3, 3)``), or the explicit ``weights``;
    - SSI on inverse depth ``d``: weighted moments (``"weighted-mean"``), or the seed's
      ``d · clamp(w / w̄, ssi_weight_clamp)`` with ``w̄`` = ``ssi_weight_mean`` or the batch's
      mean weight (``"scaled-diff"``);
    - SILog on depth: ``g · u``, ``u = clamp(sqrt(w) / mean sqrt(w), silog_weight_clamp)``;
    - ``combine="split"``: unweighted SSI-SILog over near (``z < threshold``) and far pixels,
      mixed by ``split_weights`` (one region alone when the other is empty);
    - an explicit weight map that is negative or non-finite at a valid pixel of an image, and
      any non-finite total, fall back to the unweighted SSI-SILog (the baseline).
    ``grad_clip`` changes gradients only.
    """
    p, t, m = _images(pred_inv), _images(target_inv), _mask_images(mask, pred_inv)
    wmap = None if weights is None else _images(weights)
    if threshold_schedule is None:
        threshold = float(near_threshold)
    else:
        threshold = min(max(schedule(progress, threshold_schedule, threshold_start, threshold_end), 0.3), 3.0)

    def depth(rho: float) -> float:
        return _depth_of_inverse(rho, min_depth, max_depth)

    def ssi_silog_of(d: Sequence[float], e: Sequence[float]) -> float:
        return ssi_weight * _ssi_value(d, alpha) + silog_weight * _silog_value(e, silog_ratio, silog_ratio2)

    groups = _group_indices(scope, p.shape[0])
    if ssi_weighting == "scaled-diff" and ssi_weight_norm == "batch":
        all_t = _valid_values(t, m, range(p.shape[0]))
        if wmap is not None:
            all_w = _valid_values(wmap, m, range(p.shape[0]))
        else:
            z_all = torch.tensor([depth(x) for x in all_t], dtype=torch.float64)
            all_w = near_field_weights(z_all, threshold, near_weight, transition, weight_mode).tolist()
        w_bar = math.fsum(all_w) / len(all_w) if all_w else 1.0
    else:
        w_bar = ssi_weight_mean
    values: List[float] = []
    for images in groups:
        pv, tv = _valid_values(p, m, images), _valid_values(t, m, images)
        if not pv:
            values.append(0.0)
            continue
        d = [a - b for a, b in zip(pv, tv)]
        e = [math.log(depth(a)) - math.log(depth(b)) for a, b in zip(pv, tv)]
        z_t = [depth(b) for b in tv]
        baseline = ssi_silog_of(d, e)
        if combine == "split":
            near = [i for i, z in enumerate(z_t) if z < threshold]
            far = [i for i, z in enumerate(z_t) if not z < threshold]
            near_loss = ssi_silog_of([d[i] for i in near], [e[i] for i in near])
            far_loss = ssi_silog_of([d[i] for i in far], [e[i] for i in far])
            if near and far:
                total = split_weights[0] * near_loss + split_weights[1] * far_loss
            else:
                total = near_loss if near else far_loss
        else:
            if wmap is None:
                w = near_field_weights(
                    torch.tensor(z_t, dtype=torch.float64), threshold, near_weight, transition, weight_mode
                ).tolist()
            else:
                w = _valid_values(wmap, m, images)
            if not all(math.isfinite(x) and x >= 0 for x in w):
                values.append(baseline)
                continue
            if ssi_weighting == "weighted-mean":
                ssi_term = _ssi_value(d, alpha, w)
            else:
                lo, hi = ssi_weight_clamp
                ssi_term = _ssi_value([x * min(max(wi / w_bar, lo), hi) for x, wi in zip(d, w)], alpha)
            roots = [math.sqrt(x) for x in w]
            mean_root = max(math.fsum(roots) / len(roots), 1e-12)
            lo, hi = silog_weight_clamp
            u = [min(max(r / mean_root, lo), hi) for r in roots]
            silog_term = _silog_value([a * b for a, b in zip(u, e)], silog_ratio, silog_ratio2)
            total = ssi_weight * ssi_term + silog_weight * silog_term
        values.append(total if math.isfinite(total) else baseline)
    return _reduce_per_image(values, _counts(m), reduction, scope)


# ---------------------------------------------------------------------------------------------
# the authors' forms of the trimmed loss, transcribed (MiDaS gist; Video Depth Anything)
# ---------------------------------------------------------------------------------------------
def midas_gist_normalize(target: Tensor, mask: Tensor) -> Tensor:
    """``normalize_prediction_robust`` of the MiDaS loss gist, as written: the median of
    ``mask * target`` over *all* pixels (invalid ones read as 0), the MAD over valid pixels, clamped at 1e-6.
    ``(B, H, W)`` maps."""
    ssum = torch.sum(mask, (1, 2))
    valid = ssum > 0
    m = torch.zeros_like(ssum, dtype=target.dtype)
    s = torch.ones_like(ssum, dtype=target.dtype)
    m[valid] = torch.median((mask[valid] * target[valid]).view(int(valid.sum()), -1), dim=1).values
    target = target - m.view(-1, 1, 1)
    sq = torch.sum(mask * target.abs(), (1, 2))
    s[valid] = torch.clamp((sq[valid] / ssum[valid]), min=1e-6)
    return target / (s.view(-1, 1, 1))


def midas_gist_trimmed_mae(prediction: Tensor, target: Tensor, mask: Tensor, trim: float = 0.2) -> Tensor:
    """``trimmed_mae_loss`` of the gist, as written: ``torch.sort(...)[: k]`` slices the (values,
    indices) *tuple*, so nothing is trimmed; the sum over the batch is divided by ``2 Σ M``."""
    M = torch.sum(mask, (1, 2))
    res = prediction - target
    res = res[mask.bool()].abs()
    trimmed, _ = torch.sort(res.view(-1), descending=False)[: int(len(res) * (1.0 - trim))]
    return trimmed.sum() / (2 * M.sum())


def vda_trimmed_mae(prediction: Tensor, target: Tensor, mask: Tensor, trim: float = 0.2) -> Tensor:
    """The trimmed MAE as intended (and as Video Depth Anything uses it): sort every valid residual of
    the batch, keep the smallest ``int(n (1 - trim))``, divide by ``2 Σ M`` (all valid pixels)."""
    M = torch.sum(mask, (1, 2))
    res = (prediction - target)[mask.bool()].abs()
    trimmed = torch.sort(res.view(-1), descending=False).values[: int(len(res) * (1.0 - trim))]
    return trimmed.sum() / (2 * M.sum())


# --------------------------------------------------------------------------------------------
# Depth Pro (mage, male, msge, depth_pro) and ZoeDepth's gradient L1 (grad_l1)
# --------------------------------------------------------------------------------------------
# Depth Pro (Bochkovskii et al. 2024, Sec. 3.2): L_{*,p,M} = 1/M Σ_j 1/N_j Σ_i |∇* C^j_i - ∇* Ĉ^j_i|^p,
# the scales j made by blurring and downsampling by 2 (here, as the kernels document: the 2x2
# mean of the valid pixels, both maps over the target's valid pixels), ∇_S the Scharr
# derivative (taps [-3 0 3; -10 0 10; -3 0 3] / 32, |.|^p summed over x and y), ∇_L the 5-point
# Laplacian. Each map gets its own pyramid and its own derivatives here (the kernels use the
# linearity of both to work on the residual).

_SCHARR_X = [[-3.0, 0.0, 3.0], [-10.0, 0.0, 10.0], [-3.0, 0.0, 3.0]]


def _dp_pool(x: List[List[float]], m: List[List[bool]]) -> Tuple[List[List[float]], List[List[bool]]]:
    """The next level: each 2x2 block (partial at the border) -> the mean of its valid pixels."""
    h, w = len(x), len(x[0])
    out = [[0.0] * ((w + 1) // 2) for _ in range((h + 1) // 2)]
    valid = [[False] * ((w + 1) // 2) for _ in range((h + 1) // 2)]
    for i in range((h + 1) // 2):
        for j in range((w + 1) // 2):
            vals = [x[a][b] for a in (2 * i, 2 * i + 1) for b in (2 * j, 2 * j + 1) if a < h and b < w and m[a][b]]
            if vals:
                out[i][j], valid[i][j] = math.fsum(vals) / len(vals), True
    return out, valid


def _dp_stencils(x: List[List[float]], m: List[List[bool]], operator: str) -> List[Tuple[int, int, Tuple[float, ...]]]:
    """``(i, j, derivative components)`` at every position whose whole stencil is valid."""
    h, w = len(x), len(x[0])
    out = []
    for i in range(1, h - 1):
        for j in range(1, w - 1):
            if operator == "scharr":
                if not all(m[i + a][j + b] for a in (-1, 0, 1) for b in (-1, 0, 1)):
                    continue
                gx = sum(_SCHARR_X[a + 1][b + 1] * x[i + a][j + b] for a in (-1, 0, 1) for b in (-1, 0, 1)) / 32.0
                gy = sum(_SCHARR_X[b + 1][a + 1] * x[i + a][j + b] for a in (-1, 0, 1) for b in (-1, 0, 1)) / 32.0
                out.append((i, j, (gx, gy)))
            else:
                if not (m[i][j] and m[i - 1][j] and m[i + 1][j] and m[i][j - 1] and m[i][j + 1]):
                    continue
                lap = x[i - 1][j] + x[i + 1][j] + x[i][j - 1] + x[i][j + 1] - 4.0 * x[i][j]
                out.append((i, j, (lap,)))
    return out


def _dp_level_stats(
    p: List[List[float]], g: List[List[float]], m: List[List[bool]], operator: str, power: int, num_scales: int
) -> List[Tuple[float, int]]:
    """Per level: ``(Σ |∇p - ∇g|^power over valid stencils, their count)``."""
    stats = []
    for j in range(num_scales):
        if j > 0:
            p, _ = _dp_pool(p, m)
            g, m = _dp_pool(g, m)
        dp, dg = _dp_stencils(p, m, operator), _dp_stencils(g, m, operator)
        total = math.fsum(abs(a - b) ** power for (_, _, cp), (_, _, cg) in zip(dp, dg) for a, b in zip(cp, cg))
        stats.append((total, len(dp)))
    return stats


def _dp_images(pred: Tensor, target: Tensor, mask: Optional[Tensor]):
    p, t, m = _images(pred), _images(target), _mask_images(mask, pred)
    for b in range(p.shape[0]):
        mb = m[b].tolist()
        pb = [[v if ok else 0.0 for v, ok in zip(row, mrow)] for row, mrow in zip(p[b].tolist(), mb)]
        tb = [[v if ok else 0.0 for v, ok in zip(row, mrow)] for row, mrow in zip(t[b].tolist(), mb)]
        yield pb, tb, mb


def _dp_levels_value(stats: List[Tuple[float, int]]) -> float:
    return math.fsum(s / n if n > 0 else 0.0 for s, n in stats) / len(stats)


def _dp_pool_batch(per_image: List[List[Tuple[float, int]]]) -> List[Tuple[float, int]]:
    levels = len(per_image[0]) if per_image else 0
    return [(math.fsum(st[j][0] for st in per_image), sum(st[j][1] for st in per_image)) for j in range(levels)]


def _dp_derivative(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor],
    operator: str,
    power: int,
    num_scales: int,
    reduction: str,
    scope: str,
) -> Tensor:
    stats = [_dp_level_stats(p, g, m, operator, power, num_scales) for p, g, m in _dp_images(pred, target, mask)]
    counts = _counts(_mask_images(mask, pred))
    if scope == "batch" or reduction == "pixel-mean":
        value = _dp_levels_value(_dp_pool_batch(stats)) if stats else 0.0
        return torch.tensor(value, dtype=torch.float64)
    return _reduce([_dp_levels_value(st) for st in stats], counts, reduction, scope)


def mage(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    num_scales: int = 6,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """Depth Pro's MAGE, ``L_{S,1,M}``."""
    return _dp_derivative(pred, target, mask, "scharr", 1, num_scales, reduction, scope)


def male(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    num_scales: int = 6,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """Depth Pro's MALE, ``L_{L,1,M}``."""
    return _dp_derivative(pred, target, mask, "laplace", 1, num_scales, reduction, scope)


def msge(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    num_scales: int = 6,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """Depth Pro's MSGE, ``L_{S,2,M}``."""
    return _dp_derivative(pred, target, mask, "scharr", 2, num_scales, reduction, scope)


def depth_pro(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    mae_weight: float = 1.0,
    mage_weight: float = 1.0,
    male_weight: float = 1.0,
    msge_weight: float = 1.0,
    trim: float = 0.2,
    num_scales: int = 6,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """``w_MAE · trimmed MAE + w_MAGE · MAGE + w_MALE · MALE + w_MSGE · MSGE``.

    The trimmed MAE of a group (an image, or the pooled batch): sort its ``n`` absolute errors,
    keep the ``k = n - floor(trim · n)`` smallest, and average them. ``"pixel-mean"``: the kept
    sums of the images over their kept counts, and every derivative level pooled likewise.
    """
    images = list(_dp_images(pred, target, mask))
    errors = [
        sorted(abs(a - b) for pr, gr, mr in zip(p, g, m) for a, b, ok in zip(pr, gr, mr) if ok) for p, g, m in images
    ]
    terms = [(mage_weight, "scharr", 1), (male_weight, "laplace", 1), (msge_weight, "scharr", 2)]
    stats = [[_dp_level_stats(p, g, m, op, pw, num_scales) for _, op, pw in terms] for p, g, m in images]
    counts = [len(e) for e in errors]

    def kept(e: List[float]) -> Tuple[float, int]:
        k = _kept_count(len(e), trim)
        return math.fsum(e[:k]), k

    if scope == "batch" or reduction == "pixel-mean":
        if scope == "batch":
            s, k = kept(sorted(x for e in errors for x in e))
        else:
            pairs = [kept(e) for e in errors]
            s, k = math.fsum(a for a, _ in pairs), sum(n for _, n in pairs)
        value = mae_weight * (s / k if k > 0 else 0.0)
        for t, (w, _, _) in enumerate(terms):
            if stats:
                value += w * _dp_levels_value(_dp_pool_batch([st[t] for st in stats]))
        return torch.tensor(value, dtype=torch.float64)
    values = []
    for e, st in zip(errors, stats):
        s, k = kept(e)
        v = mae_weight * (s / k if k > 0 else 0.0)
        v += math.fsum(w * _dp_levels_value(st[t]) for t, (w, _, _) in enumerate(terms))
        values.append(v)
    return _reduce(values, counts, reduction, scope)


def grad_l1(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    angle: str = "atan2",
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """ZoeDepth's GradL1, one image at a time: at ``(i, j)``, ``i, j >= 1``, where ``(i, j)``,
    ``(i, j-1)`` and ``(i-1, j)`` are valid, ``dx = x[i][j] - x[i][j-1]``, ``dy = x[i][j] - x[i-1][j]``,
    ``mag = dx² + dy²``, ``θ = atan2(dy, dx)`` (``math.atan2(0, 0) = 0``) or ``atan(dy / (dx + 1e-10))``;
    the loss is ``mean |Δmag| + mean |Δθ|`` over those positions (the batch's under
    ``scope="batch"`` or ``reduction="pixel-mean"``)."""
    p, t, m = _images(pred), _images(target), _mask_images(mask, pred)

    def field(x: List[List[float]], i: int, j: int) -> Tuple[float, float]:
        dx, dy = x[i][j] - x[i][j - 1], x[i][j] - x[i - 1][j]
        theta = math.atan2(dy, dx) if angle == "atan2" else math.atan(dy / (dx + 1e-10))
        return dx * dx + dy * dy, theta

    per_image = []
    for b in range(p.shape[0]):
        pb, tb, mb = p[b].tolist(), t[b].tolist(), m[b].tolist()
        mags, angs = [], []
        for i in range(1, len(pb)):
            for j in range(1, len(pb[0])):
                if mb[i][j] and mb[i][j - 1] and mb[i - 1][j]:
                    (mp, ap), (mg, ag) = field(pb, i, j), field(tb, i, j)
                    mags.append(abs(mp - mg))
                    angs.append(abs(ap - ag))
        per_image.append((mags, angs))
    if scope == "batch" or reduction == "pixel-mean":
        mags = [x for ms, _ in per_image for x in ms]
        angs = [x for _, an in per_image for x in an]
        value = math.fsum(mags) / len(mags) + math.fsum(angs) / len(angs) if mags else 0.0
        return torch.tensor(value, dtype=torch.float64)
    values = [math.fsum(ms) / len(ms) + math.fsum(an) / len(an) if ms else 0.0 for ms, an in per_image]
    return _reduce(values, _counts(m), reduction, scope)


def zoedepth_grad_l1(input: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """ZoeDepth's ``GradL1Loss.forward`` as published (``grad``, ``grad_mask``, ``[mask_g]``, ``l1_loss``), float64."""

    def grad(x: Tensor) -> Tuple[Tensor, Tensor]:
        diff_x = x[..., 1:, 1:] - x[..., 1:, :-1]
        diff_y = x[..., 1:, 1:] - x[..., :-1, 1:]
        mag = diff_x**2 + diff_y**2
        angle = torch.atan(diff_y / (diff_x + 1e-10))
        return mag, angle

    input, target = input.double(), target.double()
    grad_gt, grad_pred = grad(target), grad(input)
    mask_g = mask[..., 1:, 1:] & mask[..., 1:, :-1] & mask[..., :-1, 1:]
    loss = F.l1_loss(grad_pred[0][mask_g], grad_gt[0][mask_g])
    return loss + F.l1_loss(grad_pred[1][mask_g], grad_gt[1][mask_g])


# --------------------------------------------------------------------------------------------
# hierarchical depth normalization: hdn, hdn_random (Zhang et al., NeurIPS 2022; Metric3D v2's
# HDNLoss / HDSNLoss / HDNRandomLoss / HDSNRandomLoss), one context at a time
# --------------------------------------------------------------------------------------------


def _hdn_images(scope: str, batch: int) -> List[List[int]]:
    """The images of each group: one per image, or all of them pooled under ``scope="batch"``."""
    return [list(range(batch))] if scope == "batch" else [[b] for b in range(batch)]


def _hdn_mad(v: Tensor) -> float:
    """Mean absolute deviation from the lower median of a 1-D vector (0 if empty)."""
    if v.numel() == 0:
        return 0.0
    med = _lower_median(v)
    return float((v - med).abs().sum()) / v.numel()


def _hdn_context_sum(p: Tensor, g: Tensor, ctx: Tensor, eps: float, valid: Tensor) -> Tuple[float, int]:
    """Metric3D's ``ssi_mae`` on one context: ``(Σ |p̂ - ĝ|, |c|)``, median and MAD over the context only,
    the MAD floored at ``eps`` times the MAD of all ``valid`` pixels (a flat context normalizes to 0)."""
    pv, gv = p[ctx], g[ctx]
    if pv.numel() == 0:
        return 0.0, 0

    def normalized(v: Tensor, whole: Tensor) -> Tensor:
        med = _lower_median(v)
        s = max(_hdn_mad(v), eps * _hdn_mad(whole))
        return (v - med) / s if s > 0 else v - med

    return float((normalized(pv, p[valid]) - normalized(gv, g[valid])).abs().sum()), int(pv.numel())


def _hdn_ranks(g: Tensor, m: Tensor) -> Tensor:
    """Rank of every valid pixel among the group's valid depths (ties by position), -1 elsewhere."""
    flat_g, flat_m = g.reshape(-1), m.reshape(-1)
    positions = [i for i in range(flat_g.numel()) if bool(flat_m[i])]
    ordered = sorted(positions, key=lambda i: (float(flat_g[i]), i))
    ranks = torch.full(flat_g.shape, -1, dtype=torch.int64)
    for r, i in enumerate(ordered):
        ranks[i] = r
    return ranks.reshape(g.shape)


def _hdn_depth_contexts(g: Tensor, m: Tensor, levels: int, bins: str) -> List[Tensor]:
    """The paper's depth hierarchy: level k, 2^k bins of the sorted depths (``quantile``) or of
    equal-width ranges of [min, max] (``range``, Metric3D's ``HDNLoss`` loops, last range closed)."""
    contexts = []
    n = int(m.sum())
    if bins == "quantile":
        ranks = _hdn_ranks(g, m)
        for k in range(levels):
            for j in range(2**k):
                contexts.append(m & (ranks * 2**k // max(n, 1) == j))
        return contexts
    values = g[m]
    lo = float(values.min()) if n else 0.0
    hi = float(values.max()) if n else 0.0
    span = hi - lo
    for k in range(levels):
        anchor = 0.5**k
        for j in range(2**k):
            low_ok = g >= lo + span * j * anchor
            high_ok = g < lo + span * (j + 1) * anchor
            if j == 2**k - 1:
                high_ok = torch.ones_like(m)
            contexts.append(m & low_ok & high_ok)
    return contexts


def _hdn_grid_contexts(m: Tensor, levels: int) -> List[Tensor]:
    """Metric3D's ``HDSNLoss`` windows: level k, 2^k x 2^k slices ``[int(h a H), int((h + 1) a H))``."""
    height, width = m.shape[-2], m.shape[-1]
    contexts = []
    for k in range(levels):
        anchor = 0.5**k
        for h in range(2**k):
            for w in range(2**k):
                window = torch.zeros_like(m)
                window[..., int(h * anchor * height) : int((h + 1) * anchor * height),
                       int(w * anchor * width) : int((w + 1) * anchor * width)] = True  # fmt: skip
                contexts.append(m & window)
    return contexts


def _hdn_window_side(u_size: float, u_start: float, length: int, size: Tuple[float, float]) -> Tuple[int, int]:
    smallest = max(1, int(size[0] * length))
    largest = max(smallest + 1, int(size[1] * length))
    starts = max(length - smallest, 1)
    extent = smallest + min(math.floor(u_size * (largest - smallest)), largest - smallest - 1)
    start = min(math.floor(u_start * starts), starts - 1)
    return start, min(start + extent, length)


def _hdn_random_contexts(
    g: Tensor, m: Tensor, u: Tensor, family: str, bins: str, size: Tuple[float, float]
) -> List[Tensor]:
    """One context per sample row of ``u`` (6 uniforms): a window, or a depth range."""
    height, width = m.shape[-2], m.shape[-1]
    contexts = []
    n = int(m.sum())
    values = g[m]
    lo = float(values.min()) if n else 0.0
    span = float(values.max()) - lo if n else 0.0
    ranks = _hdn_ranks(g, m) if bins == "quantile" and family == "depth" else None
    for row in u.tolist():
        if family == "spatial":
            y0, y1 = _hdn_window_side(row[0], row[2], height, size)
            x0, x1 = _hdn_window_side(row[1], row[3], width, size)
            window = torch.zeros_like(m)
            window[..., y0:y1, x0:x1] = True
            contexts.append(m & window)
        else:
            a = 0.75 * row[4]
            b = a + 0.1 + (0.9 - a) * row[5]
            if ranks is not None:
                contexts.append(m & (ranks >= a * n) & (ranks < b * n))
            else:
                contexts.append(m & (g >= lo + span * a) & (g < lo + span * b))
    return contexts


def _hdn_reduce(family_sums: List[List[Tuple[float, float]]], reduction: str, scope: str) -> Tensor:
    """``family_sums[group][family] = (Σ S, Σ |c|)`` -> mean over families of Σ S / Σ |c|, then reduced."""

    def value(pairs: Sequence[Tuple[float, float]]) -> float:
        kept = [s / n for s, n in pairs if n > 0]
        return math.fsum(kept) / len(kept) if kept else 0.0

    if reduction == "pixel-mean" and scope == "image":
        pooled = [
            (math.fsum(group[f][0] for group in family_sums), math.fsum(group[f][1] for group in family_sums))
            for f in range(len(family_sums[0]) if family_sums else 0)
        ]
        return torch.tensor(value(pooled), dtype=torch.float64)
    values = [value(group) for group in family_sums]
    counts = [int(sum(n for _, n in group)) for group in family_sums]
    return _reduce(values, counts, reduction, scope)


def _hdn_families(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor],
    scope: str,
    eps: float,
    min_pixels: int,
    families: Callable[[Tensor, Tensor, List[int]], List[List[Tensor]]],
) -> List[List[Tuple[float, float]]]:
    p, g, m = _images(pred), _images(target), _mask_images(mask, pred)
    out = []
    for images in _hdn_images(scope, p.shape[0]):
        pi, gi, mi = p[images], g[images], m[images]
        sums = []
        for contexts in families(gi, mi, images):
            total_s, total_n = 0.0, 0.0
            for ctx in contexts:
                s, n = _hdn_context_sum(pi, gi, ctx, eps, mi)
                if n >= max(min_pixels, 1):
                    total_s, total_n = total_s + s, total_n + n
            sums.append((total_s, total_n))
        out.append(sums)
    return out


def hdn(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    grouping: str = "both",
    levels: int = 3,
    bins: str = "quantile",
    min_pixels: int = 1,
    eps: float = 1e-6,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """Per family (depth bins, grid windows): Σ over contexts of Σ |p̂ - ĝ| / Σ |c|; families averaged."""

    def families(g: Tensor, m: Tensor, images: List[int]) -> List[List[Tensor]]:
        out = []
        if grouping in ("depth", "both"):
            out.append(_hdn_depth_contexts(g, m, levels, bins))
        if grouping in ("spatial", "both"):
            out.append(_hdn_grid_contexts(m, levels))
        return out

    return _hdn_reduce(_hdn_families(pred, target, mask, scope, eps, min_pixels, families), reduction, scope)


def hdn_random(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    grouping: str = "both",
    num_windows: int = 20,
    num_ranges: int = 10,
    bins: str = "range",
    window_size: Tuple[float, float] = (0.125, 0.5),
    whole_image: str = "spatial",
    min_pixels: int = 1,
    eps: float = 1e-6,
    samples: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """:func:`hdn` with the contexts of the given ``samples`` (required here): windows, depth ranges,
    and the whole image in the families ``whole_image`` names."""
    if samples is None:
        raise ValueError("the oracle needs explicit samples")
    u_all = samples.detach().to("cpu", torch.float64)

    def families(g: Tensor, m: Tensor, images: List[int]) -> List[List[Tensor]]:
        u = u_all[0] if u_all.shape[0] == 1 else u_all[images[0]]  # (1, S, 6): shared by the batch
        out = []
        if grouping in ("depth", "both"):
            contexts = _hdn_random_contexts(g, m, u, "depth", bins, window_size)
            out.append(contexts + ([m.clone()] if whole_image == "all" else []))
        if grouping in ("spatial", "both"):
            contexts = _hdn_random_contexts(g, m, u, "spatial", bins, window_size)
            out.append(contexts + ([m.clone()] if whole_image != "none" else []))
        return out

    return _hdn_reduce(_hdn_families(pred, target, mask, scope, eps, min_pixels, families), reduction, scope)


# --------------------------------------------------------------------------------------------
# ranking (DIW / structure-guided ranking loss): pairwise ordinal loss and edge-guided sampling
# --------------------------------------------------------------------------------------------
def _ranking_label(ta: float, tb: float, sigma: float) -> int:
    """The authors' ordinal label from the depth ratio (without their +1e-6); equal depths are 0."""
    ratio = ta / tb
    if ratio == 1.0:
        return 0
    if ratio >= 1.0 + sigma:
        return 1
    if ratio <= 1.0 / (1.0 + sigma):
        return -1
    return 0


def ranking(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    *,
    pairs: Tensor,
    tolerance: float = 0.03,
    alpha: float = 1.0,
    pair_denominator: str = "valid",
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """DIW / Xian et al. per image over the given ``(B, P, 2)`` flat pixel pairs (-1: no pair).

    Pair loss ``log(1 + exp(-r (z_A - z_B)))`` for ``r = +-1`` and ``alpha (z_A - z_B)^2`` for
    ``r = 0``, counted where both pixels are valid (positive target, in the mask). Per image:
    the sum over the valid pairs divided by their number (``"valid"``), or the authors'
    ``alpha * equal_loss.mean() + unequal_loss.mean()`` over every drawn pair (``"all"``).
    """
    b = pred.shape[0]
    p = pred.double().reshape(b, -1)
    t = target.double().reshape(b, -1)
    m = torch.ones_like(p, dtype=torch.bool) if mask is None else mask.reshape(b, -1)
    sums: List[float] = []
    valid_counts: List[int] = []
    drawn_counts: List[int] = []
    for i in range(b):
        equal_terms: List[float] = []
        unequal_terms: List[float] = []
        n_valid = 0
        n_drawn = 0
        for ia, ib in pairs[i].tolist():
            if ia < 0 or ib < 0 or ia >= p.shape[1] or ib >= p.shape[1]:
                continue
            n_drawn += 1
            ta, tb = float(t[i, ia]), float(t[i, ib])
            ok = bool(m[i, ia]) and bool(m[i, ib]) and 0 < ta < math.inf and 0 < tb < math.inf
            if not ok:  # the authors' consistency mask: the pair counts as 0
                equal_terms.append(0.0)
                unequal_terms.append(0.0)
                continue
            n_valid += 1
            r = _ranking_label(float(t[i, ia]), float(t[i, ib]), tolerance)
            z = float(p[i, ia]) - float(p[i, ib])
            if r == 0:
                equal_terms.append(z * z)
                unequal_terms.append(0.0)
            else:
                equal_terms.append(0.0)
                x = -r * z  # log(1 + e^x), written without overflow for large x
                unequal_terms.append(max(x, 0.0) + math.log1p(math.exp(-abs(x))))
        # "all": alpha * equal_loss.mean() + unequal_loss.mean() over every drawn pair (the authors')
        sums.append(alpha * math.fsum(equal_terms) + math.fsum(unequal_terms))
        valid_counts.append(n_valid)
        drawn_counts.append(n_drawn)
    den = valid_counts if pair_denominator == "valid" else drawn_counts
    if scope == "batch":
        total_den = sum(den)
        value = math.fsum(sums) / total_den if total_den > 0 else 0.0
        return torch.tensor(value if sum(valid_counts) > 0 else 0.0, dtype=torch.float64)
    values = [s / d if d > 0 and n > 0 else 0.0 for s, d, n in zip(sums, den, valid_counts)]
    if reduction == "none":
        return torch.tensor(values, dtype=torch.float64)
    if reduction == "sum":
        return torch.tensor(math.fsum(values), dtype=torch.float64)
    if reduction == "pixel-mean":  # images weighted by their valid pixels
        pixels = [int((m[i] & torch.isfinite(t[i]) & (t[i] > 0)).sum()) for i in range(b)]
        n_all = sum(pixels)
        return torch.tensor(
            math.fsum(v * n for v, n in zip(values, pixels)) / n_all if n_all else 0.0, dtype=torch.float64
        )
    used = [v for v, n in zip(values, valid_counts) if n > 0]
    return torch.tensor(math.fsum(used) / len(used) if used else 0.0, dtype=torch.float64)


def ranking_pairs(
    target: Tensor,
    mask: Optional[Tensor],
    image: Optional[Tensor],
    num_pairs: int,
    edge_fraction: float,
    min_distance: int,
    max_distance: int,
    edge_threshold: float,
    image_channel: Optional[int],
    direction: str,
    *,
    anchor_u: Tensor,
    dist_u: Tensor,
    pair_u: Tensor,
) -> Tensor:
    """Xian et al.'s edgeGuidedSampling + random pairs, one image at a time, from given uniforms.

    ``anchor_u`` ``(B, K)``, ``dist_u`` ``(B, 4, K)``, ``pair_u`` ``(B, R, 2)``. Sobel with the
    authors' taps (``conv2d``; ``b`` points up): ``direction="authors"`` uses their
    ``theta = atan2(g_up, g_x)`` with rows + d sin(theta); ``"gradient"`` the downward
    derivative. The guiding map is the image (channel mean or ``image_channel``) or the log
    target, over full 3x3 windows of valid pixels only (the library's Sobel rule).
    """
    b = target.shape[0]
    h, w = target.shape[-2], target.shape[-1]
    t = target.double().reshape(b, h, w)
    m = torch.ones(b, h, w, dtype=torch.bool) if mask is None else mask.reshape(b, h, w)
    valid = m & torch.isfinite(t) & (t > 0)
    k = int(num_pairs * edge_fraction) // 3
    r_num = num_pairs - 3 * k
    tap_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=torch.float64).view(1, 1, 3, 3)
    tap_up = torch.tensor([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]], dtype=torch.float64).view(1, 1, 3, 3)
    out = torch.full((b, num_pairs, 2), -1, dtype=torch.int64)
    for i in range(b):
        if image is not None:
            img = image[i].double()
            x = img.mean(dim=0) if image_channel is None else img[image_channel]
            x = torch.where(valid[i], x, 0.0)
        else:
            x = torch.where(valid[i], torch.log(torch.where(valid[i], t[i], 1.0)), 0.0)
        window_ok = valid[i]  # edges only where the whole 3x3 window is valid
        edges: List[Tuple[int, int, float]] = []  # (row, col, theta) of the edge pixels, row-major
        if k > 0 and h >= 3 and w >= 3:
            gx = F.conv2d(x.view(1, 1, h, w), tap_x)[0, 0]
            g_up = F.conv2d(x.view(1, 1, h, w), tap_up)[0, 0]
            mag = torch.zeros(h, w, dtype=torch.float64)
            for rr in range(1, h - 1):
                for cc in range(1, w - 1):
                    if bool(window_ok[rr - 1 : rr + 2, cc - 1 : cc + 2].all()):
                        mag[rr, cc] = math.hypot(float(gx[rr - 1, cc - 1]), float(g_up[rr - 1, cc - 1]))
            top = float(mag.max())
            for rr in range(h):
                for cc in range(w):
                    v = float(mag[rr, cc])
                    if v > 0 and v >= edge_threshold * top:
                        gxv, gup = float(gx[rr - 1, cc - 1]), float(g_up[rr - 1, cc - 1])
                        theta = math.atan2(gup, gxv) if direction == "authors" else math.atan2(-gup, gxv)
                        edges.append((rr, cc, theta))
        if k > 0 and edges:
            points = []
            for j in range(k):
                rank = min(math.floor(float(anchor_u[i, j]) * len(edges)), len(edges) - 1)
                row, col, theta = edges[rank]
                pts = []
                for q, sign in enumerate((-1, -1, 1, 1)):
                    d = min(
                        min_distance + math.floor(float(dist_u[i, q, j]) * (max_distance - min_distance + 1)),
                        max_distance,
                    )
                    cc = min(max(col + round(sign * d * math.cos(theta)), 0), w - 1)
                    rr = min(max(row + round(sign * d * math.sin(theta)), 0), h - 1)
                    pts.append(rr * w + cc)
                points.append(pts)
            for block in range(3):  # A = cat(a, b, c), B = cat(b, c, d)
                for j in range(k):
                    out[i, block * k + j, 0] = points[j][block]
                    out[i, block * k + j, 1] = points[j][block + 1]
        valid_list = [q for q in range(h * w) if bool(valid[i].reshape(-1)[q])]
        n = len(valid_list)
        if n >= 2:
            for j in range(r_num):
                k1 = min(math.floor(float(pair_u[i, j, 0]) * n), n - 1)
                step = min(math.floor(float(pair_u[i, j, 1]) * (n - 1)), n - 2)
                k2 = (k1 + 1 + step) % n
                out[i, 3 * k + j, 0] = valid_list[k1]
                out[i, 3 * k + j, 1] = valid_list[k2]
    return out


# --------------------------------------------------------------------------------------------
# Video Depth Anything: temporal-gradient-matching, video-depth ((B, T, H, W) sequences)
# --------------------------------------------------------------------------------------------
def _sequences(x: Tensor) -> Tensor:
    return x.detach().to("cpu", torch.float64).clone()


def _seq_mask(mask: Optional[Tensor], like: Tensor) -> Tensor:
    return torch.ones(like.shape, dtype=torch.bool) if mask is None else mask.detach().cpu().clone()


def _tgm_group_sums(
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
) -> Tuple[List[List[float]], List[List[int]], List[float]]:
    """Per group (sequence, or the batch) and level: Σ|Δd~ - Δg| over static pixels, their count; level weights."""
    p, g, m = _sequences(pred), _sequences(target), _seq_mask(mask, pred)
    batch, frames = p.shape[0], p.shape[1]
    groups = _group_indices(scope, batch)
    aligned = p.clone()
    if align == "lsq":  # VideoDepthLoss: one least-squares scale and shift per sequence, all frames
        for images in groups:
            pv = [float(v) for b in images for v in p[b][m[b]].tolist()]
            gv = [float(v) for b in images for v in g[b][m[b]].tolist()]
            f64 = torch.float64
            s, t = (
                (0.0, 0.0)
                if not pv
                else _lsq(torch.tensor(pv, dtype=f64), torch.tensor(gv, dtype=f64), torch.ones(len(pv), dtype=f64))
            )
            for b in images:
                aligned[b] = s * p[b] + t
    levels = [k for k in range(temporal_scales) if 2**k < frames]
    sums = [[0.0] * len(levels) for _ in groups]
    counts = [[0] * len(levels) for _ in groups]
    for li, k in enumerate(levels):
        idx = list(range(0, frames, 2**k))
        for gi, images in enumerate(groups):
            parts: List[float] = []
            for b in images:
                for a, c in zip(idx[:-1], idx[1:]):
                    nxt = g[b, c][m[b, c]]
                    if threshold_mode == "range":
                        if nxt.numel() == 0:
                            continue
                        tau = threshold * float(nxt.max() - nxt.min())
                    else:
                        tau = threshold
                    both = m[b, a] & m[b, c]
                    dg = g[b, c][both] - g[b, a][both]
                    dp = aligned[b, c][both] - aligned[b, a][both]
                    static = dg.abs() < tau
                    for x, y in zip(dp[static].tolist(), dg[static].tolist()):
                        parts.append(abs(abs(x) - abs(y)) if absolute else abs(x - y))
                    counts[gi][li] += int(static.sum())
            sums[gi][li] = math.fsum(parts)
    weights = [decay**k / len(levels) for k in levels]
    return sums, counts, weights


def temporal_gradient_matching(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    threshold: float = 0.05,
    threshold_mode: str = "range",
    align: str = "lsq",
    absolute: bool = False,
    temporal_scales: int = 1,
    decay: float = 0.5,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """Mean over static pixel pairs of ``|Δd~ - Δg|`` per sequence (Video Depth Anything, Sec. 3.2).

    Static: valid in both frames and ``|g_{i+1} - g_i| < τ``, ``τ = threshold · (max - min)``
    of frame ``i + 1``'s valid target (``"range"``) or ``threshold``. ``d~``: the prediction
    with one least-squares scale and shift per sequence. Levels: frame strides ``2**k < T``,
    weighted ``decay**k``, averaged. ``"pixel-mean"`` pools each level's sums and counts.
    """
    sums, counts, weights = _tgm_group_sums(
        pred, target, mask, threshold, threshold_mode, align, absolute, temporal_scales, decay, scope
    )
    if reduction == "pixel-mean":
        value = math.fsum(
            w * (sum(s[li] for s in sums) / n if (n := sum(c[li] for c in counts)) > 0 else 0.0)
            for li, w in enumerate(weights)
        )
        return torch.tensor(value, dtype=torch.float64)
    values = [
        math.fsum(w * (s[li] / c[li] if c[li] > 0 else 0.0) for li, w in enumerate(weights))
        for s, c in zip(sums, counts)
    ]
    return _reduce(values, [c[0] if c else 0 for c in counts], reduction, scope)


def video_depth(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    tgm_weight: float = 10.0,
    alpha: float = 0.5,
    scales: int = 4,
    trim: float = 0.0,
    eps: float = 1e-6,
    median_over: str = "valid",
    threshold: float = 0.05,
    threshold_mode: str = "range",
    align: str = "lsq",
    absolute: bool = False,
    temporal_scales: int = 1,
    decay: float = 0.5,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """Per sequence: :func:`ssi_trim` of its frames pooled ("pixel-mean" over the frames) + ``tgm_weight`` TGM.

    Each frame is median/MAD-normalized on its own; the data sums, kept counts and gradient
    levels of a sequence's frames (the batch's, under ``scope="batch"`` or ``"pixel-mean"``)
    are pooled, as the authors' "batch-based" reduction pools the frames of a batch.
    """
    p, g = _sequences(pred), _sequences(target)
    m = _seq_mask(mask, pred)
    batch, frames, h, w = p.shape
    spatial_kw = dict(trim=trim, alpha=alpha, scales=scales, operator="diff", eps=eps, median_over=median_over)
    temporal_kw = dict(
        threshold=threshold, threshold_mode=threshold_mode, align=align, absolute=absolute,
        temporal_scales=temporal_scales, decay=decay,
    )  # fmt: skip
    if reduction == "pixel-mean" or scope == "batch":
        flat = (batch * frames, h, w)
        spatial = float(
            ssi_trim(p.reshape(flat), g.reshape(flat), m.reshape(flat), **spatial_kw, reduction="pixel-mean")
        )
        tgm = float(
            temporal_gradient_matching(
                p, g, m, **temporal_kw, reduction="pixel-mean" if scope == "image" else "mean", scope=scope
            )
        )  # type: ignore[arg-type]
        return torch.tensor(spatial + tgm_weight * tgm, dtype=torch.float64)
    tgm_values = temporal_gradient_matching(p, g, m, **temporal_kw, reduction="none")  # type: ignore[arg-type]
    values = []
    for b in range(batch):
        spatial = float(ssi_trim(p[b], g[b], m[b], **spatial_kw, reduction="pixel-mean"))  # type: ignore[arg-type]
        values.append(spatial + tgm_weight * float(tgm_values[b]))
    return _reduce(values, [int(m[b].sum()) for b in range(batch)], reduction, scope)


def video_depth_authors(pred: Tensor, target: Tensor, mask: Tensor, stable_scale: float = 10.0) -> Tensor:
    """Transcription of the structure of the authors' ``VideoDepthLoss`` (``loss/loss.py``; trim 0, batch-based).

    Per frame: median of ``mask * x`` over *all* pixels, MAD over valid ones; data term the sum of
    ``|p^ - g^|`` over the batch's valid pixels divided by their count; 4-level gradient term
    (every ``2**s``-th pixel, forward differences valid where both pixels are, each level's sum
    over the batch divided by its count of valid pixels). Then one scale and shift per sequence
    from the normal equations with ``det + 1e-6``; TGM of the signed temporal changes where both
    frames are valid and ``|Δg| < 0.05 (max - min)`` of the later frame's valid target; its
    sum over the batch divided by the count.
    """
    p, g, m = _sequences(pred), _sequences(target), mask.detach().cpu().clone()
    batch, frames, h, w = p.shape
    pf, gf, mf = p.reshape(-1, h, w), g.reshape(-1, h, w), m.reshape(-1, h, w)

    def normalize(x: Tensor) -> Tensor:
        out = torch.zeros_like(x)
        for i in range(x.shape[0]):
            if mf[i].sum() == 0:
                out[i] = x[i]
                continue
            med = float(torch.median((mf[i].double() * x[i]).reshape(-1)))
            scale = max(float((mf[i].double() * (x[i] - med).abs()).sum()) / float(mf[i].sum()), 1e-6)
            out[i] = (x[i] - med) / scale
        return out

    ph, gh = normalize(pf), normalize(gf)
    res = (ph - gh)[mf].abs()
    total = float(res.sum()) / float(mf.sum())
    diff = (ph - gh) * mf.double()
    for s in range(4):
        st = 2**s
        d, mk = diff[:, ::st, ::st], mf[:, ::st, ::st].double()
        gx = ((d[:, :, 1:] - d[:, :, :-1]).abs() * mk[:, :, 1:] * mk[:, :, :-1]).sum()
        gy = ((d[:, 1:, :] - d[:, :-1, :]).abs() * mk[:, 1:, :] * mk[:, :-1, :]).sum()
        total += 0.5 * float(gx + gy) / float(mk.sum())
    aligned = p.clone()
    for b in range(batch):
        mb = m[b].double()
        a00, a01, a11 = float((mb * p[b] * p[b]).sum()), float((mb * p[b]).sum()), float(mb.sum())
        b0, b1 = float((mb * p[b] * g[b]).sum()), float((mb * g[b]).sum())
        det = a00 * a11 - a01 * a01
        s_, t_ = ((a11 * b0 - a01 * b1) / (det + 1e-6), (-a01 * b0 + a00 * b1) / (det + 1e-6)) if det != 0 else (0, 0)
        aligned[b] = s_ * p[b] + t_
    num, den = 0.0, 0
    for b in range(batch):
        for i in range(frames - 1):
            nxt = g[b, i + 1][m[b, i + 1]]
            tau = 0.05 * float(nxt.max() - nxt.min()) if nxt.numel() else -math.inf
            sel = m[b, i] & m[b, i + 1] & ((g[b, i + 1] - g[b, i]).abs() < tau)
            num += float(((aligned[b, i + 1] - aligned[b, i]) - (g[b, i + 1] - g[b, i]))[sel].abs().sum())
            den += int(sel.sum())
    return torch.tensor(total + stable_scale * (num / den if den else 0.0), dtype=torch.float64)


# --------------------------------------------------------------------------------------------
# uncertainty and local losses: gaussian_nll, laplace_nll, confidence_loss, local_ssi
# --------------------------------------------------------------------------------------------


def _nll(
    kind: str,
    pred: Tensor,
    target: Tensor,
    log_scale: Tensor,
    mask: Optional[Tensor],
    residual: str,
    full: bool,
    log_scale_range: Tuple[float, float],
    reduction: str,
    scope: str,
) -> Tensor:
    """Per pixel NLL with ``s`` clamped to the range, mean over each group's valid pixels."""
    lo, hi = log_scale_range
    values, counts = [], []
    for p, g, s in _groups(scope, mask, pred, target, log_scale):
        terms = []
        for pi, gi, si in zip(p.tolist(), g.tolist(), s.tolist()):
            r = math.log(pi) - math.log(gi) if residual == "log" else pi - gi
            sc = min(max(si, lo), hi)
            if kind == "gaussian":
                terms.append(0.5 * (r / math.exp(sc)) ** 2 + sc + (0.5 * math.log(2 * math.pi) if full else 0.0))
            else:
                terms.append(abs(r) / math.exp(sc) + sc + (math.log(2.0) if full else 0.0))
        values.append(math.fsum(terms) / len(terms) if terms else 0.0)
        counts.append(len(terms))
    return _reduce(values, counts, reduction, scope)


def gaussian_nll(
    pred: Tensor,
    target: Tensor,
    log_scale: Tensor,
    mask: Optional[Tensor] = None,
    residual: str = "log",
    full: bool = False,
    log_scale_range: Tuple[float, float] = (-20.0, 20.0),
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """``mean(½ (r / σ)² + log σ)``, ``σ = exp(clamp(s))``, ``r = log p - log g`` or ``p - g``."""
    return _nll("gaussian", pred, target, log_scale, mask, residual, full, log_scale_range, reduction, scope)


def laplace_nll(
    pred: Tensor,
    target: Tensor,
    log_scale: Tensor,
    mask: Optional[Tensor] = None,
    residual: str = "log",
    full: bool = False,
    log_scale_range: Tuple[float, float] = (-20.0, 20.0),
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """``mean(|r| / b + log b)``, ``b = exp(clamp(s))``."""
    return _nll("laplace", pred, target, log_scale, mask, residual, full, log_scale_range, reduction, scope)


def confidence_loss(
    pred: Tensor,
    target: Tensor,
    confidence: Tensor,
    mask: Optional[Tensor] = None,
    form: str = "metric3d",
    detach_pred: bool = True,
    rescale: bool = True,
    output: Optional[str] = None,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """Metric3D v2 ``ConfidenceLoss`` / UniDepth ``Confidence``, per group (``detach_pred`` changes no value).

    Metric3D: ``conf_mask = |g - p| < g``; ``gt = 1 - |(p - g) / g|``; ``Σ |c - gt|`` over
    ``conf_mask`` / its count. UniDepth: ``p * median(g) / median(p)``; ``mean | |p - g| - c |``;
    ``sqrt(x + 1e-4)``.
    """
    out = output or ("linear" if form == "metric3d" else "sqrt")
    values, counts = [], []
    for p, g, c in _groups(scope, mask, pred, target, confidence):
        if form == "metric3d":
            conf_mask = (g - p).abs() < g
            gt_confidence = 1.0 - ((p[conf_mask] - g[conf_mask]) / g[conf_mask]).abs()
            errors = (c[conf_mask] - gt_confidence).abs().tolist()
        else:
            if rescale and p.numel() > 0:
                mp = _lower_median(p)
                p = p * (_lower_median(g) / mp if mp > 0 else 0.0)
            errors = (((p - g).abs()) - c).abs().tolist()
        value = math.fsum(errors) / len(errors) if errors else 0.0
        if out == "sqrt" and errors:
            value = math.sqrt(value + 1e-4)
        values.append(value)
        counts.append(len(errors))
    return _reduce(values, counts, reduction, scope)


def _edge_map(img: Tensor, m: Tensor, channels: Optional[Tensor]) -> List[List[float]]:
    """Sobel magnitude of the target (``channels is None``) or of the image's channels (RMS over
    channels, 3-pixel border dropped), where the full 3x3 window is valid; 0 elsewhere."""
    h, w = m.shape
    edges = [[0.0] * w for _ in range(h)]
    border = 1 if channels is None else 3
    for i in range(border, h - border):
        for j in range(border, w - border):
            if not bool(m[i - 1 : i + 2, j - 1 : j + 2].all()):
                continue
            if channels is None:
                gx, gy = _sobel_at(img.tolist(), i, j)
            else:
                gxs, gys = [], []
                for ch in channels:
                    a, c = _sobel_at(ch.tolist(), i, j)
                    gxs.append(a * a)
                    gys.append(c * c)
                gx, gy = math.sqrt(sum(gxs) / len(gxs)), math.sqrt(sum(gys) / len(gys))
            edges[i][j] = math.sqrt(gx * gx + gy * gy)
    return edges


def _aligned_error(p: List[float], g: List[float], align: str, penalty: str, output: str) -> float:
    """One window (or image): align, mean penalty of the residual, output function."""
    pt, gt = torch.tensor(p, dtype=torch.float64), torch.tensor(g, dtype=torch.float64)
    if align == "lsq":
        s, t = _lsq(pt, gt, torch.ones_like(pt))
        r = s * pt + t - gt
    else:

        def standardize(x: Tensor) -> Tensor:
            mu = float(x.mean())
            var = float(((x - mu) ** 2).mean())
            return (x - mu) / math.sqrt(var + 1e-4)

        r = standardize(pt) - standardize(gt)
    e = r.abs() if penalty == "l1" else r * r
    value = float(e.mean())
    return math.sqrt(value + 1e-4) if output == "sqrt" else value


def local_ssi(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    image: Optional[Tensor] = None,
    num_windows: int = 128,
    window_size: Optional[int] = None,
    sampling: str = "edges",
    edge_quantile: float = 0.9,
    align: str = "lsq",
    penalty: str = "l1",
    output: str = "sqrt",
    min_samples: int = 6,
    use_global: bool = True,
    generator: Optional[torch.Generator] = None,
    *,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """Edge-guided local SSI, written as UniDepth's loop over windows (deterministic samplings only).

    Per image: edge map; candidates = valid pixels with edge > the ``ceil(q n)``-th smallest
    valid edge (all valid pixels if none, or for ``"grid"``); centre ``j`` = candidate of rank
    ``floor((j + ½) |cand| / K)``; windows of valid in-image pixels with ``>= min_samples``
    pixels are aligned and scored; local = their mean; ``(local + global) / 2``.
    """
    if sampling == "random":
        raise ValueError("the oracle covers the deterministic samplings")
    P, T, M = _images(pred), _images(target), _mask_images(mask, pred)
    b_size, h, w = M.shape
    if window_size is None:
        window_size = int(0.05 * min(h, w))
        window_size = max(3, window_size + int(window_size % 2 == 0))
    half = window_size // 2
    img = None if image is None else image.detach().to("cpu", torch.float64)
    if img is not None and img.dim() == 3:
        img = img.unsqueeze(1)
    window_errors: List[List[float]] = []
    whole: List[Tuple[List[float], List[float]]] = []
    for b in range(b_size):
        m = M[b]
        edges = _edge_map(T[b], m, None if img is None else img[b])
        valid = [(i, j) for i in range(h) for j in range(w) if bool(m[i, j])]
        whole.append(([float(P[b, i, j]) for i, j in valid], [float(T[b, i, j]) for i, j in valid]))
        errors: List[float] = []
        n = len(valid)
        if n > 0:
            k = min(max(math.ceil(edge_quantile * n), 1), n)
            tau = sorted(edges[i][j] for i, j in valid)[k - 1]
            strong = [(i, j) for i, j in valid if edges[i][j] > tau]
            cand = valid if sampling == "grid" or not strong else strong
            for jj in range(num_windows):
                ci, cj = cand[min(math.floor((jj + 0.5) * len(cand) / num_windows), len(cand) - 1)]
                p, g = [], []
                for i in range(ci - half, ci + half + 1):
                    for j in range(cj - half, cj + half + 1):
                        if 0 <= i < h and 0 <= j < w and bool(m[i, j]):
                            p.append(float(P[b, i, j]))
                            g.append(float(T[b, i, j]))
                if len(p) >= min_samples:
                    errors.append(_aligned_error(p, g, align, penalty, output))
        window_errors.append(errors)

    def combine(errors: List[float], p: List[float], g: List[float]) -> float:
        local = math.fsum(errors) / len(errors) if errors else 0.0
        if not use_global:
            return local
        glob = _aligned_error(p, g, align, penalty, output) if p else 0.0
        return 0.5 * (local + glob)

    counts = [len(p) for p, _ in whole]
    if scope == "batch":
        all_errors = [e for errs in window_errors for e in errs]
        all_p = [x for p, _ in whole for x in p]
        all_g = [x for _, g in whole for x in g]
        return _reduce([combine(all_errors, all_p, all_g)], [sum(counts)], reduction, scope)
    values = [combine(window_errors[b], *whole[b]) for b in range(b_size)]
    return _reduce(values, counts, reduction, scope)


def confidence_metric3d_authors(prediction: Tensor, target: Tensor, confidence: Tensor, mask: Tensor) -> Tensor:
    """Metric3D v2's ``ConfidenceLoss.forward`` as published (batch pooled, ``+ 1e-6`` in the denominator)."""
    prediction, target, confidence = (x.detach().double() for x in (prediction, target, confidence))
    conf_mask = torch.abs(target - prediction) < target
    conf_mask = conf_mask & mask
    gt_confidence = 1 - torch.abs((prediction[conf_mask] - target[conf_mask]) / target[conf_mask])
    return torch.sum(torch.abs(confidence[conf_mask] - gt_confidence)) / (confidence[conf_mask].numel() + 1e-6)


# --------------------------------------------------------------------------------------------
# geometry losses: normal, vnl (surface normals from depth, virtual normals of triplets)
# --------------------------------------------------------------------------------------------
def _k_values(K: Any, b: int) -> Tuple[float, float, float, float]:
    """``(fx, fy, cx, cy)`` of image ``b`` from a tuple, a ``(B, 4)`` or a ``(B, 3, 3)`` tensor."""
    if isinstance(K, Tensor):
        k = K.detach().to(torch.float64)
        if k.dim() == 3:
            return float(k[b, 0, 0]), float(k[b, 1, 1]), float(k[b, 0, 2]), float(k[b, 1, 2])
        return float(k[b, 0]), float(k[b, 1]), float(k[b, 2]), float(k[b, 3])
    return tuple(float(v) for v in K)  # type: ignore[return-value]


def _point(z: float, u: int, v: int, k: Tuple[float, float, float, float]) -> List[float]:
    fx, fy, cx, cy = k
    return [(u - cx) * z / fx, (v - cy) * z / fy, z]


def _sub(a: List[float], b: List[float]) -> List[float]:
    return [a[0] - b[0], a[1] - b[1], a[2] - b[2]]


def _cross(a: List[float], b: List[float]) -> List[float]:
    return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]


def _dot(a: List[float], b: List[float]) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _geo_reduce(values: List[float], counts: List[int], pixels: List[int], reduction: str) -> Tensor:
    """Mean over images with a counted stencil/triplet; pixel-mean weighted by valid pixels."""
    if reduction == "pixel-mean":
        return torch.tensor(math.fsum(v * n for v, n in zip(values, pixels)) / max(sum(pixels), 1), dtype=torch.float64)
    return _reduce(values, counts, reduction, "image")


def _normal_at(
    z: List[List[float]], m: List[List[bool]], i: int, j: int, k: Any, stencil: str
) -> Optional[List[float]]:
    """The unit normal facing the camera at pixel (i, j), or None when its stencil is not valid."""
    h, w = len(z), len(z[0])
    if stencil == "central":
        cells = [(i, j), (i, j - 1), (i, j + 1), (i - 1, j), (i + 1, j)]
    else:
        cells = [(i, j), (i, j + 1), (i + 1, j)]
    if not all(0 <= a < h and 0 <= c < w and m[a][c] for a, c in cells):
        return None
    P = {(a, c): _point(z[a][c], c, a, k) for a, c in cells}
    if stencil == "central":
        du, dv = _sub(P[(i, j + 1)], P[(i, j - 1)]), _sub(P[(i + 1, j)], P[(i - 1, j)])
    else:
        du, dv = _sub(P[(i, j + 1)], P[(i, j)]), _sub(P[(i + 1, j)], P[(i, j)])
    n = _cross(dv, du)
    if _dot(n, P[(i, j)]) > 0:  # face the camera
        n = [-n[0], -n[1], -n[2]]
    length = math.sqrt(_dot(n, n))
    if length == 0.0:
        return None
    return [n[0] / length, n[1] / length, n[2] / length]


def normal(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    K: Any = None,
    kind: str = "cosine",
    stencil: str = "central",
    eps: float = 1e-6,
    *,
    target_normals: Optional[Tensor] = None,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """Per pixel: normals of both depth maps from their back-projected neighbours, ``1 - cos`` or the angle."""
    P, T = _images(pred), _images(target)
    M = _mask_images(mask, pred)
    errors: List[List[float]] = []
    pixels: List[int] = []
    for b in range(P.shape[0]):
        k = _k_values(K, b)
        m = M[b].tolist()
        zp, zt = P[b].tolist(), T[b].tolist()
        h, w = len(m), len(m[0]) if m else 0
        errs = []
        for i in range(h):
            for j in range(w):
                n_p = _normal_at(zp, m, i, j, k, stencil)
                if target_normals is None:
                    n_g = _normal_at(zt, m, i, j, k, stencil)
                else:
                    g = [float(target_normals[b, c, i, j]) for c in range(3)]
                    length = math.sqrt(_dot(g, g)) if all(math.isfinite(x) for x in g) and m[i][j] else 0.0
                    n_g = [x / length for x in g] if length > 0 else None
                if n_p is None or n_g is None:
                    continue
                c = _dot(n_p, n_g)
                errs.append(max(1.0 - c, 0.0) if kind == "cosine" else math.acos(min(max(c, -1.0 + eps), 1.0 - eps)))
        errors.append(errs)
        pixels.append(int(M[b].sum()))
    if scope == "batch":
        pooled = [e for errs in errors for e in errs]
        return torch.tensor(math.fsum(pooled) / len(pooled) if pooled else 0.0, dtype=torch.float64)
    values = [math.fsum(e) / len(e) if e else 0.0 for e in errors]
    return _geo_reduce(values, [len(e) for e in errors], pixels, reduction)


def _vnl_keep(g: List[List[float]], delta_cos: float, delta_diff: float, delta_z: float) -> bool:
    """The authors' ``filter_mask`` for one triplet of target points ``g = [p1, p2, p3]``."""
    diffs = [_sub(g[1], g[0]), _sub(g[2], g[0]), _sub(g[2], g[1])]
    count = 0  # entries of the 3x3 cosine matrix (diagonal included) with |cos| > delta_cos
    for a in diffs:
        for c in diffs:
            cos = _dot(a, c) / (math.sqrt(_dot(a, a)) * math.sqrt(_dot(c, c)) + 1e-8)
            count += int(cos > delta_cos) + int(cos < -delta_cos)
    colinear = count > 3
    pad = all(p[2] > delta_z for p in g)
    near = all(any(abs(d[axis]) < delta_diff for d in diffs) for axis in range(3))
    return pad and not (near or colinear)


def _unit_or_zero(n: List[float]) -> List[float]:
    length = math.sqrt(_dot(n, n))
    return [x / length for x in n] if length > 0 else [0.0, 0.0, 0.0]


def vnl(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    K: Any = None,
    *,
    samples: Tensor,
    delta_cos: float = 0.867,
    delta_diff: float = 0.005,
    delta_z: float = 1e-4,
    trim: float = 0.0,
    reduction: str = "mean",
    scope: str = "image",
) -> Tensor:
    """Loop over the given triplets ``samples`` ``(B, S, 3)`` (flat pixel indices): the paper's mean
    of ``|n_pred - n_gt|_1`` over the triplets the authors' criteria keep; ``trim`` drops the smallest
    errors as the authors' ``loss[int(0.25 n):]`` after an ascending sort."""
    P, T = _images(pred), _images(target)
    M = _mask_images(mask, pred)
    B, H, W = P.shape
    errors: List[List[float]] = []
    for b in range(B):
        k = _k_values(K, b)
        errs = []
        for s in range(samples.shape[1]):
            idx = [int(samples[b, s, c]) for c in range(3)]
            rc = [(q // W, q % W) for q in idx]
            if not all(bool(M[b, r, c]) for r, c in rc):
                continue
            g = [_point(float(T[b, r, c]), c, r, k) for r, c in rc]
            p = [_point(float(P[b, r, c]), c, r, k) for r, c in rc]
            if not _vnl_keep(g, delta_cos, delta_diff, delta_z):
                continue
            n_g = _unit_or_zero(_cross(_sub(g[1], g[0]), _sub(g[2], g[0])))
            n_p = _unit_or_zero(_cross(_sub(p[1], p[0]), _sub(p[2], p[0])))
            errs.append(sum(abs(a - c) for a, c in zip(n_g, n_p)))
        errors.append(errs)

    def trimmed_mean(e: List[float]) -> float:
        if not e:
            return 0.0
        e = sorted(e)[int(len(e) * trim) if trim > 0 else 0 :]
        return math.fsum(e) / len(e)

    if scope == "batch":
        return torch.tensor(trimmed_mean([e for errs in errors for e in errs]), dtype=torch.float64)
    values = [trimmed_mean(e) for e in errors]
    return _geo_reduce(values, [len(e) for e in errors], [int(M[b].sum()) for b in range(B)], reduction)
