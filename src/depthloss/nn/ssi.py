"""Modules for the seed's SSI family: SSI, SSI-SILog, enhanced and progressive SSI."""

from __future__ import annotations

from typing import Any, Dict, Tuple, Union

import torch
from torch import Tensor

import depthloss.functional as DF
from depthloss.functional._checks import check_choice, check_float
from depthloss.functional._common import GLOBAL_SCOPES, prepare, reduce_images
from depthloss.functional.schedules import SCHEDULE_KINDS, ScheduleKind, schedule
from depthloss.functional.ssi_silog import check_ssi_silog_args, ssi_silog_terms
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["EnhancedSSILoss", "ProgressiveSSILoss", "SSILoss", "SSISilogLoss"]

Weight = Union[float, Tensor]


@register_loss(
    "ssi",
    summary="Seed SSI on inverse depth: var(d) + alpha mean(d)^2",
    formula="var(d) + alpha * mean(d)^2, d = rho_p - rho_g (inverse depth)",
    loss_space="inverse",
    when="Relative inverse depth where a global offset matters little (alpha < 1 discounts it).",
    functional=DF.ssi,
)
class SSILoss(DepthLoss):
    """The seed's SSI loss on inverse depth (:func:`depthloss.functional.ssi`).

    Args:
        alpha: weight of the squared mean (default 0.85; 0 makes it shift-invariant).
        **kwargs: :class:`DepthLoss` arguments.
    """

    loss_space = "inverse"
    scopes = GLOBAL_SCOPES

    def __init__(self, alpha: float = 0.85, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = check_float("alpha", alpha, low=0.0)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Weight, **extra: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "inverse")
        return DF.ssi(p, t, mask, self.alpha, reduction=self.reduction, scope=self.scope), {}


@register_loss(
    "ssi-silog",
    summary="0.7 SSI on inverse depth + 0.3 SILog on depth (the seed's SSISilogLoss)",
    formula="0.7 (var(d) + 0.85 mean(d)^2) + 0.3 * 10 sqrt(E[g^2] - 0.85 E[g]^2 + 1e-8)",
    loss_space="inverse+depth",
    when="Inverse-depth networks that also need metric depth structure; the seeds' workhorse.",
    functional=DF.ssi_silog,
)
class SSISilogLoss(DepthLoss):
    """SSI on inverse depth plus SILog on depth (:func:`depthloss.functional.ssi_silog`).

    Args:
        alpha: SSI mean weight (default 0.85).
        silog_ratio: SILog scale (default 10).
        silog_ratio2: SILog variance weight (default 0.85).
        ssi_weight: weight of SSI (default 0.7).
        silog_weight: weight of SILog (default 0.3).
        **kwargs: :class:`DepthLoss` arguments (``min_depth``/``max_depth`` clamp the SILog depths).
    """

    loss_space = "inverse"
    scopes = GLOBAL_SCOPES

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
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Weight, **extra: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p_inv, t_inv = self.pair_in(pred, target, "inverse")
        p = prepare(p_inv, t_inv, mask, None, self.scope, fill=None)
        terms = ssi_silog_terms(p, self.alpha, self.silog_ratio, self.silog_ratio2, self.min_depth, self.max_depth)
        loss = reduce_images(self.ssi_weight * terms.ssi + self.silog_weight * terms.silog, p.count, self.reduction)
        metrics = {
            "ssi_component": reduce_images(terms.ssi, p.count, "mean"),
            "silog_component": reduce_images(terms.silog, p.count, "mean"),
        }
        return loss, metrics


class _SsiL1Mix(DepthLoss):
    """``w_ssi * SSI + w_l1 * L1`` on inverse depth with progress-dependent weights."""

    loss_space = "inverse"
    uses_progress = True

    def __init__(self, alpha: float = 0.85, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = check_float("alpha", alpha, low=0.0)

    def mix_weights(self, progress: Weight) -> Tuple[Weight, Weight]:
        raise NotImplementedError

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Weight, **extra: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "inverse")
        w_ssi, w_l1 = self.mix_weights(progress)
        ssi_value = DF.ssi(p, t, mask, self.alpha, reduction=self.reduction, scope=self.scope)
        l1_value = DF.l1(p, t, mask, reduction=self.reduction, scope=self.scope)
        metrics = {
            "dynamic_ssi_weight": torch.as_tensor(w_ssi),
            "dynamic_l1_weight": torch.as_tensor(w_l1),
            "ssi_component": ssi_value.detach().mean(),
            "l1_component": l1_value.detach().mean(),
        }
        return w_ssi * ssi_value + w_l1 * l1_value, metrics


