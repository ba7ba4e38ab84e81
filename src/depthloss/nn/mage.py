"""Module for Depth Pro's mean absolute gradient error (``mage``)."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from torch import Tensor

import depthloss.functional as DF
from depthloss.functional.derivatives import check_derivative_args
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["MAGELoss"]


@register_loss("mage")
class MAGELoss(DepthLoss):
    """Depth Pro's mean absolute gradient error on inverse depth over M pyramid levels (:func:`depthloss.functional.mage`).

    Args:
        num_scales: pyramid levels (default 6, the paper's); each level is the 2x2 mean of the
            valid pixels of the previous one.
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required).
    """

    formula = "1/M sum_j mean_valid |Scharr_x(r_j)| + |Scharr_y(r_j)|, r = p - g on a 2x masked-mean pyramid"
    when = "Sharp depth boundaries on dense (synthetic) ground truth; Depth Pro's first-derivative term."
    loss_space = "inverse"
    invariances = ("shift",)
    functional = staticmethod(DF.mage)

    def __init__(self, num_scales: int = 6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_derivative_args(num_scales)
        self.num_scales = int(num_scales)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "inverse")
        return DF.mage(p, t, mask, self.num_scales, reduction=self.reduction, scope=self.scope), {}
