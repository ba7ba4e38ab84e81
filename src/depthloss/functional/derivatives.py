r"""Multi-scale derivative errors (Depth Pro's MAGE, MALE, MSGE) and the forward-difference gradient field of ZoeDepth.

Building blocks named by concept:

- :func:`scharr` / :func:`laplace`: 3x3 derivative stencils from shifted slices, each with the
  mask of the positions where its whole stencil is valid;
- :func:`masked_pyramid`: "blurring and downsampling by 2 at each scale" for masked maps:
  every coarser level is the 2x2 mean of the valid pixels below it (a box blur and a
  subsampling by 2 in one; invalid pixels never enter a value or a gradient);
- :func:`derivative_error_sums`: per image and level, ``Σ |∇r|^p`` over the valid stencils
  and their count, for a residual ``r``;
- :func:`multiscale_derivative_loss`: :math:`\frac1M \sum_j \frac1{N_j} \sum_i |\nabla r^j_i|^p`
  reduced (the kernels ``mage``, ``male``, ``msge`` are it with the paper's operators);
- :func:`forward_gradient_field`: ZoeDepth's ``grad``/``grad_mask`` (squared magnitude and
  angle of forward differences) with the stencil's validity.

Everything is dense: validity is carried as masks, never by indexing.
"""

from __future__ import annotations

from typing import List, Literal, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from depthloss._checks import SCOPES, check_choice, check_int, check_reduction
from depthloss.functional._plumbing import prepare, reduce_images, safe_div
from depthloss.functional.image import Gradients, masked_mean_pool, smoothed_differences

__all__ = [
    "DERIVATIVE_OPERATORS",
    "DerivativeOperator",
    "GradientField",
    "derivative_error_sums",
    "forward_gradient_field",
    "laplace",
    "masked_pyramid",
    "multiscale_derivative_loss",
    "reduce_levels",
    "scharr",
]

DerivativeOperator = Literal["scharr", "laplace"]
DERIVATIVE_OPERATORS = ("scharr", "laplace")
AngleMode = Literal["atan2", "atan"]
ANGLE_MODES = ("atan2", "atan")


# -- stencils ---------------------------------------------------------------------------------
def scharr(x: Tensor, mask: Tensor) -> Tuple[Gradients, Tensor]:
    """Normalized Scharr derivatives on the ``(H - 2, W - 2)`` interior and where they are valid.

    Taps ``[-3 0 3; -10 0 10; -3 0 3] / 32`` for ``gx`` (correlation: ``gx = 1`` on a ramp of
    slope 1 to the right) and the transpose for ``gy``; valid where the whole 3x3 window is.
    ``x`` must be finite (sanitize invalid pixels first); ``(..., H, W)`` maps.
    """
    return smoothed_differences(x, mask, 3.0, 10.0, 32.0)


