"""Module for hierarchical depth normalization (``hdn``)."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from torch import Tensor

import depthloss.functional as DF
from depthloss._checks import check_int
from depthloss.functional.hdn import Bins, Grouping, check_hdn_args
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["HDNLoss"]


@register_loss("hdn")
class HDNLoss(DepthLoss):
    """Hierarchical depth normalization: SSI MAE within depth bins and windows, on depth (:func:`depthloss.functional.hdn`).

    Args:
        grouping: ``"depth"`` (HDN-DR), ``"spatial"`` (HDN-S) or ``"both"`` (default).
        levels: hierarchy levels (default 3: 1 + 2 + 4 depth bins, 1 + 4 + 16 windows).
        bins: ``"quantile"`` (default, equal-count bins) or ``"range"`` (Metric3D's equal-width ranges).
        min_pixels: smallest context that counts (default 1).
        eps: floor of every context's MAD relative to the image's MAD (default 1e-6).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required).
    """

    formula = "mean over contexts c, pixels u in c of |p^c_u - g^c_u|, x^c = (x - med_c) / mean_c|x - med_c|"
    when = "Mixed-dataset relative or metric depth where image-level SSI washes out near detail (Metric3D v2)."
    loss_space = "depth"
    invariances = ("scale", "shift")
    functional = staticmethod(DF.hdn)

    def __init__(
        self,
        grouping: Grouping = "both",
        levels: int = 3,
        bins: Bins = "quantile",
        min_pixels: int = 1,
        eps: float = 1e-6,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_hdn_args(grouping, bins, min_pixels, eps)
        self.levels = check_int("levels", levels, low=1)
        self.grouping, self.bins, self.min_pixels, self.eps = grouping, bins, int(min_pixels), float(eps)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "depth")
        loss = DF.hdn(
            p, t, mask, self.grouping, self.levels, self.bins, self.min_pixels, self.eps,
            reduction=self.reduction, scope=self.scope,
        )  # fmt: skip
        return loss, {}
