"""SSI plus L1 on inverse depth with weights that follow a schedule from start to end.

The terms are :mod:`enhanced_ssi`'s; only the weights differ.
"""

from __future__ import annotations

from typing import Optional, Tuple

from torch import Tensor

from depthloss._checks import SCOPES, check_choice, check_float, check_pair, check_progress, check_reduction
from depthloss.functional._plumbing import Progress, Reduction, Scope, as_progress, autocast_off, reduce_images
from depthloss.functional.enhanced_ssi import ssi_l1_terms
from depthloss.functional.schedules import SCHEDULE_KINDS, ScheduleKind, schedule

__all__ = ["progressive_ssi", "progressive_ssi_weights"]


def check_progressive_weights(ssi_start: float, ssi_end: float, l1_start: float, l1_end: float) -> None:
    """Non-negative weights whose sum is positive at both ends."""
    for name, value in (
        ("ssi_weight_start", ssi_start),
        ("ssi_weight_end", ssi_end),
        ("l1_weight_start", l1_start),
        ("l1_weight_end", l1_end),
    ):
        check_float(name, value, low=0.0)
    for when, total in (("start", ssi_start + l1_start), ("end", ssi_end + l1_end)):
        if total <= 0:
            raise ValueError(f"ssi_weight_{when} + l1_weight_{when} must be > 0, got {total}")


def progressive_ssi_weights(
    progress: Tensor,
    ssi_weight_start: float = 0.9,
    ssi_weight_end: float = 0.7,
    l1_weight_start: float = 0.1,
    l1_weight_end: float = 0.3,
    weight_schedule: ScheduleKind = "linear",
) -> Tuple[Tensor, Tensor]:
    """``(w_ssi, w_l1)``: each weight scheduled from its start to its end value, normalized to sum 1."""
    w_ssi = schedule(progress, weight_schedule, ssi_weight_start, ssi_weight_end)
    w_l1 = schedule(progress, weight_schedule, l1_weight_start, l1_weight_end)
    total = w_ssi + w_l1
    return w_ssi / total, w_l1 / total


@autocast_off
def progressive_ssi(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    progress: Progress = 0.0,
    alpha: float = 0.85,
    ssi_weight_start: float = 0.9,
    ssi_weight_end: float = 0.7,
    l1_weight_start: float = 0.1,
    l1_weight_end: float = 0.3,
    weight_schedule: ScheduleKind = "linear",
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""SSI plus L1 with weights scheduled between start and end values.

    .. math:: \mathcal L = w_{ssi}(t)\,\text{SSI}(p, g) + w_{l1}(t)\,\text{L1}(p, g), \qquad
              w(t) = \text{schedule}(t, \text{kind}, w_{start}, w_{end})

    the two weights normalized to sum 1 at every progress ``t``.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)``.
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        progress: training progress in ``[0, 1]`` (float or 0-dim tensor).
        alpha: SSI mean weight (default 0.85).
        ssi_weight_start: SSI weight at progress 0 (default 0.9).
        ssi_weight_end: SSI weight at progress 1 (default 0.7).
        l1_weight_start: L1 weight at progress 0 (default 0.1).
        l1_weight_end: L1 weight at progress 1 (default 0.3).
        weight_schedule: ``"linear"`` (default), ``"cosine"``, ``"step"`` or ``"constant"``.
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"``.
        scope: ``"image"`` (default) or ``"batch"``.

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Example:
        >>> target = torch.tensor([[[0.5, 0.25], [1.0, 0.1]]])
        >>> progressive_ssi(target + 0.1, target, progress=1.0)  # 0.7 * 0.0085 + 0.3 * 0.1
        tensor(0.0360)
    """
    check_pair(pred, target)
    check_progress(progress)
    check_float("alpha", alpha, low=0.0)
    check_progressive_weights(ssi_weight_start, ssi_weight_end, l1_weight_start, l1_weight_end)
    check_choice("weight_schedule", weight_schedule, SCHEDULE_KINDS)
    check_reduction(reduction, scope, SCOPES, "progressive-ssi")
    w_ssi, w_l1 = progressive_ssi_weights(
        as_progress(progress, pred), ssi_weight_start, ssi_weight_end, l1_weight_start, l1_weight_end, weight_schedule
    )
    t = ssi_l1_terms(pred, target, mask, alpha, scope)  # the terms of enhanced-ssi; only the weights differ
    return reduce_images(w_ssi * t.ssi + w_l1 * t.l1, t.n_valid, reduction)
