"""Depth-specific building blocks: depth <-> inverse depth, near-field pixel weights.

Depth and inverse depth keep 0 as the "no measurement" value in both directions.
"""

from __future__ import annotations

from typing import Literal, Optional, Tuple, Union

import torch
from torch import Tensor

from depthloss._checks import check_choice, check_depth_map, check_float
from depthloss.functional._plumbing import autocast_off, compute_dtype

__all__ = ["depth_to_inv", "inv_to_depth", "near_field_weights"]

DEFAULT_EPS = 1e-6

WeightMode = Literal["smooth", "linear", "step"]
WEIGHT_MODES = ("smooth", "linear", "step")


# -- depth <-> inverse depth ------------------------------------------------------------------
def check_depth_range(min_depth: Optional[float], max_depth: Optional[float]) -> None:
    """Validate an optional ``[min_depth, max_depth]`` range (``min_depth`` may be 0: no lower clamp)."""
    if min_depth is not None:
        check_float("min_depth", min_depth, low=0.0)
    if max_depth is not None:
        check_float("max_depth", max_depth, low=0.0, low_inclusive=False)
    if min_depth is not None and max_depth is not None and min_depth >= max_depth:
        raise ValueError(f"min_depth must be < max_depth, got min_depth={min_depth}, max_depth={max_depth}")


def reciprocal_valid(x: Tensor, low: float = DEFAULT_EPS, high: Optional[float] = None) -> Tensor:
    """``1 / clamp(x, low, high)`` where ``x > 0``, else 0 (NaN and non-positive values are invalid).

    Invalid entries are replaced before the clamp and the division, so values and gradients
    are finite everywhere and exactly 0 at invalid entries.
    """
    valid = x > 0
    safe = torch.where(valid, x, 1.0).clamp(min=low, max=high)
    return torch.where(valid, 1.0 / safe, 0.0)


def inverse_bounds(min_depth: Optional[float], max_depth: Optional[float]) -> Tuple[Optional[float], Optional[float]]:
    """The inverse-depth range ``[1 / max_depth, 1 / min_depth]`` (``None`` for an open end)."""
    low = None if max_depth is None else 1.0 / max_depth
    high = None if not min_depth else 1.0 / min_depth
    return low, high


def clamp_valid(x: Tensor, low: Optional[float], high: Optional[float]) -> Tensor:
    """Clamp positive values to ``[low, high]``; 0 and other invalid values stay as they are."""
    if low is None and high is None:
        return x
    return torch.where(x > 0, x.clamp(min=low, max=high), x)


def to_depth(inv_depth: Tensor, min_depth: Optional[float] = None, max_depth: Optional[float] = None) -> Tensor:
    """Unchecked :func:`inv_to_depth` with the default ``eps``: clamping the inverse depth to
    ``[1 / max_depth, 1 / min_depth]`` before inverting is the depth clamp, in one pass."""
    low, high = inverse_bounds(min_depth, max_depth)
    return reciprocal_valid(inv_depth, DEFAULT_EPS if low is None else max(DEFAULT_EPS, low), high)


def to_inverse(depth: Tensor, min_depth: Optional[float] = None, max_depth: Optional[float] = None) -> Tensor:
    """Unchecked :func:`depth_to_inv` with the default ``eps``."""
    return reciprocal_valid(depth, DEFAULT_EPS if min_depth is None else max(DEFAULT_EPS, min_depth), max_depth)


def log_depth_ratio(
    pred_inv: Tensor, target_inv: Tensor, min_depth: Optional[float], max_depth: Optional[float]
) -> Tensor:
    """``g = log z_pred - log z_target`` from inverse depths, with ``z = 1 / clamp(rho)``.

    The inverse depths are clamped to ``[1 / max_depth, 1 / min_depth]`` (and at least
    ``1e-6``): the depth clamp, and a finite ``g`` for a non-positive prediction.
    """
    low, high = inverse_bounds(min_depth, max_depth)
    floor = DEFAULT_EPS if low is None else max(DEFAULT_EPS, low)
    return torch.log(target_inv.clamp(floor, high)) - torch.log(pred_inv.clamp(floor, high))


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
    check_float("eps", eps, low=0.0, low_inclusive=False)
    check_depth_range(min_depth, max_depth)
    low = eps if min_depth is None else max(eps, min_depth)
    return reciprocal_valid(depth.to(compute_dtype(depth)), low, max_depth)


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
    check_float("eps", eps, low=0.0, low_inclusive=False)
    check_depth_range(min_depth, max_depth)
    low, high = inverse_bounds(min_depth, max_depth)
    return reciprocal_valid(inv_depth.to(compute_dtype(inv_depth)), eps if low is None else max(eps, low), high)


