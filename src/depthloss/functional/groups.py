r"""Groups of pixels and scale-and-shift-invariant residuals normalized within each group.

The hierarchical depth normalization losses (:func:`~depthloss.functional.hdn`,
:func:`~depthloss.functional.hdn_random`) normalize prediction and target by the median and
the mean absolute deviation of *groups* ("contexts") of pixels: depth ranges of the target
and spatial windows. A group is a bool membership tensor: ``(G, M, N)`` for ``G`` rows of
``N`` pixels (:func:`~depthloss.functional._plumbing.rows`: one row per image, or one row for
the pooled batch) and ``M`` groups per row. Members are always valid pixels. Everything is
dense: fixed shapes, no indexing by masks, no host synchronization.

Rows of a pooled batch (``scope="batch"``) hold ``B`` images one after the other: pixel ``n``
of a row sits at ``n mod (H W)`` of its image, so a window of the pooled row is the same
window in every image.
"""

from __future__ import annotations

from typing import NamedTuple, Tuple

import torch
from torch import Tensor

from depthloss.functional._plumbing import safe_div
from depthloss.functional.statistics import lower_median

__all__ = [
    "GroupSums",
    "combine_families",
    "depth_bin_ids",
    "depth_ranks",
    "family_terms",
    "grid_ids",
    "group_ssi_sums",
    "partition_ssi_sums",
    "pixel_coordinates",
    "random_range_members",
    "random_window_members",
    "whole_members",
]

#: Metric3D's ``HDNRandomLoss``: a range starts in the first 75 % of the span and covers at least 10 % of it
RANGE_START_MAX = 0.75
RANGE_MIN_WIDTH = 0.1


class GroupSums(NamedTuple):
    """Per row and group: ``Σ |p̂ - ĝ|`` over the group's pixels and the group's size, each ``(G, M)``."""

    residual_sum: Tensor
    size: Tensor


def whole_members(valid: Tensor) -> Tensor:
    """The whole image (all valid pixels of the row) as one group: ``(G, 1, N)``."""
    return valid.unsqueeze(1)


def pixel_coordinates(n: int, height: int, width: int, device: torch.device) -> Tuple[Tensor, Tensor]:
    """Row and column (``(N,)`` int64) of the ``n`` flattened positions of a row of stacked ``H x W`` images."""
    p = torch.arange(n, device=device) % (height * width)
    return torch.div(p, width, rounding_mode="floor"), p % width


def grid_ids(valid: Tensor, height: int, width: int, level: int) -> Tensor:
    """Window of every pixel at hierarchy ``level``: ``2^k x 2^k`` windows, ids ``(G, N)`` in ``[0, 4^k)``.

    Window ``i`` of ``c = 2^k`` along an axis of length ``L`` covers ``[floor(i L / c),
    floor((i + 1) L / c))`` (Metric3D's ``HDSNLoss`` slices), so a pixel lies in exactly one
    window per level; windows of a side shorter than ``c`` may be empty.
    """
    r, c = pixel_coordinates(valid.shape[-1], height, width, valid.device)
    cells = 1 << level
    # the window index along an axis: ceil((x + 1) c / L) - 1
    ri = torch.div((r + 1) * cells + height - 1, height, rounding_mode="floor") - 1
    ci = torch.div((c + 1) * cells + width - 1, width, rounding_mode="floor") - 1
    return (ri * cells + ci).unsqueeze(0).expand(valid.shape)


def depth_ranks(target: Tensor, valid: Tensor) -> Tensor:
    """0-based rank of each valid entry among its row's valid values (ties by position); ``(G, N)`` int64.

    Invalid entries get ranks after every valid one (they are never read).
    """
    order = torch.sort(torch.where(valid, target.detach(), torch.inf), dim=-1, stable=True).indices
    return torch.argsort(order, dim=-1)


