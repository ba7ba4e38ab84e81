"""Progress schedules: hyper-parameters that move as training advances."""

from __future__ import annotations

import math
from typing import Literal, Optional, Union

import torch
from torch import Tensor

from depthloss.functional._checks import check_choice, check_float, check_int, check_progress

__all__ = ["scale_weights", "schedule"]

ScheduleKind = Literal["constant", "linear", "cosine", "step"]
SCHEDULE_KINDS = ("constant", "linear", "cosine", "step")

Progress = Union[float, Tensor]


def schedule(
    progress: Progress,
    kind: ScheduleKind = "linear",
    start: float = 1.0,
    end: float = 0.0,
    milestone: float = 0.5,
) -> Progress:
    r"""Interpolate from ``start`` (progress 0) to ``end`` (progress 1).

    ``progress`` is clamped to ``[0, 1]``:

    - ``"constant"``: ``start``
    - ``"linear"``: :math:`s + (e - s)\,p`
    - ``"cosine"``: :math:`e + (s - e)\,\tfrac{1}{2}(1 + \cos \pi p)`
    - ``"step"``: ``start`` before ``milestone``, ``end`` from it on

    Args:
        progress: training progress, a float or a 0-dim tensor (keeps ``torch.compile``
            from recompiling when it changes).
        kind: the schedule (default ``"linear"``).
        start: value at progress 0.
        end: value at progress 1.
        milestone: switch point of ``"step"``, in ``[0, 1]``.

    Returns:
        A float for float progress, else a 0-dim tensor on progress's device.

    Example:
        >>> schedule(0.25, "linear", 1.0, 0.0)
        0.75
        >>> schedule(torch.tensor(0.5), "cosine", 1.0, 0.0)
        tensor(0.5000)
    """
    progress = check_progress(progress)
    check_choice("kind", kind, SCHEDULE_KINDS)
    start = check_float("start", start)
    end = check_float("end", end)
    check_float("milestone", milestone, low=0.0, high=1.0)
    if isinstance(progress, Tensor):
        p = progress.clamp(0.0, 1.0)
        if kind == "constant":
            return torch.full_like(p, start)
        if kind == "linear":
            return _towards(p, start, end)
        if kind == "cosine":
            return _towards(0.5 * (1.0 - torch.cos(math.pi * p)), start, end)
        return torch.where(p < milestone, torch.full_like(p, start), torch.full_like(p, end))
    p = min(max(progress, 0.0), 1.0)
    if kind == "constant":
        return start
    if kind == "linear":
        return _towards(p, start, end)
    if kind == "cosine":
        return _towards(0.5 * (1.0 - math.cos(math.pi * p)), start, end)
    return start if p < milestone else end


def _towards(frac: Progress, start: float, end: float) -> Progress:
    """``start + (end - start) * frac`` for ``frac`` in [0, 1], exactly ``start`` at 0 and ``end`` at 1.

    The plain formula is exact at 0 and monotone in ``frac`` but can miss (and overshoot)
    ``end`` at 1 by an ulp; clamping into the interval and pinning ``frac = 1`` keeps it
    monotone with exact end points.
    """
    value = start + (end - start) * frac
    lo, hi = min(start, end), max(start, end)
    if isinstance(frac, Tensor):
        return torch.where(frac >= 1.0, torch.full_like(value, end), value.clamp(lo, hi))
    return end if frac >= 1.0 else min(max(value, lo), hi)


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
    check_int("num_scales", num_scales, low=1)
    check_choice("kind", kind, SCHEDULE_KINDS)
    progress = check_progress(progress)
    if isinstance(progress, Tensor):
        device, dtype = progress.device, dtype or progress.dtype
    dtype = dtype or torch.float32
    if kind == "constant":
        return torch.full((num_scales,), 1.0 / num_scales, device=device, dtype=dtype)
    levels = torch.arange(num_scales, device=device, dtype=dtype)
    coarse = torch.exp2(levels)
    fine = torch.exp2(-levels)
    coarse = coarse / coarse.sum()
    fine = fine / fine.sum()
    t = schedule(progress, kind, 0.0, 1.0)
    return (1.0 - t) * coarse + t * fine
