"""Module for the progressive SSI + L1 loss."""

from __future__ import annotations

from typing import Any, Tuple, Union

from torch import Tensor

import depthloss.functional as DF
from depthloss._checks import check_choice
from depthloss.functional.progressive_ssi import check_progressive_weights, progressive_ssi_weights
from depthloss.functional.schedules import SCHEDULE_KINDS, ScheduleKind
from depthloss.nn.enhanced_ssi import SsiL1Loss, _progress_tensor
from depthloss.registry import register_loss

__all__ = ["ProgressiveSSILoss"]


@register_loss("progressive-ssi")
class ProgressiveSSILoss(SsiL1Loss):
    """SSI + L1 on inverse depth with scheduled weights, start -> end (:func:`depthloss.functional.progressive_ssi`).

    Args:
        alpha: SSI mean weight (default 0.85).
        ssi_weight_start: SSI weight at progress 0 (default 0.9).
        ssi_weight_end: SSI weight at progress 1 (default 0.7).
        l1_weight_start: L1 weight at progress 0 (default 0.1).
        l1_weight_end: L1 weight at progress 1 (default 0.3).
        weight_schedule: ``"linear"`` (default), ``"cosine"``, ``"step"`` or ``"constant"``.
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required).

    The two weights are normalized to sum 1 at every progress.

    Example:
        >>> [round(float(w), 4) for w in ProgressiveSSILoss(input_space="inverse").mix_weights(0.5)]
        [0.8, 0.2]
    """

    formula = "normalize(schedule(p, ssi_start, ssi_end), schedule(p, l1_start, l1_end)) . (SSI, L1)"
    when = "Like enhanced-ssi with a configurable curriculum between start and end weights."
    functional = staticmethod(DF.progressive_ssi)

    def __init__(
        self,
        alpha: float = 0.85,
        ssi_weight_start: float = 0.9,
        ssi_weight_end: float = 0.7,
        l1_weight_start: float = 0.1,
        l1_weight_end: float = 0.3,
        weight_schedule: ScheduleKind = "linear",
        **kwargs: Any,
    ) -> None:
        super().__init__(alpha=alpha, **kwargs)
        check_progressive_weights(ssi_weight_start, ssi_weight_end, l1_weight_start, l1_weight_end)
        self.ssi_weight_start, self.ssi_weight_end = float(ssi_weight_start), float(ssi_weight_end)
        self.l1_weight_start, self.l1_weight_end = float(l1_weight_start), float(l1_weight_end)
        self.weight_schedule = check_choice("weight_schedule", weight_schedule, SCHEDULE_KINDS)

    def mix_weights(self, progress: Union[float, Tensor]) -> Tuple[Tensor, Tensor]:
        p = _progress_tensor(progress)
        return progressive_ssi_weights(
            p,
            self.ssi_weight_start,
            self.ssi_weight_end,
            self.l1_weight_start,
            self.l1_weight_end,
            self.weight_schedule,  # type: ignore[arg-type]
        )