def _span(target: Tensor, valid: Tensor) -> Tuple[Tensor, Tensor]:
    """Per-row smallest valid value and the valid span ``max - min`` (0 for empty rows), ``(G, 1)``, detached."""
    t = target.detach()
    lo = torch.where(valid, t, torch.inf).amin(dim=-1, keepdim=True)
    hi = torch.where(valid, t, -torch.inf).amax(dim=-1, keepdim=True)
    ok = valid.any(dim=-1, keepdim=True)
    lo = torch.where(ok, lo, torch.zeros_like(lo))
    return lo, torch.where(ok, hi - lo, torch.zeros_like(lo))


def depth_bin_ids(target: Tensor, valid: Tensor, count: Tensor, level: int, bins: str) -> Tensor:
    """Depth bin of every valid pixel at hierarchy ``level``: ``2^k`` bins, ids ``(G, N)`` in ``[0, 2^k)``.

    ``bins="quantile"``: bins of equal size, by rank (bin ``floor(rank 2^k / n)``; ties split by
    position). ``bins="range"`` (Metric3D's ``HDNLoss``): equal-width ranges of ``[min, max]``,
    bin ``j`` holding ``min + j R / 2^k <= d < min + (j + 1) R / 2^k``, the last one closed (the
    largest depth belongs to it). Invalid pixels get arbitrary ids (never read).
    """
    cells = 2**level
    if bins == "quantile":
        rank = depth_ranks(target, valid)
        return torch.div(rank * cells, count.clamp(min=1).unsqueeze(-1), rounding_mode="floor").clamp(max=cells - 1)
    lo, span = _span(target, valid)
    t = target.detach()
    bin_index = torch.zeros_like(valid, dtype=torch.int64)
    for j in range(1, cells):  # the thresholds a depth reaches
        bin_index = bin_index + (t >= lo + span * (j / cells)).to(torch.int64)
    return bin_index


def random_range_members(target: Tensor, valid: Tensor, count: Tensor, u: Tensor, bins: str) -> Tensor:
    """Random depth ranges from uniforms ``u`` of shape ``(G, S, 2)``: ``(G, S, N)`` groups.

    A range covers the fractions ``[a, b)`` of the row's valid span, ``a = 0.75 u_0`` and
    ``b = a + 0.1 + (0.9 - a) u_1`` (Metric3D's ``HDNRandomLoss``, as intended: see
    :func:`~depthloss.functional.hdn_random`). ``bins="range"``: ``min + a R <= d < min + b R``;
    ``bins="quantile"``: ranks in ``[a n, b n)``.
    """
    a = RANGE_START_MAX * u[..., 0:1]  # (G, S, 1)
    b = a + RANGE_MIN_WIDTH + (1.0 - RANGE_MIN_WIDTH - a) * u[..., 1:2]
    if bins == "quantile":
        rank = depth_ranks(target, valid).unsqueeze(1).to(u.dtype)  # (G, 1, N)
        n = count.to(u.dtype).view(-1, 1, 1)
        inside = (rank >= a * n) & (rank < b * n)
    else:
        lo, span = _span(target, valid)
        t = target.detach().unsqueeze(1)
        lo, span = lo.unsqueeze(1), span.unsqueeze(1)
        inside = (t >= lo + span * a) & (t < lo + span * b)
    return valid.unsqueeze(1) & inside


def _window_side(u_size: Tensor, u_start: Tensor, length: int, size: Tuple[float, float]) -> Tuple[Tensor, Tensor]:
    """Start and end of a random window side (Metric3D's ``HDSNRandomLoss`` draws), float64 arithmetic."""
    smallest = max(1, int(size[0] * length))
    largest = max(smallest + 1, int(size[1] * length))  # sizes in [smallest, largest)
    starts = max(length - smallest, 1)  # starts in [0, length - smallest)
    extent = smallest + torch.floor(u_size.double() * (largest - smallest)).clamp(max=largest - smallest - 1)
    start = torch.floor(u_start.double() * starts).clamp(max=starts - 1)
    return start.long(), torch.clamp(start + extent, max=length).long()


