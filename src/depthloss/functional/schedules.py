"""Progress schedules: hyper-parameters that move as training advances.

Schedules compute on a 0-dim progress tensor: a float that changes every step is then a new
*value* of the same ``torch.compile`` graph input, never a recompile.
"""

from __future__ import annotations

import math
from typing import Literal, Optional, Union

import torch
from torch import Tensor

from depthloss._checks import check_choice, check_float, check_int, check_progress

__all__ = ["scale_weights", "schedule"]

ScheduleKind = Literal["constant", "linear", "cosine", "step"]
SCHEDULE_KINDS = ("constant", "linear", "cosine", "step")

Progress = Union[float, Tensor]


def _progress_tensor(progress: Progress, device: Optional[torch.device], dtype: Optional[torch.dtype]) -> Tensor:
    """``progress`` as a 0-dim floating tensor clamped to [0, 1] (a tensor keeps its device)."""
    if isinstance(progress, Tensor):
        return progress.to(dtype=dtype or progress.dtype).clamp(0.0, 1.0)
    # torch.full, not torch.as_tensor: the latter specializes a traced float on its value
    return torch.full((), progress, dtype=dtype or torch.float32, device=device).clamp(0.0, 1.0)


def schedule(
    progress: Progress,
    kind: ScheduleKind = "linear",
    start: float = 1.0,
    end: float = 0.0,
    milestone: float = 0.5,
    *,
    device: Optional[torch.device] = None,
    dtype: Optional[torch.dtype] = None,
) -> Tensor:
    r"""Interpolate from ``start`` (progress 0) to ``end`` (progress 1).

    ``progress`` is clamped to ``[0, 1]``:

    - ``"constant"``: ``start``
    - ``"linear"``: :math:`s + (e - s)\,p`
    - ``"cosine"``: :math:`s + (e - s)\,\tfrac{1}{2}(1 - \cos \pi p)`
    - ``"step"``: ``start`` before ``milestone``, ``end`` from it on

    Every kind is monotone in ``progress`` and exactly ``start`` at 0 and ``end`` at 1.

    Args:
        progress: training progress, a float or a 0-dim tensor.
        kind: the schedule (default ``"linear"``).
        start: value at progress 0.
        end: value at progress 1.
        milestone: switch point of ``"step"``, in ``[0, 1]``.
        device: device of the result for float progress (a tensor progress's device wins).
        dtype: dtype of the result (default: progress's, float32 for a float).

    Returns:
        A 0-dim tensor.

    Example:
        >>> schedule(0.25, "linear", 1.0, 0.0)
        tensor(0.7500)
        >>> schedule(torch.tensor(0.5), "cosine", 1.0, 0.0)
        tensor(0.5000)
    """
    progress = check_progress(progress)
    check_choice("kind", kind, SCHEDULE_KINDS)
    start = check_float("start", start)
    end = check_float("end", end)
    check_float("milestone", milestone, low=0.0, high=1.0)
    p = _progress_tensor(progress, device, dtype)
    if kind == "constant":
        return torch.full_like(p, start)
    if kind == "step":
        return torch.where(p < milestone, torch.full_like(p, start), torch.full_like(p, end))
    frac = p if kind == "linear" else 0.5 * (1.0 - torch.cos(math.pi * p))
    value = (start + (end - start) * frac).clamp(min(start, end), max(start, end))
    return torch.where(p >= 1.0, end, value).to(p.dtype)  # exactly `end` at 1 (the formula may miss by an ulp)


def scale_weights(
    progress: Progress,
    num_scales: int,
    kind: ScheduleKind = "linear",
    *,
    device: Optional[torch.device] = None,
    dtype: Optional[torch.dtype] = None,
) -> Tensor:
    r"""Per-scale weights summing to 1, moving from coarse to fine as training progresses.

    Level 0 is the finest. With :math:`c_s \propto 2^{s}` (coarse-heavy) and
    :math:`f_s \propto 2^{-s}` (fine-heavy), each normalized to sum 1,

    .. math:: w_s = (1 - t)\,c_s + t\,f_s, \qquad t = \text{schedule}(p, \text{kind}, 0, 1)

    so early training leans on the coarse levels and late training on the fine ones.
    ``kind="constant"`` gives uniform weights ``1 / num_scales``.

    Args:
        progress: training progress, a float or a 0-dim tensor.
        num_scales: number of levels, ``>= 1``.
        kind: the schedule of ``t`` (default ``"linear"``).
        device: device of the result for float progress (a tensor progress's device wins).
        dtype: dtype of the result (default float32, or a tensor progress's dtype).

    Returns:
        ``(num_scales,)`` weights.

    Example:
        >>> scale_weights(0.0, 3)
        tensor([0.1429, 0.2857, 0.5714])
        >>> scale_weights(1.0, 3)
        tensor([0.5714, 0.2857, 0.1429])
        >>> scale_weights(0.3, 4, "constant")
        tensor([0.2500, 0.2500, 0.2500, 0.2500])
    """
    num_scales = check_int("num_scales", num_scales, low=1)
    check_choice("kind", kind, SCHEDULE_KINDS)
    progress = check_progress(progress)
    p = _progress_tensor(progress, device, dtype)
    if kind == "constant":
        return torch.full((num_scales,), 1.0 / num_scales, device=p.device, dtype=p.dtype)
    levels = torch.arange(num_scales, device=p.device, dtype=p.dtype)
    coarse, fine = torch.exp2(levels), torch.exp2(-levels)
    t = schedule(p, kind, 0.0, 1.0)
    return (1.0 - t) * coarse / coarse.sum() + t * fine / fine.sum()
