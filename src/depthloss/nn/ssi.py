"""Module for the seed's SSI loss."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from torch import Tensor

import depthloss.functional as DF
from depthloss._checks import GLOBAL_SCOPES, check_float
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["SSILoss"]


@register_loss("ssi")
class SSILoss(DepthLoss):
    """Seed SSI on inverse depth: var(d) + alpha mean(d)^2 (:func:`depthloss.functional.ssi`).

    Args:
        alpha: weight of the squared mean (default 0.85; 0 makes it shift-invariant).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required).
    """

    formula = "var(d) + alpha * mean(d)^2, d = rho_p - rho_g (inverse depth)"
    when = "Relative inverse depth where a global offset matters little (alpha < 1 discounts it)."
    loss_space = "inverse"
    scopes = GLOBAL_SCOPES
    functional = staticmethod(DF.ssi)

    def __init__(self, alpha: float = 0.85, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = check_float("alpha", alpha, low=0.0)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "inverse")
        return DF.ssi(p, t, mask, self.alpha, reduction=self.reduction, scope=self.scope), {}
