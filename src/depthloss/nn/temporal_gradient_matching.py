"""Module for Video Depth Anything's temporal gradient matching (``temporal-gradient-matching``)."""

from __future__ import annotations

from typing import Any, ClassVar, Dict, Optional, Tuple, Union

from torch import Tensor

import depthloss.functional as DF
from depthloss._checks import check_progress
from depthloss.functional.temporal_gradient_matching import Align, ThresholdMode
from depthloss.functional.video import check_temporal_args, check_video_pair
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["TemporalGradientMatchingLoss", "VideoLoss"]


class VideoLoss(DepthLoss):
    """Base of the losses on ``(B, T, H, W)`` sequences: checks the video layout instead of image maps.

    ``scope="image"`` means per-sequence statistics (one per clip), ``"batch"`` one for the batch.
    """

    input_layout: ClassVar[str] = "video"
    loss_space = "inverse"

    def validate(
        self,
        pred: Tensor,
        target: Tensor,
        mask: Optional[Tensor] = None,
        progress: Union[float, Tensor, None] = None,
        **inputs: Any,
    ) -> None:
        check_video_pair(pred, target, mask)
        if progress is not None:
            check_progress(progress)
        unknown = sorted(set(inputs) - set(self.inputs))
        if unknown:
            accepted = ", ".join(("pred", "target", "mask", "progress", *self.inputs))
            raise TypeError(f"{type(self).__name__}.forward got unexpected inputs {unknown}; it accepts {accepted}")

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        mask: Optional[Tensor] = None,
        progress: Union[float, Tensor, None] = None,
    ) -> Tensor:
        """Compute the loss.

        Args:
            pred: ``(B, T, H, W)`` sequences in ``input_space``.
            target: same shape; invalid pixels hold 0, a negative value, NaN or inf.
            mask: optional bool mask, same shape, combined with the target's validity.
            progress: unused (accepted like every loss).

        Returns:
            The loss (``(B,)`` per sequence for ``reduction="none"``).
        """
        return self._run(pred, target, mask, progress)


@register_loss("temporal-gradient-matching")
class TemporalGradientMatchingLoss(VideoLoss):
    """Video Depth Anything's TGM: frame-to-frame disparity changes match the target's at static pixels (:func:`depthloss.functional.temporal_gradient_matching`).

    Args:
        threshold: static-pixel threshold (default 0.05).
        threshold_mode: ``"range"`` (default: ``threshold`` times the frame's target range,
            the authors' code) or ``"absolute"`` (the paper's fixed threshold).
        align: ``"lsq"`` (default: per-sequence least-squares scale and shift of the prediction)
            or ``"none"``.
        absolute: compare ``|Δd|`` with ``|Δg|`` (the paper's equation; default ``False``,
            signed changes as in the authors' code).
        temporal_scales: frame strides ``1, 2, 4, ...`` (default 1).
        decay: weight ratio between strides (default 0.5).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required).
    """

    formula = "mean over static pixels |(d~_{t+1} - d~_t) - (g_{t+1} - g_t)|, d~ = s d + t (lsq per sequence)"
    when = "Video training (B, T, H, W): penalizes flicker without optical flow; add to a per-frame loss."
    invariances = ("scale", "shift")
    functional = staticmethod(DF.temporal_gradient_matching)

    def __init__(
        self,
        threshold: float = 0.05,
        threshold_mode: ThresholdMode = "range",
        align: Align = "lsq",
        absolute: bool = False,
        temporal_scales: int = 1,
        decay: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_temporal_args(threshold, threshold_mode, align, temporal_scales, decay)
        self.threshold, self.threshold_mode, self.align = float(threshold), threshold_mode, align
        self.absolute, self.temporal_scales, self.decay = bool(absolute), int(temporal_scales), float(decay)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "inverse")
        loss = DF.temporal_gradient_matching(
            p, t, mask, self.threshold, self.threshold_mode, self.align, self.absolute, self.temporal_scales,
            self.decay, reduction=self.reduction, scope=self.scope,
        )  # fmt: skip
        return loss, {}
