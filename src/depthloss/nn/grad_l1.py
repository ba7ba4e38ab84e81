"""Module for ZoeDepth's gradient L1 loss (``grad-l1``)."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from torch import Tensor

import depthloss.functional as DF
from depthloss.functional.derivatives import AngleMode, check_angle
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["GradL1Loss"]


@register_loss("grad-l1")
class GradL1Loss(DepthLoss):
    """ZoeDepth's L1 on the squared magnitude and the angle of forward-difference depth gradients (:func:`depthloss.functional.grad_l1`).

    Args:
        angle: ``"atan2"`` (default, the full direction) or ``"atan"`` (ZoeDepth's
            ``atan(dy / (dx + 1e-10))``).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required; ``reduction="pixel-mean"``
            is ZoeDepth's batch-pooled mean).

    ``GradL1Loss(input_space="depth", angle="atan", reduction="pixel-mean")`` is ZoeDepth's loss.
    """

    formula = "mean_S |m_p - m_g| + mean_S |theta_p - theta_g|, m = dx^2 + dy^2, theta = atan2(dy, dx), forward diffs"
    when = "An auxiliary edge term for metric depth (ZoeDepth's GradL1); dense targets."
    loss_space = "depth"
    functional = staticmethod(DF.grad_l1)

    def __init__(self, angle: AngleMode = "atan2", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_angle(angle)
        self.angle = angle

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "depth")
        return DF.grad_l1(p, t, mask, self.angle, reduction=self.reduction, scope=self.scope), {}
