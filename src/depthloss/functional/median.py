"""Exact masked medians and median/MAD normalization."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from depthloss.functional._checks import check_choice, check_depth_map, check_float, check_mask
from depthloss.functional._common import (
    SCOPES,
    Scope,
    abs_sum,
    autocast_off,
    compute_dtype,
    count_valid,
    groups,
    per_image,
    prepare_one,
    rowdot,
)
from depthloss.functional._fused import first_order, select, shared_bits
from depthloss.functional._select import kth_smallest, kth_smallest_index, kth_smallest_indices

__all__ = ["MadNormalized", "mad_normalize", "masked_median"]


def lower_median(x: Tensor, valid: Tensor, count: Tensor) -> Tensor:
    """Per-row lower median of the valid entries of ``(G, N)`` ``x`` (0 for empty rows)."""
    return kth_smallest(x, valid, (count + 1) // 2)


@autocast_off
def masked_median(x: Tensor, mask: Optional[Tensor] = None, *, scope: Scope = "image") -> Tensor:
    """Exact per-image median of the valid pixels.

    For an even number of valid values this is the *lower* of the two middle values,
    torch's convention (``torch.median``), so the result is always one of the inputs and
    the gradient is one-hot on it. All images are processed at once (a batched radix
    select, no loop over images, no host synchronization).

    Args:
        x: ``(B, 1, H, W)`` or ``(B, H, W)`` floating map.
        mask: bool, same shape; ``None`` means every pixel is valid.
        scope: ``"image"`` (default) or ``"batch"`` for the median of the pooled batch.

    Returns:
        ``(B,)`` medians in the compute dtype (float32 for half inputs); 0 for images
        without valid pixels.

    Example:
        >>> x = torch.tensor([[[4.0, 1.0], [3.0, 100.0]]])
        >>> mask = torch.tensor([[[True, True], [True, False]]])
        >>> masked_median(x, mask)
        tensor([3.])
        >>> masked_median(x)  # lower median of 1, 3, 4, 100
        tensor([3.])
    """
    check_choice("scope", scope, SCOPES)
    check_depth_map("x", x)
    check_mask(mask, x, "x")
    values = groups(x, scope).to(compute_dtype(x))  # invalid values are never read: no sanitizing
    valid = torch.ones_like(values, dtype=torch.bool) if mask is None else groups(mask, scope)
    return per_image(lower_median(values, valid, count_valid(valid)), x.shape[0], scope)


class MadNormalized(NamedTuple):
    """Result of :func:`mad_normalize`: the normalized map and the per-image ``shift`` and ``scale``."""

    x_hat: Tensor
    shift: Tensor
    scale: Tensor


class _MadNormalize(torch.autograd.Function):
    """Median/MAD normalization of ``(G, N)`` rows with a hand-written backward.

    With ``m`` the lower median (element ``i*``), ``c = x - m``, ``s = max(mean|c|, eps)``
    and ``x̂ = c / s`` over the ``n`` valid entries, for upstream gradients ``G`` (of ``x̂``),
    ``g_m`` (of the shift) and ``g_s`` (of the scale):

    ``∂L/∂x_j = G_j/s + A·sign(x̂_j) + [j = i*]·(g_m - ΣG/s - A·Σsign(x̂))`` on valid entries,
    with ``A = (g_s - Σ G·x̂ / s) / n`` while ``mean|c| > eps`` (0 once clamped).

    One full-size buffer in the forward (``c``, normalized in place) and two in the backward
    (:func:`_mad_input_grad`), instead of a dozen through autograd.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, valid: Tensor, mask_f: Tensor, count: Tensor, eps: float) -> Tuple[Tensor, Tensor, Tensor]:
        idx = kth_smallest_index(x, valid, (count + 1) // 2)
        n = count.to(x.dtype).clamp(min=1.0)
        c = _centred(x, idx, valid, count, n, eps, shared_bits(valid, x))
        x_hat = c.c.div_(c.scale.unsqueeze(1))
        ctx.save_for_backward(x_hat, mask_f, c.scale, n, idx, count > 0, c.free)
        return x_hat, c.shift, c.scale

    @staticmethod
    @first_order
    def backward(ctx: Any, g_hat: Tensor, g_shift: Tensor, g_scale: Tensor) -> Tuple[Optional[Tensor], None, None, None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        x_hat, mask_f, scale, n, idx, has, free = ctx.saved_tensors
        base = g_hat * mask_f  # the upstream gradient on valid entries; x̂ = c / s, so Σ base·c = s·Σ base·x̂
        ones = torch.ones_like(scale)
        grad = _mad_input_grad(
            base, ones, None, base.sum(dim=-1), rowdot(base, x_hat) * scale, x_hat, scale, n, idx, has, free,
            g_shift, g_scale,
        )  # fmt: skip
        return grad, None, None, None, None


class _Centred(NamedTuple):
    c: Tensor  # x - m, exactly 0 off-mask
    scale: Tensor  # max(MAD, eps)
    free: Tensor  # MAD > eps
    shift: Tensor  # the median m
    sign: Optional[Tensor]  # sign(c), when asked for (the backward needs it)


def _centred(
    x: Tensor, idx: Tensor, valid: Tensor, count: Tensor, n: Tensor, eps: float, bits: Optional[Tensor],
    with_sign: bool = False,
) -> _Centred:  # fmt: skip
    """Centre ``x`` on its median at position ``idx`` (invalid entries may hold anything, NaN
    included); with ``with_sign`` the MAD is ``Σ c·sign(c)`` and ``sign(c)`` is kept, which the
    backward would otherwise recompute."""
    shift = torch.where(count > 0, x.gather(1, idx.unsqueeze(1)).squeeze(1), 0.0)
    c = select(valid, x - shift.unsqueeze(1), 0.0, bits, inplace=True)
    tau = torch.sign(c) if with_sign else None
    mad = (abs_sum(c) if tau is None else rowdot(c, tau)) / n
    return _Centred(c, mad.clamp(min=eps), mad > eps, shift, tau)


def _mad_input_grad(
    base: Tensor, coef: Tensor, direct: Optional[Tensor], sum_base: Tensor, dot_base_c: Tensor, c: Tensor,
    s: Tensor, n: Tensor, idx: Tensor, has: Tensor, free: Tensor,
    g_shift: Optional[Tensor] = None, g_scale: Optional[Tensor] = None, sign: Optional[Tensor] = None,
) -> Tensor:  # fmt: skip
    """Gradient reaching ``x`` through ``x̂ = (x - median) / s``, in one buffer.

    The upstream gradient of ``x̂`` is ``G = coef·base`` (``base`` a map that is 0 off-mask,
    ``coef`` per row), ``direct·base`` is added straight to ``x`` (a term linear in ``x``),
    and ``g_shift`` / ``g_scale`` are the upstream gradients of the median and the scale.
    ``sum_base = Σ base`` and ``dot_base_c = Σ base·c`` (``c = x - median``) are the row sums
    the formula needs (:class:`_MadNormalize`'s):
    ``∂/∂x_j = G_j/s + A·sign(c_j) + [j = i*](g_shift - ΣG/s - A·Σsign(c))``,
    ``A = (g_scale - Σ G·x̂ / s) / n`` while the MAD is above ``eps``. ``sign`` may pass a
    saved ``sign(c)``. ``base`` and ``sign`` are not modified.
    """
    inv_s = s.reciprocal()
    tau = torch.sign(c) if sign is None else sign  # 0 off-mask and at the median
    sum_tau = tau.sum(dim=-1)
    a = -coef * dot_base_c * inv_s * inv_s
    if g_scale is not None:
        a = a + g_scale
    a = a * free / n
    along = coef * inv_s if direct is None else coef * inv_s + direct
    grad = (torch.mul(tau, a.unsqueeze(1)) if sign is not None else tau.mul_(a.unsqueeze(1))).addcmul_(base, along.unsqueeze(1))
    at_median = -coef * sum_base * inv_s - a * sum_tau
    if g_shift is not None:
        at_median = at_median + g_shift
    return grad.scatter_add_(1, idx.unsqueeze(1), (at_median * has).unsqueeze(1))


class _MadL1(torch.autograd.Function):
    """``Σ |x̂ - ĝ|`` per row of two median/MAD-normalized ``(G, N)`` maps sharing one mask.

    The MAD-normalized L1 (``ssi_mae`` without a trim, Metric3D's SSI loss) in one function:
    the forward keeps the two centred maps and the residual (three buffers), the backward
    builds each input's gradient in one buffer from ``sign(r)`` (see :func:`_mad_input_grad`).
    Invalid entries of both maps may hold anything (NaN/inf included): they are never read
    by the selection and are zeroed before any arithmetic.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, g: Tensor, valid: Tensor, count: Tensor, eps: float) -> Tensor:
        bits = shared_bits(valid, x) if x.dtype == g.dtype else None
        n = count.to(x.dtype).clamp(min=1.0)
        ix, ig = kth_smallest_indices([x, g], valid, (count + 1) // 2)  # one selection call for both
        px = _centred(x, ix, valid, count, n, eps, bits, with_sign=ctx.needs_input_grad[0])
        pg = _centred(g, ig, valid, count, n, eps, bits, with_sign=ctx.needs_input_grad[1])
        r = px.c * px.scale.reciprocal().unsqueeze(1)
        r.addcmul_(pg.c, pg.scale.reciprocal().neg_().unsqueeze(1))  # x̂ - ĝ
        sigma = torch.sign(r)  # 0 off-mask: r is
        ctx.save_for_backward(sigma, px.c, pg.c, px.scale, pg.scale, n, ix, ig, count > 0, px.free, pg.free, px.sign, pg.sign)
        return rowdot(r, sigma)  # Σ|r|

    @staticmethod
    @first_order
    def backward(ctx: Any, gamma: Tensor) -> Tuple[Optional[Tensor], Optional[Tensor], None, None, None]:
        sigma, cx, cg, sx, sg, n, ix, ig, has, fx, fg, tx, tg = ctx.saved_tensors
        sum_sigma = sigma.sum(dim=-1)
        grad_x = grad_g = None
        if ctx.needs_input_grad[0]:
            grad_x = _mad_input_grad(sigma, gamma, None, sum_sigma, rowdot(sigma, cx), cx, sx, n, ix, has, fx, sign=tx)
        if ctx.needs_input_grad[1]:
            grad_g = _mad_input_grad(sigma, -gamma, None, sum_sigma, rowdot(sigma, cg), cg, sg, n, ig, has, fg, sign=tg)
        return grad_x, grad_g, None, None, None


class _MadResidual(torch.autograd.Function):
    """The scale-adaptive residual ``R = α(x̂ - ĝ) + b(x - g)`` of two ``(G, N)`` maps, 0 off-mask.

    ``x̂, ĝ`` are median/MAD-normalized over the shared mask and ``b = (1 - α) / u`` with the
    target's unit ``u = max(s_g, floor·|med g|)``: α = 1 is scale-and-shift invariant, α = 0
    metric in the target's MAD units. ``R = k_x·c_x - k_g·c_g + b(m_x - m_g)`` on valid
    entries (``c = x - median``, ``k_x = α/s_x + b``, ``k_g = α/s_g + b``): three buffers in the
    forward (both centred maps and ``R``) and one per input in the backward, built by
    :func:`_mad_input_grad`; the target's gradient includes the path through ``u``. ``α`` is
    a hyper-parameter (a schedule of training progress): no gradient flows to it. Returns
    ``(R, s_g, m_g)``.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, g: Tensor, valid: Tensor, mask_f: Tensor, count: Tensor, alpha: Any, eps: float,
        floor: float,
    ) -> Tuple[Tensor, Tensor, Tensor]:  # fmt: skip
        bits = shared_bits(valid, x) if x.dtype == g.dtype else None
        n = count.to(x.dtype).clamp(min=1.0)
        ix, ig = kth_smallest_indices([x, g], valid, (count + 1) // 2)
        cx, sx, fx, mx, tx = _centred(x, ix, valid, count, n, eps, bits, with_sign=ctx.needs_input_grad[0])
        cg, sg, fg, mg, tg = _centred(g, ig, valid, count, n, eps, bits, with_sign=ctx.needs_input_grad[1])
        floored = floor * mg.abs()
        unit = torch.maximum(sg, floored)
        b = (1.0 - alpha) / unit
        coef = torch.ones_like(b) * alpha  # α per row
        r = cx * (coef / sx + b).unsqueeze(1)
        r.addcmul_(cg, (coef / sg + b).neg_().unsqueeze(1))
        r.addcmul_(mask_f, (b * (mx - mg)).unsqueeze(1))
        ctx.floor = floor
        ctx.save_for_backward(valid, bits, cx, cg, sx, sg, mx, mg, n, ix, ig, count > 0, fx, fg, unit, b, floored, coef, tx, tg)
        return r, sg, mg

    @staticmethod
    @first_order
    def backward(ctx: Any, grad: Tensor, g_sg: Tensor, g_mg: Tensor) -> Tuple[Optional[Tensor], ...]:
        valid, bits, cx, cg, sx, sg, mx, mg, n, ix, ig, has, fx, fg, unit, b, floored, coef, tx, tg = ctx.saved_tensors
        gm = select(valid, grad, 0.0, bits)  # the upstream gradient on valid entries only
        sum_g = gm.sum(dim=-1)
        dot_x, dot_g = rowdot(gm, cx), rowdot(gm, cg)
        grad_x = grad_g = None
        if ctx.needs_input_grad[0]:
            grad_x = _mad_input_grad(gm, coef, b, sum_g, dot_x, cx, sx, n, ix, has, fx, sign=tx)
        if ctx.needs_input_grad[1]:
            # through u = max(s_g, floor·|m_g|): Σ G·∂R/∂u = -(b/u)·Σ G·(x - g)
            through_unit = -(b / unit) * (dot_x - dot_g + (mx - mg) * sum_g)
            to_scale = torch.where(sg > floored, 1.0, torch.where(sg == floored, 0.5, 0.0))
            g_scale = through_unit * to_scale + g_sg
            g_shift = through_unit * (1.0 - to_scale) * ctx.floor * torch.sign(mg) + g_mg
            grad_g = _mad_input_grad(gm, -coef, -b, sum_g, dot_g, cg, sg, n, ig, has, fg, g_shift, g_scale, sign=tg)
        return (grad_x, grad_g) + (None,) * 6


def mad_residual_rows(
    x: Tensor, g: Tensor, valid: Tensor, mask_f: Tensor, count: Tensor, alpha: Any, eps: float, floor: float
) -> Tuple[Tensor, Tensor, Tensor]:
    """``(R, s_g, m_g)`` of :class:`_MadResidual` for ``(G, N)`` rows; ``mask_f`` is ``valid`` as
    0/1 floats, ``alpha`` a float or a 0-dim tensor (not differentiated)."""
    if isinstance(alpha, Tensor):
        alpha = alpha.detach()
    return _MadResidual.apply(x, g, valid, mask_f, count, alpha, eps, floor)


def mad_l1_rows(x: Tensor, g: Tensor, valid: Tensor, count: Tensor, eps: float) -> Tensor:
    """Per-row ``Σ_valid |x̂ - ĝ|`` of median/MAD-normalized ``x`` and ``g`` (see :class:`_MadL1`)."""
    return _MadL1.apply(x, g, valid, count, eps)


def mad_rows(x: Tensor, valid: Tensor, w: Tensor, count: Tensor, eps: float) -> MadNormalized:
    """Median/MAD-normalize rows of ``(G, N)`` ``x``.

    ``w`` is the 0/1 float form of ``valid`` and ``count`` its row sums; invalid entries of
    ``x`` must be finite and ``x_hat`` is 0 there.
    """
    x_hat, shift, scale = _MadNormalize.apply(x, valid, w, count, eps)
    return MadNormalized(x_hat, shift, scale)


@autocast_off
def mad_normalize(
    x: Tensor,
    mask: Optional[Tensor] = None,
    eps: float = 1e-6,
    *,
    scope: Scope = "image",
) -> MadNormalized:
    r"""Shift by the median and divide by the mean absolute deviation, per image.

    .. math:: \hat x = \frac{x - \operatorname{med}(x)}{\max\left(\tfrac{1}{n}\sum_i |x_i - \operatorname{med}(x)|,\ \epsilon\right)}

    over the valid pixels (MiDaS's ``normalize_prediction_robust``, with the median taken
    over valid pixels only). The result is invariant to ``x -> a*x + b`` for ``a > 0``
    (as long as the deviation stays above ``eps``).

    Args:
        x: ``(B, 1, H, W)`` or ``(B, H, W)`` floating map.
        mask: bool, same shape; ``None`` means every pixel is valid.
        eps: lower bound on the scale (default ``1e-6``), keeps constant images finite.
        scope: ``"image"`` (default) or ``"batch"``.

    Returns:
        ``MadNormalized(x_hat, shift, scale)``: ``x_hat`` has ``x``'s shape and is 0 at
        invalid pixels; ``shift`` and ``scale`` have shape ``(B,)``. Images without valid
        pixels get ``shift = 0`` and ``scale = eps``.

    Example:
        >>> x = torch.tensor([[[1.0, 2.0], [3.0, 6.0]]])
        >>> x_hat, shift, scale = mad_normalize(x)
        >>> x_hat
        tensor([[[-0.6667,  0.0000],
                 [ 0.6667,  2.6667]]])
        >>> shift, scale
        (tensor([2.]), tensor([1.5000]))
    """
    check_choice("scope", scope, SCOPES)
    check_float("eps", eps, low=0.0, low_inclusive=False)
    p = prepare_one(x, mask, None, scope)
    out = mad_rows(p.x, p.valid, p.w, p.count, eps)
    b = x.shape[0]
    return MadNormalized(
        out.x_hat.reshape(x.shape), per_image(out.shift, b, scope), per_image(out.scale, b, scope)
    )
