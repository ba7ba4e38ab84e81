"""Module for the confidence (uncertainty-head) loss."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Union

from torch import Tensor

import depthloss.functional as DF
from depthloss._checks import check_choice, check_like
from depthloss.functional.confidence import ConfidenceForm, ConfidenceOutput
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["ConfidenceLoss"]


@register_loss("confidence")
class ConfidenceLoss(DepthLoss):
    """Confidence head regresses the detached error of the depth prediction, Metric3D v2 / UniDepth (:func:`depthloss.functional.confidence_loss`).

    Args:
        form: ``"metric3d"`` (default: ``c ≈ 1 - |z_p - z_g| / z_g``) or ``"unidepth"``
            (``u ≈ |λ z_p - z_g|``, median-rescaled).
        detach_pred: train only the confidence head (default ``True``; ``False``: the authors' code).
        rescale: ``"unidepth"``: median-rescale the prediction first (default ``True``).
        output: ``"linear"``/``"sqrt"`` (default: the authors' choice for the form).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required).

    ``forward(pred, target, mask=None, progress=None, *, confidence)``: ``confidence`` is required.
    """

    formula = "mean_K |c - (1 - |z_p - z_g| / z_g)|, K = {|z_p - z_g| < z_g}; z_p detached"
    when = "Training a per-pixel confidence head next to metric depth (Metric3D v2, UniDepth)."
    loss_space = "depth"
    inputs = ("confidence",)
    functional = staticmethod(DF.confidence_loss)

    def __init__(
        self,
        form: ConfidenceForm = "metric3d",
        detach_pred: bool = True,
        rescale: bool = True,
        output: Optional[ConfidenceOutput] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_choice("form", form, ("metric3d", "unidepth"))
        self.form: ConfidenceForm = form
        if output is not None:
            check_choice("output", output, ("linear", "sqrt"))
        self.detach_pred = bool(detach_pred)
        self.rescale = bool(rescale)
        self.output: Optional[ConfidenceOutput] = output

    def forward(  # type: ignore[override]
        self,
        pred: Tensor,
        target: Tensor,
        mask: Optional[Tensor] = None,
        progress: Union[float, Tensor, None] = None,
        *,
        confidence: Tensor,
    ) -> Tensor:
        """As :meth:`DepthLoss.forward`, plus the required predicted ``confidence`` (pred's shape)."""
        return self._run(pred, target, mask, progress, confidence=confidence)

    def validate(
        self, pred: Tensor, target: Tensor, mask: Optional[Tensor] = None, progress: Any = None, **inputs: Any
    ) -> None:
        super().validate(pred, target, mask, progress, **inputs)
        if inputs.get("confidence") is None:
            raise TypeError(
                f"{type(self).__name__}.forward needs the input confidence: the predicted per-pixel confidence, "
                f"a floating tensor of pred's shape {tuple(pred.shape)}"
            )
        check_like("confidence", inputs["confidence"], "pred", pred)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "depth")
        loss = DF.confidence_loss(
            p, t, inputs["confidence"], mask, self.form, self.detach_pred, self.rescale, self.output,
            reduction=self.reduction, scope=self.scope,
        )  # fmt: skip
        return loss, {}
