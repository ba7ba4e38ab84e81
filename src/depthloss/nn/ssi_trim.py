"""Module for MiDaS's trimmed loss (``ssi-trim``)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

import depthloss.functional as DF
from depthloss.functional.image import DataAndGradient, Operator
from depthloss.functional.ssi_mae import MedianOver, TrimDenominator, TrimRounding, TrimScope, check_trim_args
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
        data_scale, trim_denominator, trim_scope, trim_rounding, median_over: the options of
            :func:`~depthloss.functional.ssi_mae` that reproduce the MiDaS paper and code
            (defaults: depthloss's per-image trimmed mean).
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
        data_scale: float = 1.0,
        trim_denominator: TrimDenominator = "kept",
        trim_scope: TrimScope = "image",
        trim_rounding: TrimRounding = "ceil",
        median_over: MedianOver = "valid",
        **kwargs: Any,
    ) -> None:
        super().__init__(alpha=alpha, scales=scales, operator=operator, data_scale=data_scale, **kwargs)
        check_trim_args(trim, eps, data_scale, trim_denominator, trim_scope, trim_rounding, median_over)
        self.trim, self.eps = float(trim), float(eps)
        self.trim_denominator, self.trim_scope = trim_denominator, trim_scope
        self.trim_rounding, self.median_over = trim_rounding, median_over

    def terms(self, pred: Tensor, target: Tensor, mask: Tensor) -> DataAndGradient:
        return ssi_trim_terms(
            pred, target, mask, self.trim, self.scales, self.operator, self.eps, self.scope, self.data_scale,
            self.trim_denominator, self.trim_scope, self.trim_rounding, self.median_over,
        )  # fmt: skip
