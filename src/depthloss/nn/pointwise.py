"""Modules for the masked per-pixel losses: L1, MSE, berHu, AbsRel."""

from __future__ import annotations

from typing import Any, Dict, Tuple, Union

from torch import Tensor

import depthloss.functional as DF
from depthloss.functional._checks import check_float
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["AbsRelLoss", "BerHuLoss", "L1Loss", "MSELoss"]


class _PointwiseLoss(DepthLoss):
    """A module that moves both maps to ``loss_space`` and calls one pointwise kernel."""

    def _kernel(self, pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        raise NotImplementedError

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Union[float, Tensor], **extra: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, self.loss_space)
        return self._kernel(p, t, mask), {}


@register_loss(
    "l1",
    summary="Masked mean absolute error per image",
    formula="mean_valid |p - g|",
    loss_space="input",
    when="Metric supervision on whatever the network predicts; robust to outliers.",
    functional=DF.l1,
)
class L1Loss(_PointwiseLoss):
    """Masked L1 on the maps as given (:func:`depthloss.functional.l1`).

    Example:
        >>> loss = L1Loss(input_space="depth")
        >>> loss(torch.tensor([[[1.0, 2.0]]]), torch.tensor([[[2.0, 0.0]]]))  # 0 = no return
        tensor(1.)
    """

    def _kernel(self, pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        return DF.l1(pred, target, mask, reduction=self.reduction, scope=self.scope)


@register_loss(
    "mse",
    summary="Masked mean squared error per image",
    formula="mean_valid (p - g)^2",
    loss_space="input",
    when="Metric supervision with Gaussian noise; sensitive to outliers.",
    functional=DF.mse,
)
class MSELoss(_PointwiseLoss):
    """Masked MSE on the maps as given (:func:`depthloss.functional.mse`)."""

    def _kernel(self, pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        return DF.mse(pred, target, mask, reduction=self.reduction, scope=self.scope)


@register_loss(
    "berhu",
    summary="Reverse Huber (Laina et al.), c = 0.2 max|d| per image",
    formula="|d| if |d| <= c else (d^2 + c^2) / 2c, c = 0.2 max_valid |d| (detached)",
    loss_space="input",
    when="Metric depth with a heavy-tailed error distribution (Laina et al. 2016).",
    functional=DF.berhu,
)
class BerHuLoss(_PointwiseLoss):
    """Reverse Huber loss (:func:`depthloss.functional.berhu`).

    Args:
        threshold: ``c = threshold * max|d|`` per image (default 0.2).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, ``reduction``, ``scope``,
            ``min_depth``, ``max_depth``).
    """

    def __init__(self, threshold: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.threshold = check_float("threshold", threshold, low=0.0, low_inclusive=False)

    def _kernel(self, pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        return DF.berhu(pred, target, mask, threshold=self.threshold, reduction=self.reduction, scope=self.scope)


@register_loss(
    "abs_rel",
    aliases=("abs-rel",),
    summary="Absolute relative error |p - g| / g on depth",
    formula="mean_valid |z_p - z_g| / z_g  (depth)",
    loss_space="depth",
    when="Directly optimizes the AbsRel metric; divides by the target (the seed divided by the prediction).",
    functional=DF.abs_rel,
)
class AbsRelLoss(_PointwiseLoss):
    """Absolute relative error on depth (:func:`depthloss.functional.abs_rel`)."""

    loss_space = "depth"

    def _kernel(self, pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        return DF.abs_rel(pred, target, mask, reduction=self.reduction, scope=self.scope)
