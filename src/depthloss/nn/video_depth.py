"""Module for Video Depth Anything's training loss (``video-depth``)."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from torch import Tensor

import depthloss.functional as DF
from depthloss._checks import check_float
from depthloss.functional.image import check_gradient_args
from depthloss.functional.ssi_mae import MedianOver, check_trim_args
from depthloss.functional.temporal_gradient_matching import Align, ThresholdMode
from depthloss.functional.video import check_temporal_args
from depthloss.functional.video_depth import video_depth_parts
from depthloss.nn.temporal_gradient_matching import VideoLoss
from depthloss.registry import register_loss

__all__ = ["VideoDepthLoss"]


@register_loss("video-depth")
class VideoDepthLoss(VideoLoss):
    """Video Depth Anything's loss: per-frame SSI (MAE + 0.5 gradient matching) + 10 TGM on disparity (:func:`depthloss.functional.video_depth`).

    Args:
        tgm_weight: weight of the TGM term (default 10).
        alpha: weight of the spatial gradient term (default 0.5).
        scales: spatial gradient levels (default 4).
        trim: fraction of the largest spatial residuals dropped per frame (default 0).
        eps: lower bound on MAD scales (default 1e-6).
        median_over: ``"valid"`` (default) or ``"all-pixels"`` (the authors' code).
        threshold, threshold_mode, align, absolute, temporal_scales, decay: the TGM term's
            (:class:`TemporalGradientMatchingLoss`).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required).

    Metrics: ``spatial``, ``tgm``, ``loss``.
    """

    formula = "per frame: mean|d^ - g^| + 0.5 sum_s grad(d^ - g^) (median/MAD-normalized), + 10 * TGM"
    when = "Training a video depth model on (B, T, H, W) disparity clips: accurate frames that do not flicker."
    invariances = ("scale", "shift")
    functional = staticmethod(DF.video_depth)

    def __init__(
        self,
        tgm_weight: float = 10.0,
        alpha: float = 0.5,
        scales: int = 4,
        trim: float = 0.0,
        eps: float = 1e-6,
        median_over: MedianOver = "valid",
        threshold: float = 0.05,
        threshold_mode: ThresholdMode = "range",
        align: Align = "lsq",
        absolute: bool = False,
        temporal_scales: int = 1,
        decay: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_float("tgm_weight", tgm_weight, low=0.0)
        check_trim_args(trim, eps, 1.0, "kept", "image", "ceil", median_over)
        check_gradient_args(alpha, scales, "diff")
        check_temporal_args(threshold, threshold_mode, align, temporal_scales, decay)
        self.tgm_weight, self.alpha, self.scales = float(tgm_weight), float(alpha), int(scales)
        self.trim, self.eps, self.median_over = float(trim), float(eps), median_over
        self.threshold, self.threshold_mode, self.align = float(threshold), threshold_mode, align
        self.absolute, self.temporal_scales, self.decay = bool(absolute), int(temporal_scales), float(decay)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "inverse")
        spatial, temporal = video_depth_parts(
            p, t, mask, self.alpha, self.scales, self.trim, self.eps, self.median_over, self.threshold,
            self.threshold_mode, self.align, self.absolute, self.temporal_scales, self.decay, self.reduction,
            self.scope,
        )  # fmt: skip
        metrics = {"spatial": spatial.detach().mean(), "tgm": temporal.detach().mean()}
        return spatial + self.tgm_weight * temporal, metrics
