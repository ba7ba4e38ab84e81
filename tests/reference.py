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
    "depth_to_inv",
    "downsample",
    "downsample_sparse",
    "enhanced_ssi",
    "gradient_matching",
    "inv_to_depth",
    "l1",
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
