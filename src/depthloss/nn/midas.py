"""Modules for the MiDaS losses: trimmed MAE (``ssi-trim``) and least squares (``midas``)."""

from __future__ import annotations

from typing import Any, Dict, Tuple, Union

from torch import Tensor

import depthloss.functional as DF
from depthloss.functional._checks import check_choice, check_float, check_int
from depthloss.functional._common import reduce_images
from depthloss.functional.gradients import OPERATORS, Operator
from depthloss.functional.midas import DataAndGradient, midas_terms, ssi_trim_terms
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["MiDaSLoss", "SSITrimLoss"]


class _DataPlusGradient(DepthLoss):
    """``data + alpha * gradient matching`` on inverse depth (disparity), MiDaS-style."""

    loss_space = "inverse"

    def __init__(self, alpha: float = 0.5, scales: int = 4, operator: Operator = "diff", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = check_float("alpha", alpha, low=0.0)
        self.scales = check_int("scales", scales, low=1)
        self.operator = check_choice("operator", operator, OPERATORS)

    def terms(self, pred: Tensor, target: Tensor, mask: Tensor) -> DataAndGradient:
        raise NotImplementedError

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Union[float, Tensor], **extra: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "inverse")
        terms = self.terms(p, t, mask)
        loss = reduce_images(terms.data + self.alpha * terms.grad, terms.count, self.reduction)
        metrics = {
            "data": reduce_images(terms.data, terms.count, "mean"),
            "grad": reduce_images(terms.grad, terms.count, "mean"),
        }
        return loss, metrics


@register_loss(
    "ssi-trim",
    summary="MiDaS trimmed MAE of median/MAD-normalized disparity + 0.5 gradient matching",
    formula="mean of smallest 80% |p^ - g^| + 0.5 sum_s grad(p^ - g^), x^ = (x - med) / mean|x - med|",
    loss_space="inverse",
    invariances=("scale", "shift"),
    when="Relative depth from mixed datasets with outliers (MiDaS 'ssitrim').",
    functional=DF.ssi_trim,
)
class SSITrimLoss(_DataPlusGradient):
    """MiDaS's trimmed loss (:func:`depthloss.functional.ssi_trim`).

    Args:
        trim: fraction of the largest residuals dropped per image (default 0.2).
        alpha: gradient-term weight (default 0.5).
        scales: gradient-matching levels (default 4).
        operator: ``"diff"`` (MiDaS, default) or ``"sobel"``.
        eps: lower bound on MAD scales (default 1e-6).
        **kwargs: :class:`DepthLoss` arguments.
    """

    def __init__(
        self,
        trim: float = 0.2,
        alpha: float = 0.5,
        scales: int = 4,
        operator: Operator = "diff",
        eps: float = 1e-6,
        **kwargs: Any,
    ) -> None:
        super().__init__(alpha=alpha, scales=scales, operator=operator, **kwargs)
        self.trim = check_float("trim", trim, low=0.0, high=1.0, high_inclusive=False)
        self.eps = check_float("eps", eps, low=0.0, low_inclusive=False)

    def terms(self, pred: Tensor, target: Tensor, mask: Tensor) -> DataAndGradient:
        return ssi_trim_terms(pred, target, mask, self.trim, self.scales, self.operator, self.eps, self.scope)


@register_loss(
    "midas",
    summary="MiDaS / DPT least-squares scale-and-shift aligned MSE + 0.5 gradient matching",
    formula="mean (s p + t - g)^2 + 0.5 sum_s grad(s p + t - g), (s, t) least squares per image",
    loss_space="inverse",
    invariances=("scale", "shift"),
    when="Relative disparity (MiDaS / DPT training); dense targets.",
    functional=DF.midas,
)
class MiDaSLoss(_DataPlusGradient):
    """MiDaS's scale-and-shift-invariant loss (:func:`depthloss.functional.midas`).

    Args:
        alpha: gradient-term weight (default 0.5).
        scales: gradient-matching levels (default 4).
        operator: ``"diff"`` (MiDaS, default) or ``"sobel"``.
        **kwargs: :class:`DepthLoss` arguments.
    """

    def terms(self, pred: Tensor, target: Tensor, mask: Tensor) -> DataAndGradient:
        return midas_terms(pred, target, mask, self.scales, self.operator, self.scope)