def random_window_members(
    valid: Tensor, height: int, width: int, u: Tensor, size: Tuple[float, float] = (0.125, 0.5)
) -> Tensor:
    """Random windows from uniforms ``u`` of shape ``(G, S, 4)``: ``(G, S, N)`` groups.

    Window height ``h = floor(size_0 H) + floor(u_0 (floor(size_1 H) - floor(size_0 H)))``, top
    ``y = floor(u_2 (H - floor(size_0 H)))``, rows ``[y, min(y + h, H))``; the same for the
    width with ``u_1``, ``u_3`` (Metric3D's ``HDSNRandomLoss``: crop sizes in
    ``[H/8, H/2)``, starts in ``[0, H - H/8)``; sizes and starts at least one pixel).
    """
    r, c = pixel_coordinates(valid.shape[-1], height, width, valid.device)
    y0, y1 = _window_side(u[..., 0:1], u[..., 2:3], height, size)
    x0, x1 = _window_side(u[..., 1:2], u[..., 3:4], width, size)
    inside = (r >= y0) & (r < y1) & (c >= x0) & (c < x1)  # (G, S, N)
    return valid.unsqueeze(1) & inside


def _mad(x: Tensor, valid: Tensor, count: Tensor) -> Tuple[Tensor, Tensor]:
    """Per-row lower median and mean absolute deviation of the valid entries (0 for empty rows)."""
    shift = lower_median(x, valid, count)
    centred = torch.where(valid, x - shift.unsqueeze(-1), 0.0)
    return centred, safe_div(centred.abs().sum(dim=-1), count.to(x.dtype))


def _normalized(x: Tensor, flat: Tensor, count: Tensor, floor: Tensor) -> Tensor:
    """``(x - med_c) / max(MAD_c, floor)`` within each row; a flat context (``MAD_c = 0``) gives 0."""
    centred, mad = _mad(x, flat, count)
    scale = torch.maximum(mad, floor)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # then every centred value is 0
    return centred / scale.unsqueeze(-1)


def group_ssi_sums(
    pred: Tensor, target: Tensor, valid: Tensor, n_valid: Tensor, members: Tensor, eps: float
) -> GroupSums:
    r"""Median/MAD-normalize ``pred`` and ``target`` within every group, sum ``|p̂ - ĝ|`` per group.

    .. math:: \hat x_u = \frac{x_u - \operatorname{med}_c(x)}{\max(\operatorname{MAD}_c(x),\ \epsilon \operatorname{MAD}(x))},
              \qquad S_c = \sum_{u \in c} |\hat p_u - \hat g_u|

    with :math:`\operatorname{MAD}_c(x) = \tfrac{1}{|c|}\sum_{v \in c}|x_v - \operatorname{med}_c(x)|`
    and the (lower) median over the group's pixels only. The floor is relative to the MAD of
    the whole row's valid pixels, so the normalized maps are exactly invariant to
    ``x -> a x + b`` (``a > 0``) while a near-flat context stays bounded; a flat context gives 0.
    ``pred`` and ``target`` are ``(G, N)`` rows, finite at ``valid`` pixels; ``members`` is ``(G, M, N)``.
    """
    g, m, n = members.shape
    flat = members.reshape(g * m, n)
    count = flat.sum(dim=-1)
    normalized = []
    for x in (pred, target):
        floor = eps * _mad(x, valid, n_valid)[1]  # (G,)
        rows = x.unsqueeze(1).expand(g, m, n).reshape(g * m, n)
        normalized.append(_normalized(rows, flat, count, floor.unsqueeze(1).expand(g, m).reshape(g * m)))
    residual = torch.where(flat, (normalized[0] - normalized[1]).abs(), 0.0)
    return GroupSums(residual.sum(dim=-1).reshape(g, m), count.reshape(g, m))


