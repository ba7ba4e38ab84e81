"""Fused sanitize-and-transform primitives with hand-written backward passes.

On the CPU every full-size temporary costs far more than the arithmetic on it (fresh
pages for each allocation), and autograd keeps one or two temporaries per op for the
backward. These functions replace short op chains that every loss runs on full-resolution
maps by one forward buffer and one backward buffer each. They are ``autograd.Function``\\ s,
so ``torch.compile(fullgraph=True)`` traces them, and ``tests/`` gradchecks them through
every kernel that uses them.

Invalid pixels are replaced *before* any arithmetic (:func:`select`, ``torch.where``'s
semantics), so non-finite values there never reach the forward or the backward: their
gradient is exactly 0.
"""

from __future__ import annotations

import functools
import struct
from typing import Any, Callable, Dict, Optional, Tuple, TypeVar

import torch
from torch import Tensor

__all__ = [
    "int_mask",
    "passes_clamp",
    "masked_diff",
    "masked_log_ratio",
    "masked_reciprocal",
    "in_range",
    "positive",
    "positive_finite",
    "sanitize",
    "select",
    "shared_bits",
]

# float dtype -> (same-width integer dtype, struct formats) for the bitwise select
_BITS: Dict[torch.dtype, Tuple[torch.dtype, str, str]] = {
    torch.float32: (torch.int32, "<f", "<i"),
    torch.float64: (torch.int64, "<d", "<q"),
}


F_ = TypeVar("F_", bound=Callable[..., Any])


def first_order(backward: F_) -> F_:
    """Mark an ``autograd.Function.backward`` that is not itself differentiable.

    The fused primitives' backward passes use values the forward computed without a graph
    (``1 / x``, normalized maps, clamp masks), so a second derivative through them would be
    silently wrong. Under ``create_graph=True`` (grad mode on inside the backward) they raise
    instead. (``torch.autograd.function.once_differentiable`` only raises when an upstream
    gradient requires grad, which these losses' upstream gradients often do not.)
    """

    @functools.wraps(backward)
    def wrapper(ctx: Any, *grads: Any) -> Any:
        if torch.is_grad_enabled() and not torch.compiler.is_compiling():
            raise RuntimeError(
                "depthloss: double backward (create_graph=True) through this loss is not supported; "
                "its fused backward is first-order only"
            )
        return backward(ctx, *grads)

    return wrapper  # type: ignore[return-value]


def _bit_path(x: Tensor) -> bool:
    """Whether the bit-pattern kernels apply to ``x``: eager, on the CPU, float32/float64."""
    return x.device.type == "cpu" and x.dtype in _BITS and not torch.compiler.is_compiling()


def _bitwise_ok(x: Tensor) -> bool:
    """Whether :func:`select` may take its branch-free CPU path for ``x``."""
    return _bit_path(x) and not (x.requires_grad and torch.is_grad_enabled())  # bit views carry no gradient


def int_mask(valid: Tensor, dtype: torch.dtype) -> Tensor:
    """``valid`` as integers of ``dtype``'s width: all bits set where true, 0 where false."""
    return valid.view(torch.uint8).to(_BITS[dtype][0]).neg_()


def select(valid: Tensor, x: Tensor, fill: float, bits: Optional[Tensor] = None, inplace: bool = False) -> Tensor:
    """``torch.where(valid, x, fill)``: ``x`` where valid, the constant ``fill`` elsewhere (NaN/inf included).

    On the CPU ``torch.where`` branches per element and runs 3-7x slower on a random mask
    than this branch-free form on the float's bit pattern: ``((x ^ f) & m) ^ f`` with ``m``
    all ones where valid (``x & m`` for ``fill = 0``). Exact, including non-finite ``x``.
    Elsewhere (CUDA, ``torch.compile``, half precision, or ``x`` needing a gradient) it is
    ``torch.where``. ``bits`` may pass a precomputed :func:`int_mask` shared by several calls;
    ``inplace=True`` may overwrite ``x`` (a temporary the caller owns) on the CPU path.
    """
    if not _bitwise_ok(x):
        return torch.where(valid, x, fill)
    m = int_mask(valid, x.dtype) if bits is None else bits
    xi = x.view(_BITS[x.dtype][0])
    fill_bits = _bits_of(fill, x.dtype)
    if fill_bits == 0:  # +0.0
        return (xi.bitwise_and_(m) if inplace else xi & m).view(x.dtype)
    out = xi.bitwise_xor_(fill_bits) if inplace else xi ^ fill_bits
    out &= m
    out ^= fill_bits
    return out.view(x.dtype)


