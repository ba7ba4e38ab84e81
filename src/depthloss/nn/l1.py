"""Module for the masked L1 loss."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from torch import Tensor

import depthloss.functional as DF
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["L1Loss"]


@register_loss("l1")
class L1Loss(DepthLoss):
    """Masked mean absolute error per image (:func:`depthloss.functional.l1`).

    Computed on the maps as given (``input_space`` only says what they hold). Takes the
    :class:`DepthLoss` arguments (``input_space``, required; ``reduction``, ``scope``).

    Example:
        >>> loss = L1Loss(input_space="depth")
        >>> loss(torch.tensor([[[1.0, 2.0]]]), torch.tensor([[[2.0, 0.0]]]))  # 0 = no return
        tensor(1.)
    """

    formula = "mean_valid |p - g|"
    when = "Metric supervision on whatever the network predicts; robust to outliers."
    functional = staticmethod(DF.l1)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        return DF.l1(pred, target, mask, reduction=self.reduction, scope=self.scope), {}
