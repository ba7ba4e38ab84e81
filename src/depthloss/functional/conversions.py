"""Depth <-> inverse depth, with 0 kept as the "no measurement" value."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from depthloss.functional._checks import check_depth_map, check_float
from depthloss.functional._fused import masked_reciprocal
from depthloss.functional._common import autocast_off, compute_dtype

__all__ = ["depth_to_inv", "inv_to_depth"]

DEFAULT_EPS = 1e-6


def check_depth_range(min_depth: Optional[float], max_depth: Optional[float]) -> None:
    """Validate an optional ``[min_depth, max_depth]`` range (``min_depth`` may be 0: no lower clamp)."""
    if min_depth is not None:
        check_float("min_depth", min_depth, low=0.0)
    if max_depth is not None:
        check_float("max_depth", max_depth, low=0.0, low_inclusive=False)
    if min_depth is not None and max_depth is not None and min_depth >= max_depth:
        raise ValueError(f"min_depth must be < max_depth, got min_depth={min_depth}, max_depth={max_depth}")


def _check_range(eps: float, min_depth: Optional[float], max_depth: Optional[float]) -> None:
    check_float("eps", eps, low=0.0, low_inclusive=False)
    check_depth_range(min_depth, max_depth)


def reciprocal_valid(
    x: Tensor, eps: float = DEFAULT_EPS, low: Optional[float] = None, high: Optional[float] = None
) -> Tensor:
    """``1 / clamp(x, max(eps, low), high)`` where ``x > 0``, else 0 (NaN and non-positive values are invalid).

    One pass: invalid entries are replaced before the clamp and the division, so values
    and gradients are finite everywhere and exactly 0 at invalid entries.
    """
    return masked_reciprocal(x, eps if low is None else max(eps, low), high)


def clamp_valid(depth: Tensor, min_depth: Optional[float], max_depth: Optional[float]) -> Tensor:
    """Clamp positive values to ``[min_depth, max_depth]``; 0 (invalid) stays 0."""
    if min_depth is None and max_depth is None:
        return depth
    return torch.where(depth > 0, depth.clamp(min=min_depth, max=max_depth), depth)


def inverse_bounds(min_depth: Optional[float], max_depth: Optional[float]) -> tuple:
    """The inverse-depth range ``[1 / max_depth, 1 / min_depth]`` (``None`` for an open end)."""
    low = None if max_depth is None else 1.0 / max_depth
    high = None if not min_depth else 1.0 / min_depth
    return low, high


def to_depth(inv_depth: Tensor, min_depth: Optional[float] = None, max_depth: Optional[float] = None) -> Tensor:
    """Unchecked :func:`inv_to_depth` with the default ``eps``, for use inside other kernels.

    Clamping the inverse depth to ``[1 / max_depth, 1 / min_depth]`` before inverting is the
    same as clamping the depth after it, in one pass.
    """
    return reciprocal_valid(inv_depth, DEFAULT_EPS, *inverse_bounds(min_depth, max_depth))


def to_inverse(depth: Tensor, min_depth: Optional[float] = None, max_depth: Optional[float] = None) -> Tensor:
    """Unchecked :func:`depth_to_inv` with the default ``eps``, for use inside other kernels."""
    return reciprocal_valid(depth, DEFAULT_EPS, min_depth, max_depth)


@autocast_off
def depth_to_inv(
    depth: Tensor,
    eps: float = DEFAULT_EPS,
    min_depth: Optional[float] = None,
    max_depth: Optional[float] = None,
) -> Tensor:
    """Inverse depth ``1 / clamp(depth, eps)``; pixels with depth ``<= 0`` or NaN map to 0.

    With ``min_depth`` / ``max_depth`` valid depths are clamped to that range first.
    Gradients are finite everywhere and exactly 0 at invalid pixels.

    Args:
        depth: ``(B, 1, H, W)`` or ``(B, H, W)`` depth.
        eps: smallest depth inverted (default ``1e-6``, packnet-sfm's).
        min_depth: optional lower clamp for valid depths (``>= 0``).
        max_depth: optional upper clamp for valid depths.

    Returns:
        Inverse depth of the same shape in the compute dtype.

    Example:
        >>> depth_to_inv(torch.tensor([[[0.5, 0.0, 4.0]]]))
        tensor([[[2.0000, 0.0000, 0.2500]]])
    """
    check_depth_map("depth", depth)
    _check_range(eps, min_depth, max_depth)
    d = depth.to(compute_dtype(depth))
    return reciprocal_valid(d, eps, min_depth, max_depth)


@autocast_off
def inv_to_depth(
    inv_depth: Tensor,
    eps: float = DEFAULT_EPS,
    min_depth: Optional[float] = None,
    max_depth: Optional[float] = None,
) -> Tensor:
    """Depth ``1 / clamp(inv_depth, eps)``; pixels with inverse depth ``<= 0`` or NaN map to 0.

    With ``min_depth`` / ``max_depth`` the resulting valid depths are clamped to that range.

    Args:
        inv_depth: ``(B, 1, H, W)`` or ``(B, H, W)`` inverse depth.
        eps: smallest inverse depth inverted (default ``1e-6``).
        min_depth: optional lower clamp of the valid output.
        max_depth: optional upper clamp of the valid output.

    Returns:
        Depth of the same shape in the compute dtype.

    Example:
        >>> inv_to_depth(torch.tensor([[[2.0, 0.0, 0.25]]]), max_depth=3.0)
        tensor([[[0.5000, 0.0000, 3.0000]]])
    """
    check_depth_map("inv_depth", inv_depth)
    _check_range(eps, min_depth, max_depth)
    return reciprocal_valid(inv_depth.to(compute_dtype(inv_depth)), eps, *inverse_bounds(min_depth, max_depth))
