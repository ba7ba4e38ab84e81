r"""Image operators: Sobel and forward-difference derivatives, gradient matching, pyramids.

Derivatives are computed from shifted slices (no convolution): a derivative counts only
where its whole stencil lies inside the image and on valid pixels. Pyramid levels of
*sparse* depth never mix in the zeros that mark missing returns.
"""

from __future__ import annotations

from typing import List, Literal, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from depthloss._checks import SCOPES, check_choice, check_depth_map, check_float, check_int, check_mask, check_reduction
from depthloss.functional._plumbing import Reduction, Scope, autocast_off, compute_dtype, reduce_images, safe_div

__all__ = [
    "Gradients",
    "SparseDepth",
    "Windows",
    "derivatives",
    "downsample",
    "downsample_sparse",
    "edge_magnitude",
    "gather_windows",
    "gradient_matching",
    "gradient_sums",
    "gradient_term",
    "image_edge_magnitude",
    "masked_mean_pool",
    "pyramid_size",
    "reduce_data_and_gradient",
    "sobel",
    "sobel_mask",
]

Operator = Literal["sobel", "diff"]
OPERATORS = ("sobel", "diff")
DenseMode = Literal["area", "bilinear"]
SparseMode = Literal["mean", "min", "nearest"]
DENSE_MODES = ("area", "bilinear")
SPARSE_MODES = ("mean", "min", "nearest")


class Gradients(NamedTuple):
    """Horizontal (``gx``, along W) and vertical (``gy``, along H) derivatives."""

    gx: Tensor
    gy: Tensor


# -- derivatives ----------------------------------------------------------------------------
def derivatives(x: Tensor, mask: Tensor, operator: str) -> Tuple[Gradients, Gradients]:
    """``(gx, gy)`` of ``x`` on the pixels where each is defined, and their validity masks.

    ``"sobel"``: taps ``[-1 0 1; -2 0 2; -1 0 1] / 8`` (and the transpose) on the
    ``(H - 2, W - 2)`` interior, valid where the whole 3x3 window is. ``"diff"``: MiDaS's
    forward differences ``x[:, j+1] - x[:, j]`` (``(H, W - 1)``) and ``x[i+1] - x[i]``
    (``(H - 1, W)``), valid where both pixels are. Empty (not an error) when the image is
    smaller than the stencil. ``x`` must be finite (sanitize invalid pixels first).
    """
    if operator == "diff":
        gx, gy = x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]
        mx, my = mask[..., :, 1:] & mask[..., :, :-1], mask[..., 1:, :] & mask[..., :-1, :]
        return Gradients(gx, gy), Gradients(mx, my)
    gradients, window = smoothed_differences(x, mask, 1.0, 2.0, 8.0)  # Sobel
    return gradients, Gradients(window, window)


