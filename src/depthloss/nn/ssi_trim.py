"""Module for MiDaS's trimmed loss (``ssi-trim``)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

import depthloss.functional as DF
from depthloss._checks import check_float
from depthloss.functional.image import DataAndGradient, Operator
from depthloss.functional.ssi_trim import ssi_trim_terms
from depthloss.nn.midas import DataPlusGradientLoss
from depthloss.registry import register_loss

__all__ = ["SSITrimLoss"]


@register_loss("ssi-trim")
class SSITrimLoss(DataPlusGradientLoss):
    """MiDaS trimmed MAE of median/MAD-normalized disparity + 0.5 gradient matching (:func:`depthloss.functional.ssi_trim`).

    Args:
        trim: fraction of the largest residuals dropped per image (default 0.2).
        alpha: gradient-term weight (default 0.5).
        scales: gradient-matching levels (default 4).
        operator: ``"diff"`` (MiDaS, default) or ``"sobel"``.
        eps: lower bound on MAD scales (default 1e-6).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required).

    Metrics: ``data``, ``grad``, ``loss``.
    """

    formula = "mean of smallest 80% |p^ - g^| + 0.5 sum_s grad(p^ - g^), x^ = (x - med) / mean|x - med|"
    when = "Relative depth from mixed datasets with outliers (MiDaS 'ssitrim')."
    functional = staticmethod(DF.ssi_trim)

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
