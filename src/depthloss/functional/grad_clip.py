"""Clamp the gradient that flows back through a tensor, element-wise."""

from __future__ import annotations

from typing import Any, Tuple

import torch
from torch import Tensor

from depthloss._checks import check_float

__all__ = ["clamp_grad"]


class _ClampGrad(torch.autograd.Function):
    """Identity forward; backward clamps each element of the incoming gradient to ``[-bound, bound]``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, bound: float) -> Tensor:
        ctx.bound = bound
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tuple[Tensor, None]:
        return grad.clamp(-ctx.bound, ctx.bound), None


def clamp_grad(x: Tensor, bound: float) -> Tensor:
    """Return ``x`` unchanged, but clamp the per-element gradient reaching ``x`` to ``[-bound, bound]``.

    A hook on a *scalar* loss (what the seed registered) only sees ``d loss / d loss = 1``
    and clamps nothing; clamping has to happen where the per-pixel gradient flows, i.e. on
    the prediction. Works under ``torch.compile(fullgraph=True)``.

    Args:
        x: any tensor.
        bound: ``> 0``.

    Returns:
        ``x`` (a view), whose gradient is clamped.

    Example:
        >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> (100.0 * clamp_grad(x, 0.5)).sum().backward()
        >>> x.grad
        tensor([0.5000, 0.5000])
    """
    check_float("bound", bound, low=0.0, low_inclusive=False)
    out: Tensor = _ClampGrad.apply(x, bound)  # type: ignore[no-untyped-call]
    return out