@register_loss(
    "enhanced-ssi",
    summary="SSI + L1 on inverse depth, weights shift from SSI to L1 with progress",
    formula="normalize(w_ssi + 0.1 (1 - p), w_l1 + 0.1 p) . (SSI, L1)",
    loss_space="inverse",
    uses_progress=True,
    when="Start relative, end closer to metric: SSI dominates early, L1 gains weight late.",
)
class EnhancedSSILoss(_SsiL1Mix):
    """The seed's ``EnhancedSSILoss``: SSI plus L1 with progress-adaptive weights.

    With ``adaptive_weighting`` the weights are ``ssi_weight + 0.1 (1 - p)`` and
    ``l1_weight + 0.1 p``, normalized to sum 1; otherwise ``ssi_weight`` and ``l1_weight``.

    Args:
        alpha: SSI mean weight (default 0.85).
        ssi_weight: base SSI weight (default 0.8).
        l1_weight: base L1 weight (default 0.2).
        adaptive_weighting: move the weights with progress (default True).
        **kwargs: :class:`DepthLoss` arguments.

    Example:
        >>> [round(w, 4) for w in EnhancedSSILoss().mix_weights(0.0)]  # 0.9 / 1.1, 0.2 / 1.1
        [0.8182, 0.1818]
    """

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

    def mix_weights(self, progress: Weight) -> Tuple[Weight, Weight]:
        if not self.adaptive_weighting:
            return self.ssi_weight, self.l1_weight
        p = progress.clamp(0.0, 1.0) if isinstance(progress, Tensor) else min(max(progress, 0.0), 1.0)
        w_ssi = self.ssi_weight + (1.0 - p) * 0.1
        w_l1 = self.l1_weight + p * 0.1
        total = w_ssi + w_l1
        return w_ssi / total, w_l1 / total


@register_loss(
    "progressive-ssi",
    summary="SSI + L1 on inverse depth with scheduled weights (start -> end)",
    formula="normalize(schedule(p, ssi_start, ssi_end), schedule(p, l1_start, l1_end)) . (SSI, L1)",
    loss_space="inverse",
    uses_progress=True,
    when="Like enhanced-ssi with a configurable curriculum between start and end weights.",
)
class ProgressiveSSILoss(_SsiL1Mix):
    """SSI plus L1 with weights that follow a schedule from start to end values.

    Args:
        alpha: SSI mean weight (default 0.85).
        ssi_weight_start: SSI weight at progress 0 (default 0.9).
        ssi_weight_end: SSI weight at progress 1 (default 0.7).
        l1_weight_start: L1 weight at progress 0 (default 0.1).
        l1_weight_end: L1 weight at progress 1 (default 0.3).
        weight_schedule: ``"linear"`` (default), ``"cosine"``, ``"step"`` or ``"constant"``.
        **kwargs: :class:`DepthLoss` arguments.

    The two weights are normalized to sum 1 at every progress.

    Example:
        >>> ProgressiveSSILoss().mix_weights(0.5)
        (0.8, 0.2)
    """

    def __init__(
        self,
        alpha: float = 0.85,
        ssi_weight_start: float = 0.9,
        ssi_weight_end: float = 0.7,
        l1_weight_start: float = 0.1,
        l1_weight_end: float = 0.3,
        weight_schedule: ScheduleKind = "linear",
        **kwargs: Any,
    ) -> None:
        super().__init__(alpha=alpha, **kwargs)
        self.ssi_weight_start = check_float("ssi_weight_start", ssi_weight_start, low=0.0)
        self.ssi_weight_end = check_float("ssi_weight_end", ssi_weight_end, low=0.0)
        self.l1_weight_start = check_float("l1_weight_start", l1_weight_start, low=0.0)
        self.l1_weight_end = check_float("l1_weight_end", l1_weight_end, low=0.0)
        for when in ("start", "end"):
            if getattr(self, f"ssi_weight_{when}") + getattr(self, f"l1_weight_{when}") <= 0:
                raise ValueError(f"ssi_weight_{when} + l1_weight_{when} must be > 0")
        self.weight_schedule = check_choice("weight_schedule", weight_schedule, SCHEDULE_KINDS)

    def mix_weights(self, progress: Weight) -> Tuple[Weight, Weight]:
        w_ssi = schedule(progress, self.weight_schedule, self.ssi_weight_start, self.ssi_weight_end)  # type: ignore[arg-type]
        w_l1 = schedule(progress, self.weight_schedule, self.l1_weight_start, self.l1_weight_end)  # type: ignore[arg-type]
        total = w_ssi + w_l1
        return w_ssi / total, w_l1 / total
