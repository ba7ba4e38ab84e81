"""Module for the seed's EnhancedSSILoss."""

from __future__ import annotations

from typing import Any, Dict, Tuple, Union

import torch
from torch import Tensor

import depthloss.functional as DF
from depthloss._checks import check_float
from depthloss.functional._plumbing import reduce_images
from depthloss.functional.enhanced_ssi import enhanced_ssi_weights, ssi_l1_terms
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["EnhancedSSILoss"]


def _progress_tensor(progress: Union[float, Tensor]) -> Tensor:
    """Progress as a 0-dim tensor clamped to [0, 1] (a tensor keeps its device and dtype)."""
    p = progress if isinstance(progress, Tensor) else torch.full((), float(progress))
    return p.clamp(0.0, 1.0)


class SsiL1Loss(DepthLoss):
    """Shared body of ``enhanced-ssi`` and ``progressive-ssi``: ``w_ssi * SSI + w_l1 * L1`` on inverse depth."""

    loss_space = "inverse"
    uses_progress = True

    def __init__(self, alpha: float = 0.85, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = check_float("alpha", alpha, low=0.0)

    def mix_weights(self, progress: Union[float, Tensor]) -> Tuple[Tensor, Tensor]:
        """``(w_ssi, w_l1)`` at ``progress`` (0-dim tensors)."""
        raise NotImplementedError

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "inverse")
        w_ssi, w_l1 = self.mix_weights(progress)
        terms = ssi_l1_terms(p, t, mask, self.alpha, self.scope)
        loss = reduce_images(w_ssi * terms.ssi + w_l1 * terms.l1, terms.n_valid, self.reduction)
        metrics = {
            "dynamic_ssi_weight": w_ssi,
            "dynamic_l1_weight": w_l1,
            "ssi_component": reduce_images(terms.ssi, terms.n_valid, "mean"),
            "l1_component": reduce_images(terms.l1, terms.n_valid, "mean"),
        }
        return loss, metrics


@register_loss("enhanced-ssi")
class EnhancedSSILoss(SsiL1Loss):
    """SSI + L1 on inverse depth, weights shift from SSI to L1 with progress (:func:`depthloss.functional.enhanced_ssi`).

    With ``adaptive_weighting`` the weights are ``ssi_weight + 0.1 (1 - p)`` and
    ``l1_weight + 0.1 p``, normalized to sum 1; otherwise ``ssi_weight`` and ``l1_weight``.

    Args:
        alpha: SSI mean weight (default 0.85).
        ssi_weight: base SSI weight (default 0.8).
        l1_weight: base L1 weight (default 0.2).
        adaptive_weighting: move the weights with progress (default True).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required).

    Example:
        >>> [round(float(w), 4) for w in EnhancedSSILoss(input_space="inverse").mix_weights(0.0)]
        [0.8182, 0.1818]
    """

    formula = "normalize(w_ssi + 0.1 (1 - p), w_l1 + 0.1 p) . (SSI, L1)"
    when = "Start relative, end closer to metric: SSI dominates early, L1 gains weight late."
    functional = staticmethod(DF.enhanced_ssi)

    def __init__(
        self,
        alpha: float = 0.85,
        ssi_weight: float = 0.8,
        l1_weight: float = 0.2,
        adaptive_weighting: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(alpha=alpha, **kwargs)
        self.ssi_weight = check_float("ssi_weight", ssi_weight, low=0.0)
        self.l1_weight = check_float("l1_weight", l1_weight, low=0.0)
        if not isinstance(adaptive_weighting, bool):
            raise TypeError(f"adaptive_weighting must be a bool, got {type(adaptive_weighting).__name__}")
        self.adaptive_weighting = adaptive_weighting

    def mix_weights(self, progress: Union[float, Tensor]) -> Tuple[Tensor, Tensor]:
        p = _progress_tensor(progress)
        return enhanced_ssi_weights(p, self.ssi_weight, self.l1_weight, self.adaptive_weighting)