# -- near-field weights -----------------------------------------------------------------------
@autocast_off
def near_field_weights(
    depth: Tensor,
    threshold: Union[float, Tensor] = 1.0,
    near_weight: float = 5.0,
    transition: float = 0.3,
    mode: WeightMode = "smooth",
) -> Tensor:
    r"""Per-pixel weights: ``near_weight`` closer than ``threshold`` metres, 1 beyond.

    - ``"smooth"``: :math:`w = 1 + (w_n - 1)\,\tfrac{1}{2}\left(1 - \tanh\tfrac{d - t}{\tau}\right)`.
      This fixes the sign of the seed's formula, which used ``1 + tanh`` and so weighted
      *far* pixels by ``w_n``.
    - ``"linear"``: ``w_n`` up to ``t - τ``, 1 from ``t + τ``, linear in between.
    - ``"step"``: ``w_n`` where ``d < t``, else 1 (discontinuous at ``t``).

    Every mode is non-increasing in depth (``near_weight >= 1``) and equals
    ``(w_n + 1) / 2`` at the threshold for ``smooth`` and ``linear``. Non-finite depths
    (NaN, ``inf``) are treated as far and get weight 1, so the result is always finite.

    Args:
        depth: ``(B, 1, H, W)`` or ``(B, H, W)`` metric depth (not inverse depth).
        threshold: near/far boundary ``t`` in metres, ``> 0``, or a 0-dim tensor (scheduled).
        near_weight: weight ``w_n`` of near pixels, ``>= 1`` (default 5).
        transition: half-width ``τ`` of the transition in metres, ``> 0`` (default 0.3;
            unused by ``"step"``).
        mode: ``"smooth"`` (default), ``"linear"`` or ``"step"``.

    Returns:
        Weights of ``depth``'s shape in the compute dtype.

    Example:
        >>> d = torch.tensor([[[0.2, 1.0, 5.0]]])
        >>> near_field_weights(d)
        tensor([[[4.9808, 3.0000, 1.0000]]])
        >>> near_field_weights(d, mode="step")
        tensor([[[5., 1., 1.]]])
    """
    check_depth_map("depth", depth)
    check_float("threshold", threshold, low=0.0, low_inclusive=False, allow_tensor=True)
    check_float("near_weight", near_weight, low=1.0)
    check_float("transition", transition, low=0.0, low_inclusive=False)
    check_choice("mode", mode, WEIGHT_MODES)
    return near_field_weight_values(depth.to(compute_dtype(depth)), threshold, near_weight, transition, mode)


def near_field_weight_values(
    depth: Tensor, threshold: Union[float, Tensor], near_weight: float, transition: float, mode: str
) -> Tensor:
    """Unchecked :func:`near_field_weights` for any tensor shape (arguments already validated)."""
    d = torch.nan_to_num(depth, nan=torch.inf, neginf=torch.inf)  # every non-finite depth is far
    if mode == "step":
        near = (d < threshold).to(d.dtype)
    elif mode == "smooth":
        near = 0.5 * (1.0 - torch.tanh((d - threshold) / transition))
    else:
        near = ((threshold + transition - d) / (2.0 * transition)).clamp(0.0, 1.0)
    # (w_n - 1) formed in the map's dtype is exact, so w is exactly 1 where near = 0 and
    # exactly w_n where near = 1, and never leaves [1, w_n]
    excess = torch.full((), near_weight, dtype=d.dtype, device=d.device) - 1.0
    return 1.0 + excess * near
