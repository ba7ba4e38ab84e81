"""Downsampling for image pyramids: dense maps and sparse (LiDAR-like) depth."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from depthloss.functional._checks import check_choice, check_depth_map, check_int, check_mask
from depthloss.functional._common import autocast_off, compute_dtype, float_mask, safe_div

__all__ = ["SparseDepth", "area_pool", "downsample", "downsample_sparse", "pyramid_size"]

DenseMode = Literal["area", "bilinear"]
SparseMode = Literal["mean", "min", "nearest"]
DENSE_MODES = ("area", "bilinear")
SPARSE_MODES = ("mean", "min", "nearest")


class SparseDepth(NamedTuple):
    """A sparse depth map and its validity mask (depth is 0 where the mask is false)."""

    depth: Tensor
    mask: Tensor


def pyramid_size(size: int, factor: int) -> int:
    """Output length for ``factor``-fold downsampling: ``ceil(size / factor)``, never 0 for ``size >= 1``."""
    return -(-size // factor)


def _pool_args(factor: int) -> dict:
    return {"kernel_size": factor, "stride": factor, "ceil_mode": True}


class _HalveMean(torch.autograd.Function):
    """2x2 block means of a map with even ``H`` and ``W`` (the last two dims).

    Rows then columns by strided adds: 0.11 ms for 4x256x512 floats on the CPU against
    0.86 ms for ``avg_pool2d`` (a generic pooling kernel), and the backward (nearest
    upsampling of the quarter-scaled gradient) 0.2 ms against 0.73 ms.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        rows = x[..., 0::2, :] + x[..., 1::2, :]
        return torch.add(rows[..., 0::2], rows[..., 1::2]).mul_(0.25)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        g = grad * 0.25
        return g.repeat_interleave(2, dim=-1).repeat_interleave(2, dim=-2)


def area_pool(x: Tensor, factor: int) -> Tensor:
    """``factor x factor`` block means (partial blocks at the border average the pixels they hold)."""
    if factor == 2 and x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0 and x.shape[-1] > 0 and x.shape[-2] > 0:
        return _HalveMean.apply(x)
    return F.avg_pool2d(x, count_include_pad=False, **_pool_args(factor))


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
    if mode == "area":
        return area_pool(x, factor)
    size = (pyramid_size(x.shape[-2], factor), pyramid_size(x.shape[-1], factor))
    x4 = x if x.dim() == 4 else x.unsqueeze(1)
    out = F.interpolate(x4, size=size, mode="bilinear", align_corners=False)
    return out if x.dim() == 4 else out.squeeze(1)


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
        d_s = d[..., ::factor, ::factor]
        m_s = mask[..., ::factor, ::factor]
        return SparseDepth(torch.where(m_s, d_s, 0.0), m_s)
    w = float_mask(mask, d.dtype)
    if mode == "mean":
        total = F.avg_pool2d(torch.where(mask, d, 0.0), count_include_pad=False, **_pool_args(factor))
        frac = F.avg_pool2d(w, count_include_pad=False, **_pool_args(factor))
        return SparseDepth(safe_div(total, frac), frac > 0)
    nearest = -F.max_pool2d(torch.where(mask, -d, float("-inf")), **_pool_args(factor))
    m_s = F.max_pool2d(w, **_pool_args(factor)) > 0
    return SparseDepth(torch.where(m_s, nearest, 0.0), m_s)
