"""Module for the seed's SSI-SILog loss."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from torch import Tensor

import depthloss.functional as DF
from depthloss._checks import GLOBAL_SCOPES, check_ssi_silog_args
from depthloss.functional._plumbing import reduce_images
from depthloss.functional.ssi_silog import ssi_silog_terms
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["SSISilogLoss"]


@register_loss("ssi-silog")
class SSISilogLoss(DepthLoss):
    """0.7 SSI on inverse depth + 0.3 SILog on depth, the seed's SSISilogLoss (:func:`depthloss.functional.ssi_silog`).

    Args:
        alpha: SSI mean weight (default 0.85).
        silog_ratio: SILog scale (default 10).
        silog_ratio2: SILog variance weight (default 0.85).
        ssi_weight: weight of SSI (default 0.7).
        silog_weight: weight of SILog (default 0.3).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required; ``min_depth`` /
            ``max_depth`` clamp the SILog depths).

    Metrics: ``ssi_component``, ``silog_component``, ``loss``.
    """

    formula = "0.7 (var(d) + 0.85 mean(d)^2) + 0.3 * 10 sqrt(E[g^2] - 0.85 E[g]^2 + 1e-8)"
    when = "Inverse-depth networks that also need metric depth structure; the seeds' workhorse."
    loss_space = "inverse+depth"
    scopes = GLOBAL_SCOPES
    functional = staticmethod(DF.ssi_silog)

    def __init__(
        self,
        alpha: float = 0.85,
        silog_ratio: float = 10.0,
        silog_ratio2: float = 0.85,
        ssi_weight: float = 0.7,
        silog_weight: float = 0.3,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_ssi_silog_args(alpha, silog_ratio, silog_ratio2, ssi_weight, silog_weight)
        self.alpha, self.silog_ratio, self.silog_ratio2 = float(alpha), float(silog_ratio), float(silog_ratio2)
        self.ssi_weight, self.silog_weight = float(ssi_weight), float(silog_weight)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "inverse")
        terms = ssi_silog_terms(
            p,
            t,
            mask,
            self.alpha,
            self.silog_ratio,
            self.silog_ratio2,
            self.min_depth,
            self.max_depth,
            None,
            self.scope,
        )
        loss = reduce_images(
            self.ssi_weight * terms.ssi + self.silog_weight * terms.silog, terms.n_valid, self.reduction
        )
        metrics = {
            "ssi_component": reduce_images(terms.ssi, terms.n_valid, "mean"),
            "silog_component": reduce_images(terms.silog, terms.n_valid, "mean"),
        }
        return loss, metrics
