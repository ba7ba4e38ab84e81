"""Near-field pixel weights: emphasize what is close to the camera."""

from __future__ import annotations

from typing import Literal, Union

import torch
from torch import Tensor

from depthloss.functional._checks import check_choice, check_depth_map, check_float
from depthloss.functional._common import autocast_off, compute_dtype

__all__ = ["near_field_weights"]

WeightMode = Literal["smooth", "linear", "step"]
WEIGHT_MODES = ("smooth", "linear", "step")

# The smooth weights use (1 - tanh(z)) / 2 = sigmoid(-2z): on the CPU ``tanh`` costs ~10x a
# ``sigmoid`` (1.2 ms vs 0.13 ms for 4x256x512 floats). The argument is clamped to +-L and
# sigmoid(-L) subtracted: far from the threshold the weights are exactly 1 and exactly
# near_weight, where tanh saturates (|z| >= 9 in float32, 19 in float64), and no denormal
# (a slow path on the CPU) is ever produced.
_SIGMOID_RANGE = {torch.float32: 18.0, torch.float64: 38.0}


def _smooth_near(depth: Tensor, threshold: Union[float, Tensor], transition: float, inplace: bool) -> Tensor:
    """``(1 - tanh((d - t) / τ)) / 2`` as a clamped, offset sigmoid, in ``[0, 1]`` and non-increasing in ``d``."""
    limit = _SIGMOID_RANGE.get(depth.dtype, 38.0)
    floor = torch.sigmoid(torch.tensor(-limit, dtype=depth.dtype, device=depth.device))
    if inplace:
        a = (depth - threshold).mul_(-2.0 / transition).clamp_(-limit, limit)
        return a.sigmoid_().sub_(floor).clamp_(0.0, 1.0)
    a = ((threshold - depth) * (2.0 / transition)).clamp(-limit, limit)
    return (torch.sigmoid(a) - floor).clamp(0.0, 1.0)


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
    d = torch.nan_to_num(depth, nan=float("inf"), neginf=float("inf"))  # every non-finite depth is far
    return finite_near_field_weights(d, threshold, near_weight, transition, mode)


def finite_near_field_weights(
    depth: Tensor, threshold: Union[float, Tensor], near_weight: float, transition: float, mode: str
) -> Tensor:
    """:func:`near_field_weight_values` for depths without NaN (``+inf`` is fine), in one buffer."""
    if mode == "step":
        return torch.where(depth < threshold, near_weight, 1.0).to(depth.dtype)
    # w = 1 + (w_n - 1) * near, near in [0, 1] and non-increasing in depth. (w_n - 1) is formed
    # in the tensor's dtype, where it is exact, so w is exactly 1 where near = 0, exactly w_n
    # where near = 1 and never leaves [1, w_n].
    scale = torch.full((), near_weight, dtype=depth.dtype, device=depth.device) - 1.0
    if depth.requires_grad and torch.is_grad_enabled():  # differentiable path (out of place)
        if mode == "smooth":
            near = _smooth_near(depth, threshold, transition, inplace=False)
        else:
            near = ((threshold + transition - depth) / (2.0 * transition)).clamp(0.0, 1.0)
        return near * scale + 1.0
    if mode == "smooth":  # in one buffer
        near = _smooth_near(depth, threshold, transition, inplace=True)
    else:  # near = clamp((t + τ - d) / 2τ, 0, 1)
        near = (depth - (threshold + transition)).mul_(-1.0 / (2.0 * transition)).clamp_(0.0, 1.0)
    return near.mul_(scale).add_(1.0)