def _bits_of(value: float, dtype: torch.dtype) -> int:
    _, ffmt, ifmt = _BITS[dtype]
    return struct.unpack(ifmt, struct.pack(ffmt, value))[0]


def in_range(x: Tensor, low: float, high: Optional[float] = None) -> Tensor:
    """Bool mask of ``low <= x <= high`` for ``0 < low <= high`` (``high=None``: +inf); NaN is outside.

    On the CPU a float comparison producing ``bool`` is a slow kernel (~0.2 ms for 4x256x512
    floats: two of them cost more than the rest of a masked L1). Positive floats order like
    their bit patterns, so the test is one integer range check,
    ``0 <= bits(x) - bits(low) <= bits(high) - bits(low)``: -0, negative numbers and NaNs
    with the sign bit fall below (wrapping around), the other NaNs above. Elsewhere (CUDA,
    ``torch.compile``, half precision): two comparisons.
    """
    top = float("inf") if high is None else high
    if not _bit_path(x):
        inside = x >= low
        return inside & (x <= top) if high is not None else inside & (x == x)  # x == x: not NaN
    lo, hi = _bits_of(low, x.dtype), _bits_of(top, x.dtype)
    y = x.detach().view(_BITS[x.dtype][0]) - lo
    out = torch.sub(hi - lo, y).bitwise_or_(y)  # sign bit set iff y is outside [0, hi - lo]
    return out.bitwise_right_shift_(8 * x.element_size() - 1).bitwise_not_().to(torch.bool)


def positive_finite(x: Tensor) -> Tensor:
    """Bool mask of ``0 < x < inf`` (NaN is not): the validity of a sparse depth target (:func:`in_range`)."""
    if x.dtype not in _BITS:
        return (x > 0) & (x < float("inf"))
    info = torch.finfo(x.dtype)
    return in_range(x, info.smallest_normal * info.eps, info.max)  # the smallest subnormal .. the largest finite


def positive(x: Tensor) -> Tensor:
    """Bool mask of ``x > 0`` (``+inf`` included, NaN not), as :func:`in_range`."""
    if x.dtype not in _BITS:
        return x > 0
    info = torch.finfo(x.dtype)
    return in_range(x, info.smallest_normal * info.eps)


def shared_bits(valid: Tensor, x: Tensor) -> Optional[Tensor]:
    """The :func:`int_mask` several :func:`select` calls on maps like ``x`` can share (None off the CPU path)."""
    return int_mask(valid, x.dtype) if _bit_path(x) else None


class _Sanitize(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, valid: Tensor, fill: float, bits: Optional[Tensor]) -> Tensor:
        ctx.save_for_backward(valid, bits)
        return select(valid, x, fill, bits)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tuple[Tensor, None, None, None]:
        valid, bits = ctx.saved_tensors
        return select(valid, grad, 0.0, bits), None, None, None


def sanitize(x: Tensor, valid: Tensor, fill: float, bits: Optional[Tensor] = None) -> Tensor:
    """``torch.where(valid, x, fill)`` with the gradient ``where(valid, grad, 0)``, branch-free on the CPU.

    ``bits`` may pass the :func:`shared_bits` of ``valid`` (for ``x``'s dtype) to share it
    between several maps.
    """
    if x.requires_grad and torch.is_grad_enabled():
        return _Sanitize.apply(x, valid, fill, bits)
    return select(valid, x, fill, bits)