def _partition_normalized(x: Tensor, valid: Tensor, ids: Tensor, count: Tensor, groups: int, floor: Tensor) -> Tensor:
    """``(x - med_c) / max(MAD_c, floor)`` for a partition of the valid pixels into ``groups`` parts.

    One sort by value and one stable sort by part give every part's values in order; the lower
    median of part ``c`` sits at rank ``(n_c - 1) // 2`` of its run and is gathered from ``x``.
    """
    n = x.shape[-1]
    by_value = torch.sort(torch.where(valid, x.detach(), torch.inf), dim=-1, stable=True).indices
    by_part = torch.sort(ids.gather(1, by_value), dim=-1, stable=True).indices
    order = by_value.gather(1, by_part)  # positions sorted by (part, value), invalid ones last
    start = torch.cumsum(count, dim=-1) - count
    middle = (start + torch.div(count - 1, 2, rounding_mode="floor").clamp(min=0)).clamp(max=max(n - 1, 0))
    median = x.gather(1, order.gather(1, middle))
    median = torch.where(count > 0, median, torch.zeros_like(median))  # (G, groups)
    part = ids.clamp(max=groups - 1)
    centred = torch.where(valid, x - median.gather(1, part), 0.0)
    mad = safe_div(torch.zeros_like(median).scatter_add(1, part, centred.abs()), count.to(x.dtype))
    scale = torch.maximum(mad, floor.unsqueeze(-1))
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # then every centred value is 0
    return centred / scale.gather(1, part)


def partition_ssi_sums(
    pred: Tensor, target: Tensor, valid: Tensor, n_valid: Tensor, ids: Tensor, groups: int, eps: float
) -> GroupSums:
    """:func:`group_ssi_sums` for contexts that partition the valid pixels (one hierarchy level).

    ``ids``: ``(G, N)`` int64, the part in ``[0, groups)`` of every valid pixel. Costs two sorts
    per map instead of one pass per context; the values are those of :func:`group_ssi_sums`.
    """
    ids = torch.where(valid, ids, groups)  # invalid pixels form an extra, ignored part
    count = torch.zeros((ids.shape[0], groups + 1), dtype=torch.int64, device=ids.device)
    count = count.scatter_add(1, ids, torch.ones_like(ids))[:, :groups]
    normalized = []
    for x in (pred, target):
        floor = eps * _mad(x, valid, n_valid)[1]
        normalized.append(_partition_normalized(x, valid, ids, count, groups, floor))
    residual = torch.where(valid, (normalized[0] - normalized[1]).abs(), 0.0)
    sums = torch.zeros((ids.shape[0], groups), dtype=residual.dtype, device=ids.device)
    return GroupSums(sums.scatter_add(1, ids.clamp(max=groups - 1), residual), count)


def family_terms(sums: GroupSums, min_pixels: int) -> Tuple[Tensor, Tensor]:
    """Per row: the residual sum and the size sum over the groups with at least ``min_pixels`` pixels."""
    kept = sums.size >= max(min_pixels, 1)
    num = torch.where(kept, sums.residual_sum, 0.0).sum(dim=-1)
    den = torch.where(kept, sums.size, 0).sum(dim=-1).to(num.dtype)
    return num, den


def combine_families(terms: Tuple[Tuple[Tensor, Tensor], ...], pooled: bool) -> Tuple[Tensor, Tensor]:
    """Mean over families of ``Σ S / Σ |c|`` (families without a kept group left out); and the total size.

    ``pooled``: the sums of every row are added first (the batch pooled, Metric3D's form).
    """
    values, has, total = [], [], []
    for num, den in terms:
        if pooled:
            num, den = num.sum(), den.sum()
        values.append(safe_div(num, den))
        has.append((den > 0).to(num.dtype))
        total.append(den)
    value = safe_div(torch.stack(values).sum(dim=0), torch.stack(has).sum(dim=0))
    return value, torch.stack(total).sum(dim=0)
