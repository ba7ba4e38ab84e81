"""Modules for the MiDaS losses: least squares (``midas``) and trimmed MAE (``ssi-trim``)."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from torch import Tensor

import depthloss.functional as DF
from depthloss._checks import check_choice, check_float, check_int
from depthloss.functional._plumbing import reduce_images
from depthloss.functional.image import OPERATORS, DataAndGradient, Operator, reduce_data_and_gradient
from depthloss.functional.midas import midas_terms
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["DataPlusGradientLoss", "MiDaSLoss"]


class DataPlusGradientLoss(DepthLoss):
    """Shared body of the MiDaS losses: ``data + alpha * gradient matching`` on inverse depth (disparity)."""

    loss_space = "inverse"
    invariances = ("scale", "shift")

    def __init__(
        self, alpha: float = 0.5, scales: int = 4, operator: Operator = "diff", data_scale: float = 1.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.alpha = check_float("alpha", alpha, low=0.0)
        self.scales = check_int("scales", scales, low=1)
        self.operator = check_choice("operator", operator, OPERATORS)
        self.data_scale = check_float("data_scale", data_scale, low=0.0, low_inclusive=False)

    def terms(self, pred: Tensor, target: Tensor, mask: Tensor) -> DataAndGradient:
        raise NotImplementedError

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "inverse")
        terms = self.terms(p, t, mask)
        loss = reduce_data_and_gradient(terms, self.alpha, self.reduction)
        metrics = {
            "data": reduce_images(terms.data, terms.n_valid, "mean"),
            "grad": reduce_images(terms.grad, terms.n_valid, "mean"),
        }
        return loss, metrics


@register_loss("midas")
class MiDaSLoss(DataPlusGradientLoss):
    """MiDaS / DPT least-squares scale-and-shift aligned MSE + 0.5 gradient matching (:func:`depthloss.functional.midas`).

    Args:
        alpha: gradient-term weight (default 0.5).
        scales: gradient-matching levels (default 4).
        operator: ``"diff"`` (MiDaS, default) or ``"sobel"``.
        data_scale: factor of the data term (default 1; MiDaS: 0.5).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required; ``reduction`` may be
            ``"pixel-mean"``, MiDaS's "batch-based" reduction).

    ``MiDaSLoss(input_space="inverse", data_scale=0.5, reduction="pixel-mean")`` is the
    authors' published loss.

    Metrics: ``data``, ``grad``, ``loss``.
    """

    formula = "mean (s p + t - g)^2 + 0.5 sum_s grad(s p + t - g), (s, t) least squares per image"
    when = "Relative disparity (MiDaS / DPT training); dense targets."
    functional = staticmethod(DF.midas)

    def terms(self, pred: Tensor, target: Tensor, mask: Tensor) -> DataAndGradient:
        return midas_terms(pred, target, mask, self.scales, self.operator, self.scope, self.data_scale)
