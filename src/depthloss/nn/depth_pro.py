"""Module for Depth Pro's objective (``depth-pro``)."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from torch import Tensor

import depthloss.functional as DF
from depthloss.functional.depth_pro import check_depth_pro_args
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["DepthProLoss"]


@register_loss("depth-pro")
class DepthProLoss(DepthLoss):
    """Depth Pro's per-image trimmed MAE on inverse depth + MAGE + MALE + MSGE (:func:`depthloss.functional.depth_pro`).

    Args:
        mae_weight: weight of the trimmed MAE (default 1).
        mage_weight, male_weight, msge_weight: weights of the derivative losses (default 1
            each; 0 drops a term).
        trim: fraction of the largest errors discarded per image (default 0.2, the paper's for
            real-world data; 0 for synthetic data).
        num_scales: pyramid levels of the derivative losses (default 6).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required).

    Metrics: ``loss``.
    """

    formula = "w_mae mean of smallest 80% |p - g| + w_mage MAGE + w_male MALE + w_msge MSGE, on inverse depth"
    when = "Sharp metric inverse depth (Depth Pro): trimmed MAE for noisy real data, derivative terms on synthetic."
    loss_space = "inverse"
    functional = staticmethod(DF.depth_pro)

    def __init__(
        self,
        mae_weight: float = 1.0,
        mage_weight: float = 1.0,
        male_weight: float = 1.0,
        msge_weight: float = 1.0,
        trim: float = 0.2,
        num_scales: int = 6,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_depth_pro_args(mae_weight, mage_weight, male_weight, msge_weight, trim, num_scales)
        self.mae_weight, self.mage_weight = float(mae_weight), float(mage_weight)
        self.male_weight, self.msge_weight = float(male_weight), float(msge_weight)
        self.trim, self.num_scales = float(trim), int(num_scales)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "inverse")
        loss = DF.depth_pro(
            p, t, mask, self.mae_weight, self.mage_weight, self.male_weight, self.msge_weight, self.trim,
            self.num_scales, reduction=self.reduction, scope=self.scope,
        )  # fmt: skip
        return loss, {}
