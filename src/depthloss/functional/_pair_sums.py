"""Row sums of the SSI and SILog residuals of an inverse-depth pair, in one fused function.

The SSI-SILog family (``ssi_silog``, ``near_field_ssi_silog``) needs, per row, the moments of
two residuals of the same pair: ``d = pred - target`` (SSI, inverse depth) and
``g = log z_pred - log z_target = log(clamp(target) / clamp(pred))`` (SILog, depth), unweighted
(the loss, or the near-field guard's baseline) and weighted. Every loss value is a function of
these sums, so one autograd function computes them all and builds each input's gradient from
the sums' gradients in a single buffer: ``∂/∂pred = [valid]·∂/∂d - [inside]/clamp(pred)·∂/∂g``
with ``∂/∂d = γ₁ + 2γ₂d (+ w(γ₃ + 2γ₄d))`` and ``∂/∂g = γ₅ + 2γ₆g (+ u(γ₇ + 2γ₈ug))``.
Autograd through the separate moment sums kept a gradient buffer per sum plus their
accumulations.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from depthloss.functional._common import rowdot

from depthloss.functional._fused import first_order, passes_clamp, select, shared_bits

__all__ = ["PairSums", "SanitizedTarget", "inverse_pair_sums", "sanitize_target"]


class SanitizedTarget(NamedTuple):
    """The target inverse depth with 1 at invalid pixels, as given and clamped, and its depth.

    ``depth = 1 / clamped`` is the clamped target depth at valid pixels (1 elsewhere); the
    near-field weights are computed from it. ``bits`` is the shared select mask (or None).
    """

    raw: Tensor
    clamped: Tensor
    depth: Tensor
    bits: Optional[Tensor]


def sanitize_target(
    target: Tensor, valid: Tensor, floor: float, ceil: Optional[float], bits: Optional[Tensor]
) -> SanitizedTarget:
    """Detached target maps for :func:`inverse_pair_sums` (the target's values, never its gradient)."""
    with torch.no_grad():
        raw = select(valid, target.detach(), 1.0, bits)
        clamped = raw.clamp(min=floor, max=ceil)
        return SanitizedTarget(raw, clamped, clamped.reciprocal(), bits)


class PairSums(NamedTuple):
    """Per-row sums over valid pixels: ``Σd, Σd², Σg, Σg²`` and, when weights are given,
    ``Σw·d, Σw·d²`` and ``Σu·g, Σ(u·g)²`` (None otherwise)."""

    d1: Tensor
    d2: Tensor
    g1: Tensor
    g2: Tensor
    wd1: Optional[Tensor]
    wd2: Optional[Tensor]
    ug1: Optional[Tensor]
    ug2: Optional[Tensor]


class _InversePairSums(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        pred: Tensor,
        target: Tensor,
        valid: Tensor,
        t_raw: Tensor,
        t_clamped: Tensor,
        bits: Optional[Tensor],
        floor: float,
        ceil: Optional[float],
        w: Optional[Tensor],
        u: Optional[Tensor],
    ) -> Tuple[Tensor, ...]:
        p = select(valid, pred, 1.0, bits)
        d = p - t_raw  # exactly 0 off-mask: both hold 1 there
        inside = passes_clamp(p, floor, ceil) if ctx.needs_input_grad[0] else None
        p.clamp_(min=floor, max=ceil)
        # d log(clamp(x)) / dx: 1 / clamp(x) where valid and the clamp passed x through, else 0
        inv_p = None if inside is None else select(valid, inside.div_(p), 0.0, bits, inplace=True)
        inv_t = None
        if ctx.needs_input_grad[1]:
            inv_t = select(valid, passes_clamp(t_raw, floor, ceil).div_(t_clamped), 0.0, bits, inplace=True)
        g = torch.div(t_clamped, p).log_()  # log(1 / 1) = 0 off-mask
        out = [d.sum(dim=-1), rowdot(d, d), g.sum(dim=-1), rowdot(g, g)]
        wd = y = None
        if w is not None:
            wd = w * d
            out += [wd.sum(dim=-1), rowdot(wd, d)]
        if u is not None:
            y = u * g
            out += [y.sum(dim=-1), rowdot(y, y)]
        ctx.has_w, ctx.has_u = w is not None, u is not None
        ctx.save_for_backward(valid, bits, d, g, w, wd, u, y, inv_p, inv_t)
        return tuple(out)

    @staticmethod
    @first_order
    def backward(ctx: Any, *grads: Tensor) -> Tuple[Optional[Tensor], ...]:
        valid, bits, d, g, w, wd, u, y, inv_p, inv_t = ctx.saved_tensors
        col = [x.unsqueeze(-1) for x in grads]
        grad_d = torch.mul(d, 2.0 * col[1]).add_(col[0])  # ∂/∂d of Σd, Σd²
        grad_g = torch.mul(g, 2.0 * col[3]).add_(col[2])
        i = 4
        if ctx.has_w:
            grad_d.addcmul_(wd, 2.0 * col[i + 1]).addcmul_(w, col[i])
            i += 2
        if ctx.has_u:  # ∂/∂g of Σug, Σ(ug)²: u·(γ + 2γ'·ug)
            grad_g.addcmul_(torch.mul(y, 2.0 * col[i + 1]).add_(col[i]), u)
        grad_pred = grad_target = None
        if inv_t is not None:  # ∂d/∂t = -1, ∂g/∂t = 1/clamp(t)
            grad_target = select(valid, grad_d.neg(), 0.0, bits, inplace=True).addcmul_(grad_g, inv_t)
        if inv_p is not None:  # ∂d/∂p = 1, ∂g/∂p = -1/clamp(p)
            grad_pred = select(valid, grad_d, 0.0, bits, inplace=True).addcmul_(grad_g, inv_p, value=-1.0)
        return (grad_pred, grad_target) + (None,) * 8


def inverse_pair_sums(
    pred: Tensor,
    target: Tensor,
    valid: Tensor,
    floor: float,
    ceil: Optional[float],
    t: Optional[SanitizedTarget] = None,
    w: Optional[Tensor] = None,
    u: Optional[Tensor] = None,
) -> PairSums:
    """The per-row residual sums of an inverse-depth pair (rows of ``(G, N)`` maps).

    Args:
        pred, target: ``(G, N)`` inverse depths; values at invalid pixels are never read.
        valid: ``(G, N)`` bool.
        floor, ceil: the inverse-depth clamp of the SILog residual (``ceil`` may be None).
        t: :func:`sanitize_target` of ``target`` if the caller has it already.
        w: optional detached SSI weights, finite at every pixel (0 where invalid is not needed).
        u: optional detached SILog weights, finite at every pixel.
    """
    if t is None:
        t = sanitize_target(target, valid, floor, ceil, shared_bits(valid, pred) if pred.dtype == target.dtype else None)
    bits = t.bits if t.bits is not None and t.bits.dtype.itemsize == pred.dtype.itemsize else None
    return PairSums(*_pad(_InversePairSums.apply(pred, target, valid, t.raw, t.clamped, bits, floor, ceil, w, u), w, u))


def _pad(out: Tuple[Tensor, ...], w: Optional[Tensor], u: Optional[Tensor]) -> Tuple[Optional[Tensor], ...]:
    rest = list(out[4:])
    wd = (rest.pop(0), rest.pop(0)) if w is not None else (None, None)
    ug = (rest.pop(0), rest.pop(0)) if u is not None else (None, None)
    return (*out[:4], *wd, *ug)
