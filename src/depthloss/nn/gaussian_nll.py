"""Modules for the Gaussian and Laplace negative log-likelihoods with a predicted log-scale."""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Dict, Optional, Tuple, Union

from torch import Tensor

import depthloss.functional as DF
from depthloss._checks import check_choice, check_like
from depthloss.functional.gaussian_nll import LOG_SCALE_RANGE, Residual, check_nll_args
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["GaussianNLLLoss", "NLLBase"]


class NLLBase(DepthLoss):
    """Shared wrapper of the likelihood losses: ``forward(..., log_scale=...)`` is required."""

    loss_space = "depth"
    inputs = ("log_scale",)
    kernel: ClassVar[Callable[..., Tensor]]

    def __init__(
        self,
        residual: Residual = "log",
        full: bool = False,
        log_scale_range: Tuple[float, float] = LOG_SCALE_RANGE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_choice("residual", residual, ("log", "linear"))
        check_nll_args(residual, log_scale_range)
        self.residual: Residual = residual
        self.full = bool(full)
        self.log_scale_range = (float(log_scale_range[0]), float(log_scale_range[1]))

    def forward(  # type: ignore[override]
        self,
        pred: Tensor,
        target: Tensor,
        mask: Optional[Tensor] = None,
        progress: Union[float, Tensor, None] = None,
        *,
        log_scale: Tensor,
    ) -> Tensor:
        """As :meth:`DepthLoss.forward`, plus the required predicted ``log_scale`` (pred's shape)."""
        return self._run(pred, target, mask, progress, log_scale=log_scale)

    def validate(
        self, pred: Tensor, target: Tensor, mask: Optional[Tensor] = None, progress: Any = None, **inputs: Any
    ) -> None:
        super().validate(pred, target, mask, progress, **inputs)
        if inputs.get("log_scale") is None:
            raise TypeError(
                f"{type(self).__name__}.forward needs the input log_scale: the predicted per-pixel log-scale, "
                f"a floating tensor of pred's shape {tuple(pred.shape)}"
            )
        check_like("log_scale", inputs["log_scale"], "pred", pred)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "depth")
        loss = type(self).kernel(
            p, t, inputs["log_scale"], mask, self.residual, self.full, self.log_scale_range,
            reduction=self.reduction, scope=self.scope,
        )  # fmt: skip
        return loss, {}


@register_loss("gaussian-nll")
class GaussianNLLLoss(NLLBase):
    """Gaussian NLL with a predicted per-pixel log sigma, on log-depth residuals by default (:func:`depthloss.functional.gaussian_nll`).

    Args:
        residual: ``"log"`` (default: ``log z_p - log z_g``, σ relative) or ``"linear"`` (metres).
        full: add the constant ``½ log 2π``.
        log_scale_range: straight-through clamp of ``log_scale`` (default ``(-20, 20)``).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required).

    ``forward(pred, target, mask=None, progress=None, *, log_scale)``: ``log_scale`` is required.
    """

    formula = "mean(0.5 (r e^-s)^2 + s), r = log z_p - log z_g (or z_p - z_g), s = log sigma"
    when = "Metric depth with an aleatoric-uncertainty head predicting log sigma per pixel (squared errors)."
    kernel = staticmethod(DF.gaussian_nll)
    functional = staticmethod(DF.gaussian_nll)