def laplace(x: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
    """The 5-point Laplacian ``x[i-1,j] + x[i+1,j] + x[i,j-1] + x[i,j+1] - 4 x[i,j]`` on the interior.

    Valid where the five pixels of the cross are valid. ``x`` must be finite.
    """
    centre = x[..., 1:-1, 1:-1]
    lap = x[..., :-2, 1:-1] + x[..., 2:, 1:-1] + x[..., 1:-1, :-2] + x[..., 1:-1, 2:] - 4.0 * centre
    cross = (
        mask[..., 1:-1, 1:-1] & mask[..., :-2, 1:-1] & mask[..., 2:, 1:-1] & mask[..., 1:-1, :-2] & mask[..., 1:-1, 2:]
    )
    return lap, cross


# -- pyramid ----------------------------------------------------------------------------------
def masked_pyramid(x: Tensor, mask: Tensor, num_scales: int) -> List[Tuple[Tensor, Tensor]]:
    """``num_scales`` levels of ``(B, H, W)`` maps: level 0 is ``(x, mask)``, each next one the
    2x2 mean of the valid pixels of the previous (``ceil`` sizes, valid where the block had one).

    Levels past one pixel stay one pixel. ``x`` must hold finite values at invalid pixels.
    """
    levels = [(x, mask)]
    for _ in range(num_scales - 1):
        x, mask = masked_mean_pool(x, mask, 2)
        levels.append((x, mask))
    return levels


def derivative_error_sums(r: Tensor, mask: Tensor, operator: str, power: int, num_scales: int) -> Tuple[Tensor, Tensor]:
    """Per image and level: ``Σ |∇r|^p`` over the valid stencils, and their count.

    ``r`` and ``mask`` are ``(B, H, W)`` (``r`` finite, 0 at invalid pixels); ``power`` is 1 or 2. For
    ``"scharr"`` a position adds ``|∂x r|^p + |∂y r|^p``; for ``"laplace"`` ``|Δr|^p``.
    Returns two ``(B, num_scales)`` tensors; levels smaller than 3x3 give 0 and 0.
    """
    sums: List[Tensor] = []
    counts: List[Tensor] = []
    for r_j, m_j in masked_pyramid(r, mask, num_scales):
        if r_j.shape[-2] < 3 or r_j.shape[-1] < 3:  # shapes are static: no stencil fits
            sums.append(r_j.sum(dim=(-2, -1)) * 0.0)
            counts.append(torch.zeros(r_j.shape[0], dtype=r.dtype, device=r.device))
            continue
        if operator == "scharr":
            (gx, gy), valid = scharr(r_j, m_j)
            err = _norm(gx, power) + _norm(gy, power)
        else:
            lap, valid = laplace(r_j, m_j)
            err = _norm(lap, power)
        sums.append(torch.where(valid, err, 0.0).sum(dim=(-2, -1)))
        counts.append(valid.sum(dim=(-2, -1)).to(r.dtype))
    return torch.stack(sums, dim=-1), torch.stack(counts, dim=-1)


def _norm(x: Tensor, power: int) -> Tensor:
    """``|x|`` (``power=1``) or ``x²`` (``power=2``): no fractional power, whose slope at 0 is infinite."""
    return x.abs() if power == 1 else x.square()


def reduce_levels(sums: Tensor, counts: Tensor) -> Tensor:
    """``(1 / M) Σ_j sums_j / N_j`` over the ``M`` levels of ``(G, M)`` sums (0 for a level with ``N_j = 0``)."""
    return safe_div(sums, counts).sum(dim=-1) / sums.shape[-1]


def residual_images(pred: Tensor, target: Tensor, mask: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
    """``(r, valid, n_valid)``: ``pred - target`` as ``(B, H, W)`` (0 at invalid pixels), its mask, and
    the valid pixels per image (derivatives are always taken per image, whatever the scope)."""
    p = prepare(pred, target, mask, None, "image")
    images = (pred.shape[0], pred.shape[-2], pred.shape[-1])
    return (p.pred - p.target).reshape(images), p.valid.reshape(images), p.n_valid


def check_derivative_args(num_scales: int) -> None:
    """Validate the pyramid depth of the derivative losses."""
    check_int("num_scales", num_scales, low=1)


def derivative_terms(
    pred: Tensor, target: Tensor, mask: Optional[Tensor], operator: str, power: int, num_scales: int, scope: str
) -> Tuple[Tensor, Tensor, Tensor]:
    """``(sums, counts, n_valid)`` of one derivative loss: ``(G, M)`` per-level sums and stencil
    counts (one pooled row under ``scope="batch"``) and the valid pixels per image."""
    r, valid, n_valid = residual_images(pred, target, mask)
    sums, counts = derivative_error_sums(r, valid, operator, power, num_scales)
    if scope != "image":
        sums, counts, n_valid = sums.sum(dim=0, keepdim=True), counts.sum(dim=0, keepdim=True), n_valid.sum().reshape(1)
    return sums, counts, n_valid


def multiscale_derivative_loss(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor],
    operator: str,
    power: int,
    num_scales: int,
    reduction: str,
    scope: str,
    loss: str,
) -> Tensor:
    r"""Depth Pro's multi-scale derivative loss :math:`\mathcal L_{*,p,M}` of ``pred - target``, reduced.

    .. math:: \mathcal L = \frac{1}{M} \sum_{j=0}^{M-1} \frac{1}{N_j} \sum_{i \in S_j} |\nabla_* r^j_i|^p,
              \qquad r = \text{pred} - \text{target}

    (the derivative operators are linear, so :math:`\nabla C^j - \nabla \hat C^j = \nabla r^j`
    when both maps are pooled over the same valid pixels). ``S_j``: the positions of level
    ``j`` whose whole stencil is valid, ``N_j = |S_j|``. ``reduction="pixel-mean"`` pools each
    level over the batch (``Σ_b sums / Σ_b N_j``); ``scope="batch"`` does the same.
    """
    check_choice("operator", operator, DERIVATIVE_OPERATORS)
    check_derivative_args(num_scales)
    check_reduction(reduction, scope, SCOPES, loss)
    sums, counts, n_valid = derivative_terms(pred, target, mask, operator, power, num_scales, scope)
    if reduction == "pixel-mean":
        return reduce_levels(sums.sum(dim=0, keepdim=True), counts.sum(dim=0, keepdim=True)).sum()
    return reduce_images(reduce_levels(sums, counts), n_valid, reduction)


# -- ZoeDepth's gradient field -------------------------------------------------------------------
class GradientField(NamedTuple):
    """Squared magnitude and angle of forward differences on ``(..., H - 1, W - 1)``, and their validity."""

    magnitude: Tensor
    angle: Tensor
    valid: Tensor


def forward_gradient_field(x: Tensor, mask: Tensor, angle: str = "atan2") -> GradientField:
    """ZoeDepth's ``grad`` and ``grad_mask``: at pixel ``(i, j)``, ``i, j >= 1``,

    ``dx = x[i, j] - x[i, j-1]``, ``dy = x[i, j] - x[i-1, j]``; ``magnitude = dx² + dy²`` (the
    *squared* norm, as ZoeDepth's ``mag``); valid where ``(i, j)``, ``(i, j-1)`` and
    ``(i-1, j)`` are. ``angle="atan2"``: ``atan2(dy, dx)`` in ``(-π, π]``, with ``(dx, dy) =
    (0, 0)`` read as angle 0 *and a zero gradient* (torch's ``atan2`` has a 0/0 gradient there);
    ``"atan"``: ZoeDepth's ``atan(dy / (dx + 1e-10))`` in ``(-π/2, π/2)`` (the orientation modulo
    π; the denominator is sanitized where it is exactly 0).
    """
    dx = x[..., 1:, 1:] - x[..., 1:, :-1]
    dy = x[..., 1:, 1:] - x[..., :-1, 1:]
    valid = mask[..., 1:, 1:] & mask[..., 1:, :-1] & mask[..., :-1, 1:]
    magnitude = dx * dx + dy * dy
    if angle == "atan":
        den = dx + 1e-10
        den = torch.where(den == 0, torch.full_like(den, 1e-10), den)
        theta = torch.atan(dy / den)
    else:
        flat = (dx == 0) & (dy == 0)
        theta = torch.atan2(torch.where(flat, 0.0, dy), torch.where(flat, 1.0, dx))
    return GradientField(magnitude, theta, valid)


def check_angle(angle: str) -> None:
    """Validate the angle convention of ``grad_l1``."""
    check_choice("angle", angle, ANGLE_MODES)
