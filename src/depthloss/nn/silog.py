"""Module for the scale-invariant log loss."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from torch import Tensor

import depthloss.functional as DF
from depthloss._checks import GLOBAL_SCOPES, check_float
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["SILogLoss"]


@register_loss("silog")
class SILogLoss(DepthLoss):
    """Scale-invariant log loss on depth, BTS / packnet-sfm constants 10 and 0.85 (:func:`depthloss.functional.silog`).

    Args:
        lambd: variance weight in [0, 1] (default 0.85).
        ratio: output scale (default 10).
        eps: added inside the square root (default 1e-8).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required).

    Example:
        >>> loss = SILogLoss(lambd=1.0, eps=0.0, input_space="depth")
        >>> target = torch.tensor([[[1.0, 2.0], [4.0, 0.0]]])
        >>> loss(3.0 * target, target)  # global scale is free with lambd = 1
        tensor(0.)
    """

    formula = "ratio * sqrt(E[g^2] - lambd E[g]^2 + eps), g = log z_p - log z_g"
    when = "Metric depth (KITTI/NYU protocols); lambd=1 makes it invariant to a global scale."
    loss_space = "depth"
    scopes = GLOBAL_SCOPES
    functional = staticmethod(DF.silog)

    def __init__(self, lambd: float = 0.85, ratio: float = 10.0, eps: float = 1e-8, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lambd = check_float("lambd", lambd, low=0.0, high=1.0)
        self.ratio = check_float("ratio", ratio, low=0.0, low_inclusive=False)
        self.eps = check_float("eps", eps, low=0.0)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "depth")
        return DF.silog(
            p, t, mask, self.lambd, self.ratio, eps=self.eps, reduction=self.reduction, scope=self.scope
        ), {}
