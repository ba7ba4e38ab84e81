"""Module for the reverse Huber (berHu) loss."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from torch import Tensor

import depthloss.functional as DF
from depthloss._checks import check_float
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["BerHuLoss"]


@register_loss("berhu")
class BerHuLoss(DepthLoss):
    """Reverse Huber (Laina et al.), c = 0.2 max|d| per image (:func:`depthloss.functional.berhu`).

    Computed on the maps as given.

    Args:
        threshold: ``c = threshold * max|d|`` per image (default 0.2).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required; ``reduction``, ``scope``).
    """

    formula = "|d| if |d| <= c else (d^2 + c^2) / 2c, c = 0.2 max_valid |d| (detached)"
    when = "Metric depth with a heavy-tailed error distribution (Laina et al. 2016)."
    functional = staticmethod(DF.berhu)

    def __init__(self, threshold: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.threshold = check_float("threshold", threshold, low=0.0, low_inclusive=False)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        return DF.berhu(pred, target, mask, threshold=self.threshold, reduction=self.reduction, scope=self.scope), {}
