"""Module for the near-field-weighted SSI-SILog loss."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple, Union

from torch import Tensor

import depthloss.functional as DF
from depthloss.functional._common import GLOBAL_SCOPES, reduce_images
from depthloss.functional.grad_clip import clamp_grad
from depthloss.functional.near_field import NearFieldConfig, near_field_terms, near_threshold_at
from depthloss.functional.weighting import near_field_weight_values
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["NearFieldSSISilog"]


@register_loss(
    "near-field-ssi-silog",
    aliases=("ssi-silog-nearfield",),
    summary="SSI-SILog with near-field weights (correct sign), weighted moments, sync-free guard",
    formula="0.7 SSI_w(rho) + 0.3 SILog_u(z), w = near_field_weights(z_g), u = clamp(sqrt w / mean sqrt w)",
    loss_space="inverse+depth",
    uses_progress=True,
    when="Robotics / driving where close obstacles matter most; inverse-depth networks.",
    functional=DF.near_field_ssi_silog,
)
class NearFieldSSISilog(DepthLoss):
    """Near-field-weighted SSI-SILog (:func:`depthloss.functional.near_field_ssi_silog`).

    Fixes the seed's analysis: weights are ``near_weight`` *below* the threshold (the seed's
    tanh formula weighted far pixels), SSI uses weighted moments (no batch-dependent
    normalization), the SILog weighting is the seed's issue-3 form, the non-finite guard
    is a ``torch.where`` (no sync), and ``grad_clip`` clamps the per-pixel gradient of
    the prediction (the seed's hook on the scalar loss clamped nothing).

    Not implemented, on purpose: standardizing residuals before weighting (seed issue 8)
    makes the loss blind to error magnitude; BatchNorm momentum (issue 6-1) is the model's
    business.

    Args:
        **kwargs: the fields of :class:`~depthloss.functional.NearFieldConfig` and
            :class:`DepthLoss` arguments (``input_space``, ``reduction``, ``scope``,
            ``min_depth``, ``max_depth``).

    ``forward(pred, target, mask=None, progress=None, weights=None)``: ``weights`` replaces
    the near-field weights (e.g. computed once at full resolution, see
    :meth:`full_resolution_weights`).

    Metrics: ``total``, ``ssi``, ``silog``, ``baseline``, ``total_over_baseline``,
    ``near_ratio``, ``near_mae``, ``far_mae`` (metres), ``threshold_t``, ``loss``. They cost
    full-resolution passes, so :attr:`metrics` is a :class:`~depthloss.nn.base.LazyMetrics`
    that computes them (from detached references to this call's inputs) the first time it is read.
    """

    config_class = NearFieldConfig
    loss_space = "inverse"
    scopes = GLOBAL_SCOPES
    uses_progress = True

    def __init__(self, *, min_depth: Optional[float] = None, max_depth: Optional[float] = None, **kwargs: Any) -> None:
        base_keys = ("input_space", "reduction", "scope")
        base = {k: kwargs.pop(k) for k in base_keys if k in kwargs}
        super().__init__(min_depth=min_depth, max_depth=max_depth, **base)
        self.config = NearFieldConfig(min_depth=min_depth, max_depth=max_depth, **kwargs)
        # grad_clip bounds the gradient reaching ``pred`` as given (in ``input_space``), so the
        # module clamps it itself; the kernel would clamp the inverse-depth gradient instead.
        self._kernel_config = dataclasses.replace(self.config, grad_clip=None)

    def forward(  # type: ignore[override]
        self,
        pred: Tensor,
        target: Tensor,
        mask: Optional[Tensor] = None,
        progress: Union[None, float, Tensor] = None,
        weights: Optional[Tensor] = None,
    ) -> Tensor:
        """As :meth:`DepthLoss.forward`, plus optional explicit per-pixel ``weights``."""
        return self._run(pred, target, mask, progress, weights=weights)

    def full_resolution_weights(self, target: Tensor, progress: Union[None, float, Tensor] = None) -> Tensor:
        """Near-field weights of a full-resolution target (in ``input_space``), for every scale.

        The seed's issue 10: computing weights separately at each scale changes their mean
        from scale to scale; compute them once here and pool them with the target.
        """
        p = self._resolve_progress(progress, target)
        depth = self.to_space(target, "depth")
        threshold = near_threshold_at(p, self.config)
        c = self.config
        return near_field_weight_values(depth, threshold, c.near_weight, c.transition, c.weight_mode)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Union[float, Tensor], **extra: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        if self.config.grad_clip is not None:
            pred = clamp_grad(pred, self.config.grad_clip)
        p, t = self.pair_in(pred, target, "inverse")
        terms = near_field_terms(p, t, mask, progress, extra.get("weights"), self._kernel_config, self.scope)
        return reduce_images(terms.value, terms.count, self.reduction), terms.metrics

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self.config}"
