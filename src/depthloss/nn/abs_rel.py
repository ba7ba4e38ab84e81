"""Module for the absolute relative error."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from torch import Tensor

import depthloss.functional as DF
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["AbsRelLoss"]


@register_loss("abs_rel", aliases=("abs-rel",))
class AbsRelLoss(DepthLoss):
    """Absolute relative error |p - g| / g on depth (:func:`depthloss.functional.abs_rel`).

    Takes the :class:`DepthLoss` arguments (``input_space``, required; ``reduction``,
    ``scope``, ``min_depth``, ``max_depth``).
    """

    formula = "mean_valid |z_p - z_g| / z_g  (depth)"
    when = "Directly optimizes the AbsRel metric; divides by the target (the seed divided by the prediction)."
    loss_space = "depth"
    functional = staticmethod(DF.abs_rel)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "depth")
        return DF.abs_rel(p, t, mask, reduction=self.reduction, scope=self.scope), {}