def _float(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """0/1 floats from a bool mask through ``uint8`` (bool -> float conversion is a slow path on CPU)."""
    return mask.view(torch.uint8).to(dtype)


class _MaskedDiff(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor, valid: Tensor) -> Tensor:
        ctx.save_for_backward(valid)
        return select(valid, a - b, 0.0, inplace=True)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tuple[Optional[Tensor], Optional[Tensor], None]:
        (valid,) = ctx.saved_tensors
        grad_a = select(valid, grad, 0.0) if any(ctx.needs_input_grad[:2]) else None
        grad_b = -grad_a if grad_a is not None and ctx.needs_input_grad[1] else None
        return (grad_a if ctx.needs_input_grad[0] else None), grad_b, None


def masked_diff(a: Tensor, b: Tensor, valid: Tensor) -> Tensor:
    """``a - b`` where ``valid``, exactly 0 (with zero gradient) elsewhere, whatever ``a``/``b`` hold there."""
    return _MaskedDiff.apply(a, b, valid)


class _MaskedLogRatio(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor, valid: Tensor, floor: float, ceil: Optional[float]) -> Tensor:
        bits = shared_bits(valid, a) if a.dtype == b.dtype else None
        num, den = select(valid, a, 1.0, bits), select(valid, b, 1.0, bits)
        # d/da log(a) = 1/a where a was valid and inside the clamp: keep 1/a there, 0 elsewhere
        in_a = passes_clamp(num, floor, ceil) if ctx.needs_input_grad[0] else None
        in_b = passes_clamp(den, floor, ceil) if ctx.needs_input_grad[1] else None
        num.clamp_(min=floor, max=ceil)
        den.clamp_(min=floor, max=ceil)
        inv_a = None if in_a is None else select(valid, in_a.div_(num), 0.0, bits, inplace=True)
        inv_b = None if in_b is None else select(valid, in_b.div_(den), 0.0, bits, inplace=True)
        ctx.save_for_backward(inv_a, inv_b)
        return num.div_(den).log_()  # in place: one buffer for the result

    @staticmethod
    @first_order
    def backward(ctx: Any, grad: Tensor) -> Tuple[Optional[Tensor], Optional[Tensor], None, None, None]:
        inv_a, inv_b = ctx.saved_tensors
        grad_a = grad * inv_a if inv_a is not None else None
        grad_b = (grad * inv_b).neg_() if inv_b is not None else None
        return grad_a, grad_b, None, None, None


def passes_clamp(x: Tensor, floor: float, ceil: Optional[float]) -> Tensor:
    """0/1 floats: where ``clamp(x, floor, ceil)`` passes ``x`` through (bounds included, torch's
    convention), from signs instead of comparisons (no ``bool`` kernels). ``x`` must hold no NaN."""
    out = (x - floor).sign_().add_(1.0).clamp_(max=1.0)
    if ceil is not None:
        out.mul_(torch.sub(ceil, x).sign_().add_(1.0).clamp_(max=1.0))
    return out


def _compare_range(x: Tensor, floor: float, ceil: Optional[float]) -> Tensor:
    inside = x >= floor
    return inside if ceil is None else inside.logical_and_(x <= ceil)


def masked_log_ratio(
    a: Tensor, b: Tensor, valid: Tensor, floor: Optional[float] = None, ceil: Optional[float] = None
) -> Tensor:
    """``log(clamp(a) / clamp(b))`` where ``valid``, exactly 0 (zero gradient) elsewhere.

    Both are clamped to ``[floor, ceil]``; ``floor`` defaults to the smallest normal number
    of the dtype, so a non-positive value at a valid pixel gives a large finite log and zero
    gradient instead of ``-inf``/NaN.
    """
    if floor is None:
        floor = torch.finfo(a.dtype).tiny
    return _MaskedLogRatio.apply(a, b, valid, floor, ceil)


class _MaskedReciprocal(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, floor: float, ceil: Optional[float]) -> Tensor:
        valid = positive(x)  # NaN and non-positive values are invalid
        out = select(valid, x, 1.0).clamp_(min=floor, max=ceil)
        if ctx.needs_input_grad[0]:
            inside = in_range(x, floor, ceil) if floor > 0 else valid & _compare_range(x, floor, ceil)
            out.reciprocal_()
            # d(1/x)/dx = -1/x^2 = -out^2 where the clamp passed x through, 0 elsewhere
            ctx.save_for_backward(out, _float(inside, x.dtype))
        else:
            out.reciprocal_()
        return out.mul_(_float(valid, x.dtype))

    @staticmethod
    @first_order
    def backward(ctx: Any, grad: Tensor) -> Tuple[Tensor, None, None]:
        out, inside = ctx.saved_tensors
        return (grad * out).mul_(out).mul_(inside).neg_(), None, None


def masked_reciprocal(x: Tensor, floor: float, ceil: Optional[float] = None) -> Tensor:
    """``1 / clamp(x, floor, ceil)`` where ``x > 0``, exactly 0 (zero gradient) where ``x <= 0`` or NaN."""
    return _MaskedReciprocal.apply(x, floor, ceil)
