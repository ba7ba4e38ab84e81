"""Module for the scale-adaptive loss."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple, Union

from torch import Tensor

import depthloss.functional as DF
from depthloss.functional._common import reduce_images
from depthloss.functional.scale_adaptive import ScaleAdaptiveConfig, scale_adaptive_terms
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["ScaleAdaptiveLoss"]


@register_loss(
    "scale-adaptive",
    summary="MAD-normalized/metric residual blend over a sparse-aware pyramid, alpha scheduled",
    formula="sum_l w_l [(1-lambda) mean|R| + lambda sobel(R)], R = a (p^ - g^) + (1-a) (p - g)/s_g",
    loss_space="depth",
    invariances=(),  # only while alpha_t = 1; the default schedule ends metric
    uses_progress=True,
    when="Depth completion from sparse LiDAR: relative structure first, metric scale later.",
    functional=DF.scale_adaptive,
)
class ScaleAdaptiveLoss(DepthLoss):
    """Scale-adaptive loss (:func:`depthloss.functional.scale_adaptive`), the seed report's design.

    The loss space is depth clamped to ``[min_depth, max_depth]``, or inverse depth with
    ``use_inv_depth=True``. ``α_t`` and the level weights follow ``progress``; the invariance
    to ``pred -> a*pred + b`` holds while ``α_t = 1`` (the start of the default schedule).

    Args:
        min_depth: lower depth clamp (default 0.1).
        max_depth: upper depth clamp (default 100).
        use_inv_depth: compute on inverse depth instead of clamped depth (default False).
        **kwargs: the fields of :class:`~depthloss.functional.ScaleAdaptiveConfig`
            (``lambda_sg=0.5, num_scales=4, alpha_schedule="linear", alpha_start=1.0,
            alpha_end=0.0, scale_schedule="linear", gt_downsample="mean", eps=1e-6,
            scale_floor=0.05``) and
            :class:`DepthLoss` arguments (``input_space``, ``reduction``, ``scope``).

    Metrics: ``level{l}_loss``, ``level{l}_l1``, ``level{l}_grad``, ``level{l}_valid_frac``,
    ``level{l}_stencil_frac`` (valid 3x3 Sobel stencils per valid pixel), ``level{l}_weight``,
    ``alpha_t``, ``num_valid_pixels``, ``loss``.

    Example:
        >>> loss = ScaleAdaptiveLoss(input_space="depth", num_scales=2)
        >>> target = torch.rand(2, 1, 16, 16) * 10 + 1
        >>> pred = target + 0.1 * torch.randn_like(target)
        >>> value = loss(pred, target, progress=0.5)
        >>> sorted(loss.metrics)[:3], float(loss.metrics["alpha_t"])
        (['alpha_t', 'level0_grad', 'level0_l1'], 0.5)
    """

    config_class = ScaleAdaptiveConfig
    uses_progress = True

    def __init__(
        self,
        min_depth: Optional[float] = 0.1,
        max_depth: Optional[float] = 100.0,
        use_inv_depth: bool = False,
        **kwargs: Any,
    ) -> None:
        fields = {f.name for f in dataclasses.fields(ScaleAdaptiveConfig)}
        params = {k: kwargs.pop(k) for k in list(kwargs) if k in fields}
        super().__init__(min_depth=min_depth, max_depth=max_depth, **kwargs)
        if not isinstance(use_inv_depth, bool):
            raise TypeError(f"use_inv_depth must be a bool, got {type(use_inv_depth).__name__}")
        self.use_inv_depth = use_inv_depth
        self.config = ScaleAdaptiveConfig(**params)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Union[float, Tensor], **extra: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        space = "inverse" if self.use_inv_depth else "depth"
        p, t = self.pair_in(pred, target, space)
        terms = scale_adaptive_terms(p, t, mask, progress, self.config, self.scope)
        return reduce_images(terms.value, terms.count, self.reduction), terms.metrics

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, use_inv_depth={self.use_inv_depth}, {self.config}"
