"""The straightforward implementations depthloss is timed against.

Each baseline is what a user would otherwise write or copy: the seed design documents'
code (``/work/shared/seeds``) or the published research code it comes from, written the
way that code is written (boolean indexing ``x[mask]``, Python loops over images and
scales, ``if tensor`` checks that synchronize the host). They are neither strawmen nor
secretly optimized: where a source is incomplete it is completed the obvious way, and
every completion and every departure from the source is stated next to it. Facts were
taken from the sources; the code is written here.

Baselines (all take ``(pred, target, mask, progress=None)``; ``mask`` is a bool tensor of
the maps' shape, already combined with target validity as the seeds' ``SupervisedLoss``
does):

=========================  ==========================================================
``SeedScaleAdaptiveLoss``  the integration report's ``ScaleAdaptiveLoss.forward`` sketch
``SeedNearFieldSSISilog``  the near-field analysis's ``SSISilogNearFieldLoss`` pieces
``bool_index_silog``       BTS / packnet-sfm SILog with ``x[mask]`` (ZoeDepth form noted)
``loop_mad_l1``            Metric3D ``SSILoss``: per-image median/MAD-normalized L1
``MidasDenseLoss``         MiDaS ``ScaleAndShiftInvariantLoss`` (the published gist)
``masked_l1_floor``        a dense masked L1, the memory-bound floor
=========================  ==========================================================

:data:`BASELINES` maps a depthloss name to ``(baseline factory, depthloss factory,
input space, notes)``; the notes say exactly when the two compute the same value.
``tests/test_baselines.py`` checks those claims (values and gradients).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import depthloss
import depthloss.functional as DF

__all__ = [
    "BASELINES",
    "BaselinePair",
    "MidasDenseLoss",
    "SeedNearFieldSSISilog",
    "SeedScaleAdaptiveLoss",
    "bool_index_silog",
    "compute_scale_and_shift",
    "inv2depth",
    "loop_mad_l1",
    "masked_l1_floor",
]

Progress = Union[None, float, Tensor]


# ---------------------------------------------------------------------------------------
# shared pieces of the seed code base (packnet-sfm)
# ---------------------------------------------------------------------------------------


def inv2depth(inv_depth: Tensor) -> Tensor:
    """packnet-sfm's ``inv2depth``: ``1 / inv_depth.clamp(min=1e-6)``.

    Source: TRI-ML/packnet-sfm, ``packnet_sfm/utils/depth.py``.
    """
    return 1.0 / inv_depth.clamp(min=1e-6)


class _MetricsMixin:
    """packnet-sfm ``LossBase.add_metric``: store a detached tensor (or wrap a Python scalar).

    Source: YoungseokOh/packnet-sfm-resnet-san, ``packnet_sfm/losses/loss_base.py``.
    """

    _metrics: Dict[str, Tensor]

    @property
    def metrics(self) -> Dict[str, Tensor]:
        return self._metrics

    def add_metric(self, key: str, val: Any) -> None:
        self._metrics[key] = val.detach() if hasattr(val, "detach") else torch.tensor(val)


def _progress_float(progress: Progress) -> float:
    """The seeds pass ``progress = current_epoch / max_epochs`` as a Python float."""
    if progress is None:
        return 0.0
    return float(progress)  # a tensor progress is read on the host (a sync), as the seed would


def _schedule(progress: float, kind: str, start: float, end: float, milestone: float = 0.5) -> float:
    """Plain-Python interpolation from ``start`` (progress 0) to ``end`` (progress 1).

    The report names ``get_alpha(progress)`` and ``get_scale_weights(progress)`` and the
    schedule kinds but does not write them out. They are implemented with the formulas of
    :func:`depthloss.functional.schedule` so the baseline computes the same loss.
    """
    p = min(max(progress, 0.0), 1.0)
    if kind == "constant":
        return start
    if kind == "linear":
        return start + (end - start) * p
    if kind == "cosine":
        return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * p))
    if kind == "step":
        return start if p < milestone else end
    raise ValueError(f"unknown schedule {kind!r}")


# ---------------------------------------------------------------------------------------
# 1. the seed's scale-adaptive loss
# ---------------------------------------------------------------------------------------


class SeedScaleAdaptiveLoss(_MetricsMixin, nn.Module):
    """The integration report's ``ScaleAdaptiveLoss.forward`` ("수정 2"), completed.

    Source: ``/work/shared/seeds/scale_adaptive_integration_report.md`` §4.2 (수정 2), the
    sketch of ``packnet_sfm/losses/scale_adaptive_loss.py`` in the seed project
    (YoungseokOh/packnet-sfm-resnet-san; the module itself is not in that repository).

    Verbatim from the sketch: ``mask.sum() == 0`` early exit; ``inv2depth`` + clamp to
    ``[min_depth, max_depth]`` unless ``use_inv_depth``; a Python loop over scales, each
    pooled from full resolution with ``F.interpolate`` to ``(h // 2**s, w // 2**s)``,
    bilinear for the prediction, nearest for the target and for ``mask.float()`` (``> 0.5``);
    L1 as ``torch.abs(...)[mask_s].mean()`` (one mean over the *batch's* valid pixels);
    level loss ``(1 - lambda_sg) * l1 + lambda_sg * grad``; ``total += w_s * level``;
    per-scale metrics through ``add_metric``.

    Completed here (the sketch calls these but does not write them):

    - ``mad_normalize``: a loop over images, ``v = x[b][mask[b]]``, ``med = v.median()``,
      ``s = (v - med).abs().mean().clamp(min=eps)``, ``(x[b] - med) / s``. An image with
      no valid pixel at a level is skipped (``median()`` of an empty tensor raises).
    - ``compute_gradient_loss``: ``F.conv2d`` with the Sobel taps ``/ 8`` on both maps,
      ``|∇pred - ∇gt|`` summed over the two directions where the *whole 3x3 window* is
      valid, divided by the number of valid pixels. (Counting stencils that touch invalid
      pixels would compare garbage; the normalizer is DESIGN §3's / MiDaS's valid-pixel
      count, which is what depthloss computes.)
    - ``get_alpha`` / ``get_scale_weights``: the report gives no formulas; they follow
      depthloss's ``schedule`` / ``scale_weights`` (linear α from ``alpha_start`` 1 to
      ``alpha_end`` 0; level weights ``(1 - t)·c + t·f`` with ``c ∝ 2^s``, ``f ∝ 2^-s``
      normalized, ``t`` the schedule from 0 to 1) so the math matches.
    - The α-blend residual. The sketch MAD-normalizes both maps and uses only the
      normalized residual, although it computes ``alpha_t``; with ``alpha_blend=True``
      (default) the residual is DESIGN §4's ``α·(p̂ − ĝ) + (1 − α)·(p − g)/s_g`` (``s_g``
      the target's MAD at that level), written as the difference of the two blended maps
      so ``compute_gradient_loss(pred_n, gt_n, mask)`` keeps the sketch's signature.
      ``alpha_blend=False`` is the sketch's normalized-only residual.

    Pooling options, so that correctness checks can match depthloss where possible:

    - ``pred_downsample="bilinear"`` (the sketch) or ``"area"`` (depthloss's average
      pooling). At factor 2 (level 1) bilinear *is* the 2x2 average; from level 2 on
      bilinear samples the centre of each block and the two differ.
    - ``gt_downsample="nearest"`` (the sketch; depthloss ``gt_downsample="nearest"``) or
      ``"mean"`` (mean of the block's valid targets, depthloss's default).

    Differences from ``depthloss.ScaleAdaptiveLoss`` that remain with matching pooling:
    the sketch's L1 and gradient means pool the batch's valid pixels while depthloss
    averages per-image means (``scope="image"``; its ``scope="batch"`` pools the MAD
    statistics as well, which the sketch does not), so the two agree when every image has
    the same number of valid pixels at every level (dense targets, or the same mask for
    every image); output sizes are ``h // 2**s`` here, ``ceil(h / 2**s)`` in depthloss
    (equal when ``2**(num_scales-1)`` divides H and W). A level whose pooled mask is empty
    for the whole batch gives NaN here (``[mask].mean()`` of nothing), 0 in depthloss.

    Args are the report's ``get_loss_func`` keys plus ``alpha_start``, ``alpha_end``,
    ``eps`` and the three options above.
    """

    def __init__(
        self,
        min_depth: float = 0.1,
        max_depth: float = 100.0,
        lambda_sg: float = 0.5,
        use_inv_depth: bool = False,
        alpha_schedule: str = "linear",
        scale_schedule: str = "linear",
        num_scales: int = 4,
        alpha_start: float = 1.0,
        alpha_end: float = 0.0,
        eps: float = 1e-6,
        pred_downsample: str = "bilinear",
        gt_downsample: str = "nearest",
        alpha_blend: bool = True,
    ) -> None:
        super().__init__()
        if pred_downsample not in ("bilinear", "area"):
            raise ValueError(f"pred_downsample must be 'bilinear' or 'area', got {pred_downsample!r}")
        if gt_downsample not in ("nearest", "mean"):
            raise ValueError(f"gt_downsample must be 'nearest' or 'mean', got {gt_downsample!r}")
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.lambda_sg = lambda_sg
        self.use_inv_depth = use_inv_depth
        self.alpha_schedule = alpha_schedule
        self.scale_schedule = scale_schedule
        self.num_scales = num_scales
        self.alpha_start = alpha_start
        self.alpha_end = alpha_end
        self.eps = eps
        self.pred_downsample = pred_downsample
        self.gt_downsample = gt_downsample
        self.alpha_blend = alpha_blend
        self._metrics = {}
        sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
        # (2, 1, 3, 3): output channel 0 is d/dx (along W), channel 1 is d/dy (along H)
        self.register_buffer("sobel_kernel", torch.stack([sobel_x, sobel_x.t()]).unsqueeze(1), persistent=False)
        self.register_buffer("window_kernel", torch.ones(1, 1, 3, 3), persistent=False)

    # -- schedules ----------------------------------------------------------------------
    def get_alpha(self, progress: float) -> float:
        return _schedule(progress, self.alpha_schedule, self.alpha_start, self.alpha_end)

    def get_scale_weights(self, progress: float) -> List[float]:
        n = self.num_scales
        if self.scale_schedule == "constant":
            return [1.0 / n] * n
        coarse = [2.0**s for s in range(n)]
        fine = [2.0**-s for s in range(n)]
        c_sum, f_sum = sum(coarse), sum(fine)
        t = _schedule(progress, self.scale_schedule, 0.0, 1.0)
        return [(1.0 - t) * c / c_sum + t * f / f_sum for c, f in zip(coarse, fine)]

    # -- pieces the report names ----------------------------------------------------------
    def _mad_normalize_map(self, x: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
        """Per-image ``(x - median) / mean|x - median|`` over valid pixels; returns the scales too."""
        normalized, scales = [], []
        for b in range(x.shape[0]):
            valid = x[b][mask[b]]
            if valid.numel() == 0:  # completion: nothing to normalize in this image at this level
                normalized.append(torch.zeros_like(x[b]))
                scales.append(x.new_tensor(self.eps))
                continue
            median = valid.median()
            scale = (valid - median).abs().mean().clamp(min=self.eps)
            normalized.append((x[b] - median) / scale)
            scales.append(scale)
        return torch.stack(normalized), torch.stack(scales)

    def mad_normalize(self, pred: Tensor, gt: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """``(pred_n, gt_n, gt_scale)``: both maps MAD-normalized per image, and the target MADs."""
        pred_n, _ = self._mad_normalize_map(pred, mask)
        gt_n, gt_scale = self._mad_normalize_map(gt, mask)
        return pred_n, gt_n, gt_scale

    def compute_gradient_loss(self, pred: Tensor, gt: Tensor, mask: Tensor) -> Tensor:
        """Sobel (``/ 8``) gradient L1 over full valid 3x3 windows, per valid pixel of the batch."""
        kernel = self.sobel_kernel.to(pred)
        grad_pred = F.conv2d(pred, kernel, padding=1)
        grad_gt = F.conv2d(gt, kernel, padding=1)
        grad_diff = (grad_pred - grad_gt).abs().sum(dim=1, keepdim=True)
        # a window is valid when all 9 pixels are (zero padding makes the border invalid)
        stencil = F.conv2d(mask.to(pred.dtype), self.window_kernel.to(pred), padding=1) > 8.5
        return grad_diff[stencil].sum() / mask.sum()

    def _downsample(
        self, pred: Tensor, gt: Tensor, mask: Tensor, size: Tuple[int, int]
    ) -> Tuple[Tensor, Tensor, Tensor]:
        if self.pred_downsample == "bilinear":
            pred_s = F.interpolate(pred, size=size, mode="bilinear")
        else:
            pred_s = F.interpolate(pred, size=size, mode="area")
        if self.gt_downsample == "nearest":
            gt_s = F.interpolate(gt, size=size, mode="nearest")
            mask_s = F.interpolate(mask.float(), size=size, mode="nearest") > 0.5
        else:  # mean of the block's valid targets
            m = mask.to(gt.dtype)
            num = F.interpolate(gt * m, size=size, mode="area")
            den = F.interpolate(m, size=size, mode="area")
            mask_s = den > 0
            gt_s = num / den.clamp(min=torch.finfo(den.dtype).tiny)
        return pred_s, gt_s, mask_s

    # -- forward --------------------------------------------------------------------------
    def forward(self, pred: Tensor, gt: Tensor, mask: Optional[Tensor] = None, progress: Progress = 0.0) -> Tensor:
        """``pred`` and ``gt`` are inverse depth ``(B, 1, H, W)`` (the seeds' convention)."""
        if pred.dim() == 3:  # the seed assumes (B, 1, H, W)
            pred, gt = pred.unsqueeze(1), gt.unsqueeze(1)
            mask = None if mask is None else mask.unsqueeze(1)
        progress = _progress_float(progress)
        # 1. Mask default
        if mask is None:
            mask = torch.ones_like(pred, dtype=torch.bool)
        if mask.sum() == 0:
            return torch.tensor(0.0, device=pred.device, requires_grad=True)
        # 2. Loss space
        if self.use_inv_depth:
            pred_for_loss, gt_for_loss = pred, gt
        else:
            pred_for_loss = torch.clamp(inv2depth(pred), self.min_depth, self.max_depth)
            gt_for_loss = torch.clamp(inv2depth(gt), self.min_depth, self.max_depth)
        # 3. Adaptive parameters
        alpha_t = self.get_alpha(progress)
        scale_weights = self.get_scale_weights(progress)
        # 4. Multi-scale loss
        total_loss: Union[float, Tensor] = 0.0
        for scale in range(self.num_scales):
            h, w = pred_for_loss.shape[-2:]
            factor = 2**scale
            if scale > 0:
                size = (h // factor, w // factor)
                pred_s, gt_s, mask_s = self._downsample(pred_for_loss, gt_for_loss, mask, size)
            else:
                pred_s, gt_s, mask_s = pred_for_loss, gt_for_loss, mask

            pred_n, gt_n, gt_scale = self.mad_normalize(pred_s, gt_s, mask_s)
            if self.alpha_blend:
                # alpha * (p^ - g^) + (1 - alpha) * (p - g) / s_g, as a difference of two maps
                s_g = gt_scale.view(-1, 1, 1, 1)
                pred_n = alpha_t * pred_n + (1.0 - alpha_t) * pred_s / s_g
                gt_n = alpha_t * gt_n + (1.0 - alpha_t) * gt_s / s_g

            l1_loss = torch.abs(pred_n - gt_n)[mask_s].mean()
            grad_loss = self.compute_gradient_loss(pred_n, gt_n, mask_s)

            scale_loss = (1.0 - self.lambda_sg) * l1_loss + self.lambda_sg * grad_loss
            total_loss = total_loss + scale_weights[scale] * scale_loss

            self.add_metric(f"scale{scale}_loss", scale_loss)
            self.add_metric(f"scale{scale}_l1", l1_loss)
            self.add_metric(f"scale{scale}_grad", grad_loss)

        self.add_metric("total_loss", total_loss)
        self.add_metric("alpha_t", alpha_t)
        self.add_metric("num_valid_pixels", mask.sum())
        assert isinstance(total_loss, Tensor)
        return total_loss


# ---------------------------------------------------------------------------------------
# 2. the seed's near-field SSI-SILog
# ---------------------------------------------------------------------------------------


class SeedNearFieldSSISilog(nn.Module):
    """``SSISilogNearFieldLoss`` assembled from the near-field analysis's code, sign fixed.

    Source: ``/work/shared/seeds/near_field_loss_analysis.md``, on top of the seed
    project's ``SSISilogLoss`` (YoungseokOh/packnet-sfm-resnet-san,
    ``packnet_sfm/losses/ssi_silog_loss.py``: ``compute_ssi_loss`` / ``compute_silog_loss``
    with ``mask.sum() == 0`` exits and ``x[mask]`` indexing).

    - weights (solution 5-1, "smooth"): ``depths = 1 / (gt_inv.clamp(min=1e-6) + 1e-6)``,
      ``s = (1 + tanh((depths - threshold) / 0.3)) / 2`` and, with the sign the analysis
      intends ("depth < 0.7 m: ≈5x"), ``w = 1 + (5 - 1) * (1 - s)``. The analysis writes
      ``1 + 4 * s``, which weights *far* pixels 5x (DESIGN §4 calls this out).
    - SSI on inverse depth over ``diff = pred[mask] - gt[mask]`` with ``w = weights[mask]``:
      ``ssi_weighting="weighted-mean"`` is solution 2-1 (``Σ w d / Σ w`` moments; depthloss's
      default); ``"scaled-diff"`` is issue 3's ``d * clamp(w / (w.mean() + 1e-8), 0.5, 5)``
      (depthloss ``ssi_weighting="scaled-diff", ssi_weight_norm="batch"``).
    - SILog on depth (issue 3): ``inv2depth(pred[mask])``, ``log(depth * silog_ratio)``,
      ``u = clamp(sqrt(w) / (sqrt(w).mean() + 1e-8), 0.7, 2.0)``,
      ``silog_ratio * sqrt(mean((u g)^2) - silog_ratio2 * mean(u g)^2 + 1e-8)``.
    - issue 4: ``register_hook(lambda g: clamp(g, -1, 1))`` on the two scalar terms (their
      incoming gradient is the scalar weight, so it clamps nothing; ``gradient_hook=False``
      drops it), and ``if torch.isnan(total) or torch.isinf(total)`` (a host sync) falls
      back to the unweighted SSI-SILog.

    The weights are passed to the two terms as an argument instead of through the seed's
    ``self.weight_mask`` attribute (same values). Statistics pool the whole batch, as in the
    seed (``pred[mask]`` flattens the batch): compare with depthloss ``scope="batch"``.
    Differences from ``depthloss.NearFieldSSISilog(scope="batch")``: the ``+1e-6`` in the
    depth of the weights and the ``+1e-8`` in the SILog weight normalizer (relative effects
    ~1e-7 on the loss); an empty mask returns a constant 0 without a graph here (depthloss: 0 with a
    zero gradient); depthloss also always computes the unweighted loss (its sync-free
    guard) and its metrics.
    """

    def __init__(
        self,
        alpha: float = 0.85,
        silog_ratio: float = 10.0,
        silog_ratio2: float = 0.85,
        ssi_weight: float = 0.7,
        silog_weight: float = 0.3,
        near_field_threshold: float = 1.0,
        near_field_weight: float = 5.0,
        smooth_range: float = 0.3,
        ssi_weighting: str = "weighted-mean",
        gradient_hook: bool = True,
    ) -> None:
        super().__init__()
        if ssi_weighting not in ("weighted-mean", "scaled-diff"):
            raise ValueError(f"ssi_weighting must be 'weighted-mean' or 'scaled-diff', got {ssi_weighting!r}")
        self.alpha = alpha
        self.silog_ratio = silog_ratio
        self.silog_ratio2 = silog_ratio2
        self.ssi_weight = ssi_weight
        self.silog_weight = silog_weight
        self.near_field_threshold = near_field_threshold
        self.near_field_weight = near_field_weight
        self.smooth_range = smooth_range
        self.ssi_weighting = ssi_weighting
        self.gradient_hook = gradient_hook

    def get_distance_weight_mask(self, gt_inv_depths: Tensor, mask: Tensor) -> Tensor:
        eps = 1e-6
        depths = 1.0 / (gt_inv_depths.clamp(min=eps) + eps)
        depth_normalized = (depths - self.near_field_threshold) / self.smooth_range
        sigmoid_weight = (1.0 + torch.tanh(depth_normalized)) / 2.0  # ~0 near, ~1 far
        # sign fixed: near_field_weight close to the camera, 1 far away
        return 1.0 + (self.near_field_weight - 1.0) * (1.0 - sigmoid_weight)

    def compute_ssi_loss(
        self, pred_inv_depth: Tensor, gt_inv_depth: Tensor, mask: Tensor, weights: Optional[Tensor] = None
    ) -> Tensor:
        if mask.sum() == 0:
            return torch.tensor(0.0, device=pred_inv_depth.device)
        diff = pred_inv_depth[mask] - gt_inv_depth[mask]
        if weights is None:
            mean = diff.mean()
            var = (diff**2).mean() - mean**2
        elif self.ssi_weighting == "weighted-mean":  # solution 2-1
            weights = weights[mask]
            weight_sum = weights.sum()
            mean = (diff * weights).sum() / weight_sum
            var = (diff**2 * weights).sum() / weight_sum - mean**2
        else:  # issue 3: batch-mean normalization, clamped
            weights_ssi = weights[mask]
            weights_ssi_norm = torch.clamp(weights_ssi / (weights_ssi.mean() + 1e-8), 0.5, 5.0)
            weighted_diff = diff * weights_ssi_norm
            mean = weighted_diff.mean()
            var = (weighted_diff**2).mean() - mean**2
        return var + self.alpha * mean**2

    def compute_silog_loss(
        self, pred_inv_depth: Tensor, gt_inv_depth: Tensor, mask: Tensor, weights: Optional[Tensor] = None
    ) -> Tensor:
        if mask.sum() == 0:
            return torch.tensor(0.0, device=pred_inv_depth.device)
        pred_depth = inv2depth(pred_inv_depth[mask])
        gt_depth = inv2depth(gt_inv_depth[mask])
        log_pred = torch.log(pred_depth * self.silog_ratio)
        log_gt = torch.log(gt_depth * self.silog_ratio)
        log_diff = log_pred - log_gt
        if weights is not None:
            weights_silog = weights[mask]
            sqrt_w = torch.sqrt(weights_silog)
            weights_silog_norm = torch.clamp(sqrt_w / (sqrt_w.mean() + 1e-8), 0.7, 2.0)
            log_diff = log_diff * weights_silog_norm
        silog1 = (log_diff**2).mean()
        silog2 = self.silog_ratio2 * (log_diff.mean() ** 2)
        return torch.sqrt(silog1 - silog2 + 1e-8) * self.silog_ratio

    def compute_baseline_ssi_silog(self, pred_inv_depth: Tensor, gt_inv_depth: Tensor, mask: Tensor) -> Tensor:
        """The unweighted SSI-SILog (``SSISilogLoss`` without its depth clamp)."""
        ssi_loss = self.compute_ssi_loss(pred_inv_depth, gt_inv_depth, mask)
        silog_loss = self.compute_silog_loss(pred_inv_depth, gt_inv_depth, mask)
        return self.ssi_weight * ssi_loss + self.silog_weight * silog_loss

    def forward(
        self, pred_inv_depth: Tensor, gt_inv_depth: Tensor, mask: Optional[Tensor] = None, progress: Progress = None
    ) -> Tensor:
        if mask is None:
            mask = gt_inv_depth > 0
        with torch.no_grad():
            weight_mask = self.get_distance_weight_mask(gt_inv_depth, mask)

        ssi_loss = self.compute_ssi_loss(pred_inv_depth, gt_inv_depth, mask, weight_mask)
        silog_loss = self.compute_silog_loss(pred_inv_depth, gt_inv_depth, mask, weight_mask)

        if self.gradient_hook:
            if ssi_loss.requires_grad:
                ssi_loss.register_hook(lambda grad: torch.clamp(grad, -1.0, 1.0))
            if silog_loss.requires_grad:
                silog_loss.register_hook(lambda grad: torch.clamp(grad, -1.0, 1.0))

        total_loss = self.ssi_weight * ssi_loss + self.silog_weight * silog_loss
        if torch.isnan(total_loss) or torch.isinf(total_loss):
            return self.compute_baseline_ssi_silog(pred_inv_depth, gt_inv_depth, mask)
        return total_loss


# ---------------------------------------------------------------------------------------
# 3. boolean-indexed SILog (BTS / packnet-sfm; ZoeDepth variant noted)
# ---------------------------------------------------------------------------------------


def bool_index_silog(
    pred: Tensor, target: Tensor, mask: Tensor, progress: Progress = None, variance_focus: float = 0.85
) -> Tensor:
    """BTS's ``silog_loss`` on metric depth: ``10 * sqrt(mean(d^2) - 0.85 * mean(d)^2)``.

    ``d = log(pred[mask]) - log(target[mask])``, one set of statistics for the whole batch.

    Source: cleinc/bts, ``pytorch/bts.py`` (``silog_loss.forward``); packnet-sfm's
    ``SilogLoss`` (TRI-ML/packnet-sfm, ``packnet_sfm/losses/supervised_loss.py``) is the
    same with ``log(x * 10)`` and applied to masked inverse depths (``log`` of a reciprocal
    only flips the sign of ``d``).

    Same value as ``depthloss.SILogLoss(lambd=0.85, ratio=10, eps=0, scope="batch",
    input_space="depth")``. ZoeDepth's ``SILogLoss`` (isl-org/ZoeDepth
    ``zoedepth/trainers/loss.py``, from AdaBins; read here from the fork
    hologerry/ZoeDepth) computes ``g = log(input + 1e-7) - log(target + 1e-7)``,
    ``Dg = torch.var(g) + 0.15 * mean(g)^2``, ``10 * sqrt(Dg)``: the same quantity except
    that ``torch.var`` is the unbiased (n - 1) variance and the logs carry ``+1e-7``. Depth
    Anything V2 (``metric_depth/util/loss.py``) uses ``lambd=0.5`` without the factor 10.
    ``progress`` is ignored (uniform benchmark signature).
    """
    d = torch.log(pred[mask]) - torch.log(target[mask])
    return torch.sqrt((d**2).mean() - variance_focus * (d.mean() ** 2)) * 10.0


# ---------------------------------------------------------------------------------------
# 4. per-image loop median/MAD L1 (Metric3D SSILoss)
# ---------------------------------------------------------------------------------------


def _metric3d_ssi_mae(target: Tensor, prediction: Tensor, mask: Tensor, eps: float) -> Tuple[Tensor, Tensor]:
    """Sum of ``|ĝ - p̂|`` over one image's valid values, and its valid count (``+ eps``)."""
    valid_pixes = torch.sum(mask) + eps
    gt_median = torch.median(target) if target.numel() else 0
    gt_s = torch.abs(target - gt_median).sum() / valid_pixes
    gt_trans = (target - gt_median) / (gt_s + eps)
    pred_median = torch.median(prediction) if prediction.numel() else 0
    pred_s = torch.abs(prediction - pred_median).sum() / valid_pixes
    pred_trans = (prediction - pred_median) / (pred_s + eps)
    return torch.sum(torch.abs(gt_trans - pred_trans)), valid_pixes


def loop_mad_l1(pred: Tensor, target: Tensor, mask: Tensor, progress: Progress = None, eps: float = 1e-6) -> Tensor:
    """Metric3D's ``SSILoss``: median/MAD-normalized L1 with a Python loop over images.

    Per image ``i``: ``p = pred[i][mask[i]]``, ``g = target[i][mask[i]]``, ``x̂ = (x - med x)
    / (Σ|x - med x| / (n + eps) + eps)`` (``torch.median``, the lower median), summed
    ``|ĝ - p̂|``; the loss is the sum over images divided by ``Σ (n_i + eps) + eps`` (one
    mean over all valid pixels of the batch).

    Source: YvanYin/Metric3D, ``training/mono/model/losses/SSIL.py`` (``loss_weight=1``).

    depthloss's ``ssi_mae(trim=0)`` normalizes with ``max(mad, eps)`` and averages
    per-image means (``reduction="mean"``): the two agree to about ``eps / MAD`` relative
    (the eps placement: ~1e-4 for inverse depths whose MAD is ~0.01; exactly with a
    negligible ``eps`` on both sides) when every image has the same number of valid
    pixels; for any masks,
    Metric3D's value is the valid-count-weighted mean of ``ssi_mae(..., reduction="none")``.
    (``scope="batch"`` would also pool the medians, which Metric3D does per image.)
    ``progress`` is ignored (uniform benchmark signature).
    """
    loss: Union[int, Tensor] = 0
    valid_pix: Union[int, Tensor] = 0
    for i in range(pred.shape[0]):
        mask_i = mask[i, ...]
        gt_depth_i = target[i, ...][mask_i]
        pred_depth_i = pred[i, ...][mask_i]
        ssi_sum, valid_pix_i = _metric3d_ssi_mae(gt_depth_i, pred_depth_i, mask_i, eps)
        loss = loss + ssi_sum
        valid_pix = valid_pix + valid_pix_i
    return loss / (valid_pix + eps)  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------
# 5. MiDaS scale-and-shift-invariant loss (dense, as published)
# ---------------------------------------------------------------------------------------
# Source: the MiDaS training loss published by its authors as a gist
# (https://gist.github.com/dvdhfnr/732c26b61a0e63a0abc8a5d769dbebd0, linked from isl-org/MiDaS),
# read here from the verbatim copy Normanlei/MiDaS ``midas_loss.py``. EPFL-VILAB/omnidata
# ``omnidata_tools/torch/losses/midas_loss.py`` carries the same functions (with a ``+1e-6``
# on the determinant). Written out again below, following it exactly.


def compute_scale_and_shift(prediction: Tensor, target: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
    """Per-image least squares ``s * prediction + t ≈ target`` from the 2x2 normal equations."""
    # system matrix A = [[a_00, a_01], [a_01, a_11]], right-hand side b = [b_0, b_1]
    a_00 = torch.sum(mask * prediction * prediction, (1, 2))
    a_01 = torch.sum(mask * prediction, (1, 2))
    a_11 = torch.sum(mask, (1, 2))
    b_0 = torch.sum(mask * prediction * target, (1, 2))
    b_1 = torch.sum(mask * target, (1, 2))
    # x = A^-1 b where det(A) != 0, else 0
    x_0 = torch.zeros_like(b_0)
    x_1 = torch.zeros_like(b_1)
    det = a_00 * a_11 - a_01 * a_01
    valid = det.nonzero()
    x_0[valid] = (a_11[valid] * b_0[valid] - a_01[valid] * b_1[valid]) / det[valid]
    x_1[valid] = (-a_01[valid] * b_0[valid] + a_00[valid] * b_1[valid]) / det[valid]
    return x_0, x_1


def reduction_batch_based(image_loss: Tensor, M: Tensor) -> Union[int, Tensor]:
    """Sum of the images' losses over the batch's valid-pixel count (0 if there is none)."""
    divisor = torch.sum(M)
    if divisor == 0:
        return 0
    return torch.sum(image_loss) / divisor


def reduction_image_based(image_loss: Tensor, M: Tensor) -> Tensor:
    """Mean over images of each image's loss over its valid-pixel count."""
    valid = M.nonzero()
    image_loss[valid] = image_loss[valid] / M[valid]
    return torch.mean(image_loss)


def mse_loss(
    prediction: Tensor, target: Tensor, mask: Tensor, reduction: Callable = reduction_batch_based
) -> Union[int, Tensor]:
    M = torch.sum(mask, (1, 2))
    res = prediction - target
    image_loss = torch.sum(mask * res * res, (1, 2))
    return reduction(image_loss, 2 * M)


def gradient_loss(
    prediction: Tensor, target: Tensor, mask: Tensor, reduction: Callable = reduction_batch_based
) -> Union[int, Tensor]:
    M = torch.sum(mask, (1, 2))
    diff = prediction - target
    diff = torch.mul(mask, diff)
    grad_x = torch.abs(diff[:, :, 1:] - diff[:, :, :-1])
    mask_x = torch.mul(mask[:, :, 1:], mask[:, :, :-1])
    grad_x = torch.mul(mask_x, grad_x)
    grad_y = torch.abs(diff[:, 1:, :] - diff[:, :-1, :])
    mask_y = torch.mul(mask[:, 1:, :], mask[:, :-1, :])
    grad_y = torch.mul(mask_y, grad_y)
    image_loss = torch.sum(grad_x, (1, 2)) + torch.sum(grad_y, (1, 2))
    return reduction(image_loss, M)


class MidasDenseLoss(nn.Module):
    """MiDaS's ``ScaleAndShiftInvariantLoss(alpha=0.5, scales=4, reduction="batch-based")``.

    Least-squares scale and shift per image (:func:`compute_scale_and_shift`, normal
    equations with ``det.nonzero()``), ``mse_loss`` (``Σ mask·r² / (2 Σ M)``) plus
    ``alpha`` times ``GradientLoss``: forward differences of ``mask·r`` where both pixels
    are valid, at 4 scales (every ``2**s``-th pixel), each over its own ``Σ M``. Maps are
    ``(B, H, W)``; a channel dimension of size 1 is dropped first. ``mask`` may be bool
    (as in depthloss) or float.

    Source: see the comment above :func:`compute_scale_and_shift`.

    Relation to ``depthloss.MiDaSLoss(alpha, scales=4, operator="diff")`` (per-image
    least squares, per-image means, ``scope="image"``): depthloss's data term divides by
    ``M``, MiDaS's by ``2M``, so with every image non-empty
    ``MidasDenseLoss(reduction="image-based") == 0.5 * MiDaSLoss(alpha=1.0)`` for any masks,
    and the batch-based default equals it too when every image has the same number of
    valid pixels at each of the 4 levels (dense targets). depthloss's ``scope="batch"`` is
    *not* MiDaS's batch-based reduction: it fits one scale and shift to the whole batch.
    depthloss solves the fit in centred form (stabler in float32 than the normal equations
    here); the two agree to rounding in float64.
    """

    def __init__(self, alpha: float = 0.5, scales: int = 4, reduction: str = "batch-based") -> None:
        super().__init__()
        self.reduction = reduction_batch_based if reduction == "batch-based" else reduction_image_based
        self.alpha = alpha
        self.scales = scales
        self.prediction_ssi: Optional[Tensor] = None

    def data_loss(self, prediction: Tensor, target: Tensor, mask: Tensor) -> Union[int, Tensor]:
        return mse_loss(prediction, target, mask, reduction=self.reduction)

    def regularization_loss(self, prediction: Tensor, target: Tensor, mask: Tensor) -> Union[int, Tensor]:
        total: Union[int, Tensor] = 0
        for scale in range(self.scales):
            step = pow(2, scale)
            total += gradient_loss(
                prediction[:, ::step, ::step],
                target[:, ::step, ::step],
                mask[:, ::step, ::step],
                reduction=self.reduction,
            )
        return total

    def forward(self, prediction: Tensor, target: Tensor, mask: Tensor, progress: Progress = None) -> Tensor:
        if prediction.dim() == 4:
            prediction, target, mask = prediction[:, 0], target[:, 0], mask[:, 0]
        scale, shift = compute_scale_and_shift(prediction, target, mask)
        self.prediction_ssi = scale.view(-1, 1, 1) * prediction + shift.view(-1, 1, 1)
        total = self.data_loss(self.prediction_ssi, target, mask)
        if self.alpha > 0:
            total += self.alpha * self.regularization_loss(self.prediction_ssi, target, mask)
        return total  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------
# 6. the floor
# ---------------------------------------------------------------------------------------


def masked_l1_floor(pred: Tensor, target: Tensor, mask: Tensor, progress: Progress = None) -> Tensor:
    """Dense masked L1 over the batch, ``Σ mask·|pred - target| / Σ mask``: one read of each map.

    Not a loss anyone should train with here, but the memory-bound floor every loss's time
    is compared with. Same value as ``depthloss.functional.l1(..., scope="batch")``.
    ``progress`` is ignored (uniform benchmark signature).
    """
    return (pred - target).abs().mul(mask).sum() / mask.sum()


# ---------------------------------------------------------------------------------------
# the benchmark table
# ---------------------------------------------------------------------------------------


class BaselinePair(NamedTuple):
    """One row of :data:`BASELINES`.

    ``baseline()`` and ``depthloss()`` each build a callable ``f(pred, target, mask,
    progress=None)`` for the same tensors: ``input_space`` (``"inverse"`` or ``"depth"``)
    is what ``pred`` and ``target`` hold; ``mask`` is bool, already excluding invalid
    targets. ``notes`` state when the two values agree and what differs.
    """

    baseline: Callable[[], Callable[..., Any]]
    depthloss: Callable[[], Callable[..., Any]]
    input_space: str
    notes: str


def _depthloss_ssi_mae(pred: Tensor, target: Tensor, mask: Tensor, progress: Progress = None) -> Tensor:
    """``depthloss.functional.ssi_mae(trim=0)`` with the benchmark signature."""
    return DF.ssi_mae(pred, target, mask, trim=0.0)


def _depthloss_l1_batch(pred: Tensor, target: Tensor, mask: Tensor, progress: Progress = None) -> Tensor:
    """``depthloss.functional.l1(scope="batch")`` with the benchmark signature."""
    return DF.l1(pred, target, mask, scope="batch")


BASELINES: Dict[str, BaselinePair] = {
    "scale-adaptive": BaselinePair(
        baseline=SeedScaleAdaptiveLoss,
        depthloss=lambda: depthloss.ScaleAdaptiveLoss(gt_downsample="nearest", input_space="inverse"),
        input_space="inverse",
        notes=(
            "Seed sketch (bilinear prediction pyramid, nearest target pyramid, per-image loop "
            "MAD, x[mask] means, conv2d Sobel) vs depthloss with gt_downsample='nearest'. Uses "
            "progress. Same value at levels 0-1 on dense targets; from level 2 on bilinear (seed) "
            "and masked-mean (depthloss: the mean of each block's valid pixels, the area mean on "
            "dense targets) prediction pooling differ, and the seed pools its L1/gradient means over "
            "the batch while depthloss averages per-image means. Exact agreement: "
            "SeedScaleAdaptiveLoss(pred_downsample='area') with dense targets and equal valid "
            "counts per image (tests/test_baselines.py). depthloss's default gt_downsample='mean' "
            "matches the baseline's gt_downsample='mean'."
        ),
    ),
    "near-field-ssi-silog": BaselinePair(
        baseline=SeedNearFieldSSISilog,
        depthloss=lambda: depthloss.NearFieldSSISilog(scope="batch", input_space="inverse"),
        input_space="inverse",
        notes=(
            "Seed near-field SSI-SILog (x[mask], weighted-mean SSI, sqrt-weight SILog, gradient "
            "hooks, isnan/isinf fallback with a host sync) vs depthloss pooling the batch like "
            "the seed. Same value to ~1e-7 relative (eps placement). depthloss additionally "
            "computes the unweighted loss for its guard and its metrics on every call; its "
            "default scope='image' computes per-image statistics instead."
        ),
    ),
    "silog": BaselinePair(
        baseline=lambda: bool_index_silog,
        depthloss=lambda: depthloss.SILogLoss(eps=0.0, scope="batch", input_space="depth"),
        input_space="depth",
        notes=(
            "BTS silog_loss with x[mask] (batch-pooled) vs depthloss SILog with the same "
            "constants (lambd=0.85, ratio=10), eps=0 and scope='batch': same value."
        ),
    ),
    "ssi_mae": BaselinePair(
        baseline=lambda: loop_mad_l1,
        depthloss=lambda: _depthloss_ssi_mae,
        input_space="inverse",
        notes=(
            "Metric3D SSILoss (loop over images, x[b][mask[b]], torch.median, MAD L1) vs "
            "depthloss.functional.ssi_mae(trim=0) (the data term of 'ssi-trim' without its trim "
            "and gradient term). Same value up to ~eps/MAD relative (Metric3D divides by MAD + eps, "
            "depthloss by max(MAD, eps); ~1e-4 for inverse depths with MAD ~0.01) when every image "
            "has the same number of valid pixels; otherwise Metric3D weights images by their "
            "valid counts."
        ),
    ),
    "midas": BaselinePair(
        baseline=MidasDenseLoss,
        depthloss=lambda: depthloss.MiDaSLoss(alpha=1.0, input_space="inverse"),
        input_space="inverse",
        notes=(
            "Published MiDaS ScaleAndShiftInvariantLoss (alpha 0.5, 4 scales, batch-based) vs "
            "depthloss MiDaSLoss with alpha=1.0: baseline == 0.5 * depthloss (MiDaS's data term "
            "divides by 2M) when every image has the same number of valid pixels at each level "
            "(dense targets); MidasDenseLoss(reduction='image-based') == 0.5 * depthloss for any "
            "masks without empty images."
        ),
    ),
    "l1": BaselinePair(
        baseline=lambda: masked_l1_floor,
        depthloss=lambda: _depthloss_l1_batch,
        input_space="depth",
        notes=(
            "The memory-bound floor: dense masked L1 over the batch vs "
            "depthloss.functional.l1(scope='batch'); same value."
        ),
    ),
}
