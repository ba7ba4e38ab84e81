"""Module for the masked MSE loss."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from torch import Tensor

import depthloss.functional as DF
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["MSELoss"]


@register_loss("mse")
class MSELoss(DepthLoss):
    """Masked mean squared error per image (:func:`depthloss.functional.mse`).

    Computed on the maps as given (``input_space`` only says what they hold). Takes the
    :class:`DepthLoss` arguments (``input_space``, required; ``reduction``, ``scope``).

    Example:
        >>> loss = MSELoss(input_space="depth")
        >>> loss(torch.tensor([[[1.0, 2.0]]]), torch.tensor([[[2.0, 0.0]]]))  # 0 = no return
        tensor(1.)
    """

    formula = "mean_valid (p - g)^2"
    when = "Metric supervision with Gaussian noise; sensitive to outliers."
    functional = staticmethod(DF.mse)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        return DF.mse(pred, target, mask, reduction=self.reduction, scope=self.scope), {}