def smoothed_differences(x: Tensor, mask: Tensor, outer: float, centre: float, norm: float) -> Tuple[Gradients, Tensor]:
    """A separable 3x3 derivative on the ``(H - 2, W - 2)`` interior, and where its window is valid.

    Smooth along one axis with ``(outer, centre, outer)``, difference along the other with
    ``(-1, 0, 1)``, divide by ``norm``: Sobel is ``(1, 2, 1) / 8``, Scharr ``(3, 10, 3) / 32``.
    ``x`` must be finite (sanitize invalid pixels first).
    """

    def smooth(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
        return a + centre * b + c if outer == 1.0 else outer * a + centre * b + outer * c

    smooth_v = smooth(x[..., :-2, :], x[..., 1:-1, :], x[..., 2:, :])
    smooth_h = smooth(x[..., :, :-2], x[..., :, 1:-1], x[..., :, 2:])
    gx = (smooth_v[..., :, 2:] - smooth_v[..., :, :-2]) / norm
    gy = (smooth_h[..., 2:, :] - smooth_h[..., :-2, :]) / norm
    return Gradients(gx, gy), full_windows(mask)


def full_windows(mask: Tensor) -> Tensor:
    """On the ``(H - 2, W - 2)`` interior: whether the whole 3x3 window of ``mask`` is true."""
    rows3 = mask[..., :-2, :] & mask[..., 1:-1, :] & mask[..., 2:, :]
    return rows3[..., :, :-2] & rows3[..., :, 1:-1] & rows3[..., :, 2:]


@autocast_off
def sobel(x: Tensor) -> Gradients:
    r"""Normalized Sobel derivatives of a depth-like map.

    Taps :math:`\frac{1}{8}\begin{bmatrix}-1&0&1\\-2&0&2\\-1&0&1\end{bmatrix}` for ``gx`` and
    their transpose for ``gy`` (correlation, so ``gx > 0`` where values grow to the right;
    kornia's normalized ``spatial_gradient``), from shifted slices. The one-pixel border has
    no full window and is 0; see :func:`sobel_mask`.

    Args:
        x: ``(B, 1, H, W)`` or ``(B, H, W)``.

    Returns:
        ``Gradients(gx, gy)``, each of ``x``'s shape, in the compute dtype.

    Example:
        >>> x = torch.arange(16.0).reshape(1, 4, 4)  # +1 per column, +4 per row
        >>> gx, gy = sobel(x)
        >>> gx[0, 1:3, 1:3], gy[0, 1:3, 1:3]
        (tensor([[1., 1.],
                [1., 1.]]), tensor([[4., 4.],
                [4., 4.]]))
    """
    check_depth_map("x", x)
    x = x.to(compute_dtype(x))
    if x.shape[-2] < 3 or x.shape[-1] < 3:
        zeros = 0.0 * x  # no full window anywhere: zeros that stay in the graph
        return Gradients(zeros, zeros)
    (gx, gy), _ = derivatives(x, torch.ones_like(x, dtype=torch.bool), "sobel")
    return Gradients(F.pad(gx, (1, 1, 1, 1)), F.pad(gy, (1, 1, 1, 1)))


def sobel_mask(mask: Tensor) -> Tensor:
    """Where a Sobel derivative is valid: the full 3x3 window is inside the image and valid.

    Args:
        mask: bool ``(B, 1, H, W)`` or ``(B, H, W)``.

    Returns:
        bool tensor of the same shape.

    Example:
        >>> sobel_mask(torch.ones(1, 3, 4, dtype=torch.bool)).int()
        tensor([[[0, 0, 0, 0],
                 [0, 1, 1, 0],
                 [0, 0, 0, 0]]], dtype=torch.int32)
    """
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor, got {getattr(mask, 'dtype', type(mask).__name__)}")
    if mask.dim() not in (3, 4) or (mask.dim() == 4 and mask.shape[1] != 1):
        raise ValueError(f"mask must have shape (B, 1, H, W) or (B, H, W), got {tuple(mask.shape)}")
    if mask.shape[-2] < 3 or mask.shape[-1] < 3:
        return torch.zeros_like(mask)
    return F.pad(full_windows(mask), (1, 1, 1, 1), value=False)


# -- gradient matching ------------------------------------------------------------------------
def gradient_sums(r: Tensor, mask: Tensor, scales: int, operator: str) -> Tuple[Tensor, Tensor]:
    """Per image and level: ``Σ |∂x r| + |∂y r|`` over valid stencils, and the valid pixels.

    ``r`` and ``mask`` are ``(B, H, W)``; level ``s`` takes every ``2**s``-th pixel. Returns
    two ``(B, scales)`` tensors. Levels past the image size hold one pixel and give 0.
    """
    sums: List[Tensor] = []
    counts: List[Tensor] = []
    size = max(r.shape[-2], r.shape[-1], 1)
    for s in range(scales):
        step = 2**s if 2**s < size else size  # a level of one pixel: no derivative, and no overflow
        r_s, m_s = r[..., ::step, ::step], mask[..., ::step, ::step]
        (gx, gy), (mx, my) = derivatives(r_s, m_s, operator)
        sums.append(torch.where(mx, gx.abs(), 0.0).sum(dim=(-2, -1)) + torch.where(my, gy.abs(), 0.0).sum(dim=(-2, -1)))
        counts.append(m_s.sum(dim=(-2, -1)).to(r.dtype))
    return torch.stack(sums, dim=-1), torch.stack(counts, dim=-1)


def gradient_matching_terms(r: Tensor, mask: Tensor, scales: int, operator: str, scope: str) -> Tensor:
    """Multi-scale gradient matching of ``(B, H, W)`` maps: ``Σ_s sums_s / M_s`` per image, or pooled ``(1,)``.

    ``scope != "image"`` divides the batch's sum by the batch's pixel count per level
    (MiDaS's batch-based reduction of the gradient term).
    """
    sums, counts = gradient_sums(r, mask, scales, operator)
    if scope != "image":
        sums, counts = sums.sum(dim=0, keepdim=True), counts.sum(dim=0, keepdim=True)
    return safe_div(sums, counts).sum(dim=-1)


class DataAndGradient(NamedTuple):
    """The two terms of a MiDaS-style loss ``data + alpha * gradient`` as per-image sums and counts.

    ``data = data_sum / data_den`` per image; ``gradient = Σ_s grad_sum[:, s] / grad_den[:, s]``
    (``(G, scales)``); ``n_valid``: valid pixels per image. Kept as sums so that
    ``reduction="pixel-mean"`` can pool each term, and each gradient level, over the batch.
    """

    data_sum: Tensor
    data_den: Tensor
    grad_sum: Tensor
    grad_den: Tensor
    n_valid: Tensor

    @property
    def data(self) -> Tensor:
        """The per-image data term."""
        return safe_div(self.data_sum, self.data_den)

    @property
    def grad(self) -> Tensor:
        """The per-image gradient term (summed over levels)."""
        return safe_div(self.grad_sum, self.grad_den).sum(dim=-1)


def gradient_term(r: Tensor, mask: Tensor, scales: int, operator: str, scope: str) -> Tuple[Tensor, Tensor]:
    """``(grad_sum, grad_den)`` of :class:`DataAndGradient` for ``(B, H, W)`` maps (pooled under ``scope="batch"``)."""
    sums, counts = gradient_sums(r, mask, scales, operator)
    if scope != "image":
        sums, counts = sums.sum(dim=0, keepdim=True), counts.sum(dim=0, keepdim=True)
    return sums, counts


def reduce_data_and_gradient(t: DataAndGradient, alpha: float, reduction: str) -> Tensor:
    """``data + alpha * gradient`` reduced: ``"pixel-mean"`` pools each term and level over the batch."""
    if reduction == "pixel-mean":  # Σ_b num / Σ_b den per term (MiDaS's "batch-based" reduction)
        data = safe_div(t.data_sum.sum(), t.data_den.sum())
        grad = safe_div(t.grad_sum.sum(dim=0), t.grad_den.sum(dim=0)).sum()
        return data + alpha * grad
    return reduce_images(t.data + alpha * t.grad, t.n_valid, reduction)


def check_gradient_args(alpha: float, scales: int, operator: str) -> None:
    """Validate the gradient-matching hyper-parameters of the MiDaS losses."""
    check_float("alpha", alpha, low=0.0)
    check_int("scales", scales, low=1)
    check_choice("operator", operator, OPERATORS)


@autocast_off
def gradient_matching(
    residual: Tensor,
    mask: Optional[Tensor] = None,
    scales: int = 4,
    operator: Operator = "sobel",
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Multi-scale gradient-matching loss on a residual map ``r`` (e.g. ``pred - target``).

    .. math:: \mathcal L = \sum_{s=0}^{S-1} \frac{1}{M_s} \sum_{(i,j)\ \text{valid}}
              |\partial_x r^s_{ij}| + |\partial_y r^s_{ij}|

    where level ``s`` takes every ``2**s``-th pixel of ``r`` and the mask (MiDaS's
    ``GradientLoss``), a derivative counts only where its whole stencil is valid, and
    :math:`M_s` is the number of valid pixels at that level (MiDaS's normalizer).

    Args:
        residual: ``(B, 1, H, W)`` or ``(B, H, W)``.
        mask: bool, same shape; ``None`` means every pixel is valid.
        scales: number of levels, ``>= 1`` (default 4, MiDaS). Levels smaller than the
            stencil contribute 0.
        operator: ``"sobel"`` (3x3 Sobel, :func:`sobel`) or ``"diff"`` (MiDaS forward
            differences, valid where both pixels are valid).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"`` or ``"none"`` (``(B,)``).
        scope: ``"image"`` normalizes each image by its own count; ``"batch"`` divides the
            batch's sum by the batch's count per level (MiDaS's batch-based reduction).

    Returns:
        The loss (scalar, or ``(B,)`` for ``reduction="none"``).

    Example:
        >>> r = torch.zeros(1, 4, 4)
        >>> r[:, :, 2:] = 1.0  # a vertical step edge in the residual
        >>> gradient_matching(r, scales=1, operator="diff")
        tensor(0.2500)
    """
    check_depth_map("residual", residual)
    check_mask(mask, residual, "residual")
    check_int("scales", scales, low=1)
    check_choice("operator", operator, OPERATORS)
    check_reduction(reduction, scope, SCOPES, "gradient_matching")
    r = residual.to(compute_dtype(residual)).reshape(residual.shape[0], residual.shape[-2], residual.shape[-1])
    m = torch.ones_like(r, dtype=torch.bool) if mask is None else mask.reshape(r.shape)
    r = torch.where(m, r, 0.0)
    values = gradient_matching_terms(r, m, scales, operator, scope)
    count = m.flatten(1).sum(dim=1) if scope == "image" else m.sum().unsqueeze(0)
    return reduce_images(values, count, reduction)


# -- pyramids -------------------------------------------------------------------------------
class SparseDepth(NamedTuple):
    """A sparse depth map and its validity mask (depth is 0 where the mask is false)."""

    depth: Tensor
    mask: Tensor


def pyramid_size(size: int, factor: int) -> int:
    """Output length for ``factor``-fold downsampling: ``ceil(size / factor)``, never 0 for ``size >= 1``."""
    return -(-size // factor)


def _block_sum(x: Tensor, factor: int) -> Tensor:
    """Sums over ``factor x factor`` blocks of the last two dims of ``(B, H, W)`` or ``(B, 1, H, W)``."""
    return _like(F.avg_pool2d(_as4d(x), factor, factor, ceil_mode=True, divisor_override=1), x)


def masked_mean_pool(x: Tensor, valid: Tensor, factor: int) -> SparseDepth:
    """Mean of the valid pixels of each ``factor x factor`` block, and whether the block had one.

    Invalid pixels never contribute, to the value or to the gradient (``x`` there may be NaN).
    """
    total = _block_sum(torch.where(valid, x, 0.0), factor)
    count = _block_sum(valid.to(total.dtype), factor)
    return SparseDepth(safe_div(total, count), count > 0)


def _as4d(x: Tensor) -> Tensor:
    return x if x.dim() == 4 else x.unsqueeze(1)


def _like(out: Tensor, x: Tensor) -> Tensor:
    return out if x.dim() == 4 else out.squeeze(1)


@autocast_off
def downsample(x: Tensor, factor: int, mode: DenseMode = "area") -> Tensor:
    """Downsample a dense map by an integer factor to ``ceil(H / f) x ceil(W / f)``.

    ``"area"`` averages each ``f x f`` block (partial blocks at the border average the
    pixels they hold); ``"bilinear"`` interpolates (``align_corners=False``).

    Args:
        x: ``(B, 1, H, W)`` or ``(B, H, W)``.
        factor: integer ``>= 1`` (1 returns ``x`` in the compute dtype).
        mode: ``"area"`` (default) or ``"bilinear"``.

    Returns:
        The downsampled map, same number of dims as ``x``.

    Example:
        >>> downsample(torch.arange(16.0).reshape(1, 4, 4), 2)
        tensor([[[ 2.5000,  4.5000],
                 [10.5000, 12.5000]]])
    """
    check_depth_map("x", x)
    check_int("factor", factor, low=1)
    check_choice("mode", mode, DENSE_MODES)
    x = x.to(compute_dtype(x))
    if factor == 1:
        return x
    x4 = _as4d(x)
    if mode == "area":
        out = F.avg_pool2d(x4, factor, factor, ceil_mode=True, count_include_pad=False)
    else:
        size = (pyramid_size(x.shape[-2], factor), pyramid_size(x.shape[-1], factor))
        out = F.interpolate(x4, size=size, mode="bilinear", align_corners=False)
    return _like(out, x)


@autocast_off
def downsample_sparse(depth: Tensor, mask: Tensor, factor: int, mode: SparseMode = "mean") -> SparseDepth:
    """Downsample sparse depth without mixing in invalid pixels.

    Each output pixel covers an ``f x f`` block and is valid when the block holds a valid
    input pixel:

    - ``"mean"``: mean of the block's valid depths (a plain average pool would mix in the
      zeros that mark missing LiDAR returns);
    - ``"min"``: nearest valid return in the block (keeps thin foreground objects);
    - ``"nearest"``: the block's top-left pixel, valid only if that pixel is (the same as
      ``F.interpolate(mode="nearest")`` when the size is a multiple of ``factor``;
      reproduces the seed).

    Args:
        depth: ``(B, 1, H, W)`` or ``(B, H, W)`` depth (or inverse depth).
        mask: bool, same shape.
        factor: integer ``>= 1``.
        mode: ``"mean"`` (default), ``"min"`` or ``"nearest"``.

    Returns:
        ``SparseDepth(depth, mask)`` at ``ceil(H / f) x ceil(W / f)``; depth is 0 where invalid.

    Example:
        >>> d = torch.tensor([[[2.0, 0.0], [4.0, 0.0]]])
        >>> downsample_sparse(d, d > 0, 2)
        SparseDepth(depth=tensor([[[3.]]]), mask=tensor([[[True]]]))
    """
    check_depth_map("depth", depth)
    if mask is None:
        raise TypeError("mask must be a bool tensor (sparse depth needs its validity mask), got None")
    check_mask(mask, depth, "depth")
    check_int("factor", factor, low=1)
    check_choice("mode", mode, SPARSE_MODES)
    d = depth.to(compute_dtype(depth))
    if mode == "nearest" or factor == 1:
        d_s, m_s = d[..., ::factor, ::factor], mask[..., ::factor, ::factor]
        return SparseDepth(torch.where(m_s, d_s, 0.0), m_s)
    if mode == "mean":
        return masked_mean_pool(d, mask, factor)
    # the nearest valid return: a max-pool of the negated depths, invalid pixels at -inf
    nearest = _like(-F.max_pool2d(torch.where(_as4d(mask), -_as4d(d), -torch.inf), factor, factor, ceil_mode=True), d)
    valid = nearest < torch.inf
    return SparseDepth(torch.where(valid, nearest, 0.0), valid)


# -- edge maps and local windows (local / edge-guided SSI) ------------------------------------
def edge_magnitude(x: Tensor, valid: Tensor) -> Tensor:
    """Sobel gradient magnitude ``sqrt(gx² + gy²)`` of a depth-like map, 0 where the 3x3 window is invalid.

    ``x``: ``(B, H, W)`` finite where valid; ``valid``: bool of the same shape. Detached (edges
    only choose where windows go).
    """
    x = x.detach()
    if x.shape[-2] < 3 or x.shape[-1] < 3:
        return torch.zeros_like(x)
    (gx, gy), (window, _) = derivatives(torch.where(valid, x, 0.0), valid, "sobel")
    mag = torch.sqrt(gx * gx + gy * gy)
    return F.pad(torch.where(window, mag, 0.0), (1, 1, 1, 1))


def image_edge_magnitude(image: Tensor, valid: Tensor, border: int = 3) -> Tensor:
    """UniDepth V2's image edges: per-channel Sobel (zero padding), RMS over channels of ``gx``
    and of ``gy``, magnitude ``sqrt(gx² + gy²)``, 0 on a ``border``-pixel frame and where ``valid``
    is false or its 3x3 window holds an invalid pixel (image values there are never read).
    ``image``: ``(B, C, H, W)``; ``valid``: bool ``(B, H, W)``; returns ``(B, H, W)``, detached."""
    h, w = image.shape[-2:]
    if h < 3 or w < 3:
        return torch.zeros_like(valid, dtype=image.dtype)
    img = torch.where(valid.unsqueeze(1), image.detach(), 0.0)
    padded = F.pad(img, (1, 1, 1, 1))
    ones = torch.ones_like(padded, dtype=torch.bool)
    (gx, gy), _ = derivatives(padded, ones, "sobel")  # (B, C, H, W): the 'same' convolution
    gx = torch.sqrt((gx * gx).mean(dim=1))
    gy = torch.sqrt((gy * gy).mean(dim=1))
    mag = torch.sqrt(gx * gx + gy * gy)
    rows_ = torch.arange(h, device=img.device).unsqueeze(1)
    cols = torch.arange(w, device=img.device).unsqueeze(0)
    inner = (rows_ >= border) & (rows_ < h - border) & (cols >= border) & (cols < w - border)
    return torch.where(inner & sobel_mask(valid), mag, 0.0)


class Windows(NamedTuple):
    """Square windows gathered from ``(B, N)`` rows: values ``(B, K, P)`` and where they are inside the image."""

    values: Tuple[Tensor, ...]
    inside: Tensor


def gather_windows(maps: Tuple[Tensor, ...], centres: Tensor, height: int, width: int, size: int) -> Windows:
    """The ``size x size`` windows (``size`` odd) centred on flat positions ``centres`` ``(B, K)``.

    ``maps`` are ``(B, H * W)`` rows; positions outside the image are clamped for the gather
    and marked ``inside = False`` (UniDepth pads with zeros there, which its mask drops too).
    """
    half = size // 2
    offsets = torch.arange(-half, half + 1, device=centres.device)
    cy, cx = centres // width, centres % width  # (B, K)
    y = cy.unsqueeze(-1).unsqueeze(-1) + offsets.view(1, 1, -1, 1)  # (B, K, size, 1)
    x = cx.unsqueeze(-1).unsqueeze(-1) + offsets.view(1, 1, 1, -1)  # (B, K, 1, size)
    inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)  # (B, K, size, size)
    b, k = centres.shape
    flat = (y.clamp(0, height - 1) * width + x.clamp(0, width - 1)).reshape(b, k * size * size)
    values = tuple(m.gather(1, flat).reshape(b, k, size * size) for m in maps)
    return Windows(values, inside.reshape(b, k, size * size))
