"""Near-field-weighted SSI-SILog: the seed's near-field analysis, its fixes implemented."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Dict, Literal, NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor

from depthloss._checks import (
    GLOBAL_SCOPES,
    check_choice,
    check_float,
    check_progress,
    check_reduction,
    check_ssi_silog_args,
    check_weights,
)
from depthloss.functional._plumbing import (
    GlobalScope,
    Pair,
    Progress,
    Reduction,
    all_reduce_min,
    all_reduce_sum,
    as_progress,
    autocast_off,
    prepare,
    reduce_images,
    rows,
    safe_div,
    safe_sqrt,
    valid_weights,
)
from depthloss.functional.depth import (
    DEFAULT_EPS,
    WEIGHT_MODES,
    WeightMode,
    check_depth_range,
    inverse_bounds,
    log_depth_ratio,
    near_field_weight_values,
    to_depth,
)
from depthloss.functional.grad_clip import clamp_grad
from depthloss.functional.schedules import SCHEDULE_KINDS, ScheduleKind, schedule
from depthloss.functional.statistics import Moments, moments

__all__ = ["NearFieldConfig", "near_field_ssi_silog"]

SsiWeighting = Literal["weighted-mean", "scaled-diff"]
SSI_WEIGHTINGS = ("weighted-mean", "scaled-diff")
WeightNorm = Literal["fixed", "batch"]
WEIGHT_NORMS = ("fixed", "batch")
Combine = Literal["sum", "split"]
COMBINES = ("sum", "split")

SILOG_EPS = 1e-8  # the seed's constant inside the square root
THRESHOLD_RANGE = (0.3, 3.0)  # the seed's issue 9: a scheduled threshold stays within [0.3 m, 3 m]


def _check_pair(name: str, value: Tuple[float, float], ordered: bool) -> None:
    """A pair of non-negative reals; ``ordered`` pairs are positive ``(low, high)`` with ``low <= high``."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair of numbers, got {value!r}")
    a = check_float(f"{name}[0]", value[0], low=0.0, low_inclusive=not ordered)
    b = check_float(f"{name}[1]", value[1], low=0.0, low_inclusive=not ordered)
    if ordered and a > b:
        raise ValueError(f"{name} must be (low, high) with low <= high, got {tuple(value)}")


@dataclass(frozen=True)
class NearFieldConfig:
    """Validated hyper-parameters of :func:`near_field_ssi_silog` (see its arguments)."""

    alpha: float = 0.85
    silog_ratio: float = 10.0
    silog_ratio2: float = 0.85
    ssi_weight: float = 0.7
    silog_weight: float = 0.3
    near_threshold: float = 1.0
    near_weight: float = 5.0
    transition: float = 0.3
    weight_mode: WeightMode = "smooth"
    ssi_weighting: SsiWeighting = "weighted-mean"
    ssi_weight_norm: WeightNorm = "fixed"
    ssi_weight_mean: float = 1.75
    silog_weight_clamp: Tuple[float, float] = (0.7, 2.0)
    ssi_weight_clamp: Tuple[float, float] = (0.5, 5.0)
    threshold_schedule: Optional[ScheduleKind] = None
    threshold_start: float = 0.5
    threshold_end: float = 1.5
    combine: Combine = "sum"
    split_weights: Tuple[float, float] = (0.7, 0.3)
    grad_clip: Optional[float] = None
    min_depth: Optional[float] = None
    max_depth: Optional[float] = None

    def __post_init__(self) -> None:
        check_ssi_silog_args(self.alpha, self.silog_ratio, self.silog_ratio2, self.ssi_weight, self.silog_weight)
        check_float("near_threshold", self.near_threshold, low=0.0, low_inclusive=False)
        check_float("near_weight", self.near_weight, low=1.0)
        check_float("transition", self.transition, low=0.0, low_inclusive=False)
        check_choice("weight_mode", self.weight_mode, WEIGHT_MODES)
        check_choice("ssi_weighting", self.ssi_weighting, SSI_WEIGHTINGS)
        check_choice("ssi_weight_norm", self.ssi_weight_norm, WEIGHT_NORMS)
        check_float("ssi_weight_mean", self.ssi_weight_mean, low=0.0, low_inclusive=False)
        _check_pair("silog_weight_clamp", self.silog_weight_clamp, ordered=True)
        _check_pair("ssi_weight_clamp", self.ssi_weight_clamp, ordered=True)
        if self.threshold_schedule is not None:
            check_choice("threshold_schedule", self.threshold_schedule, SCHEDULE_KINDS)
        check_float("threshold_start", self.threshold_start, low=0.0, low_inclusive=False)
        check_float("threshold_end", self.threshold_end, low=0.0, low_inclusive=False)
        check_choice("combine", self.combine, COMBINES)
        _check_pair("split_weights", self.split_weights, ordered=False)
        if self.grad_clip is not None:
            check_float("grad_clip", self.grad_clip, low=0.0, low_inclusive=False)
        check_depth_range(self.min_depth, self.max_depth)


class NearFieldTerms(NamedTuple):
    """Per-image loss, per-image valid counts, and a function computing the detached metrics."""

    value: Tensor
    n_valid: Tensor
    metrics: Callable[[], Dict[str, Tensor]]


def near_threshold_at(progress: Tensor, cfg: NearFieldConfig) -> Tensor:
    """The near/far threshold (metres) at ``progress``: fixed, or scheduled and clamped to [0.3, 3]."""
    if cfg.threshold_schedule is None:
        return torch.full_like(progress, cfg.near_threshold)
    return schedule(progress, cfg.threshold_schedule, cfg.threshold_start, cfg.threshold_end).clamp(*THRESHOLD_RANGE)


def near_field_pixel_weights(target_depth: Tensor, threshold: Tensor, cfg: NearFieldConfig) -> Tensor:
    """The near-field weights of a target depth map (any shape; see :func:`near_field_weights`)."""
    return near_field_weight_values(target_depth, threshold, cfg.near_weight, cfg.transition, cfg.weight_mode)


def _ssi_silog(d: Moments, g: Moments, cfg: NearFieldConfig) -> Tuple[Tensor, Tensor]:
    """SSI ``var(d) + alpha mean(d)^2`` and SILog ``r sqrt(E[g^2] - r2 E[g]^2 + 1e-8)`` from moments."""
    ssi = d.variance + cfg.alpha * d.mean**2
    silog = cfg.silog_ratio * safe_sqrt((g.second - cfg.silog_ratio2 * g.mean**2).clamp(min=0.0) + SILOG_EPS)
    return ssi, torch.where(g.sw > 0, silog, 0.0)


def near_field_terms(
    pred_inv: Tensor,
    target_inv: Tensor,
    mask: Optional[Tensor],
    progress: Progress,
    weights: Optional[Tensor],
    cfg: NearFieldConfig,
    scope: str,
) -> NearFieldTerms:
    """The loss per image and its metrics (hyper-parameters already validated)."""
    check_weights(weights, pred_inv, "pred_inv")
    if cfg.grad_clip is not None:
        pred_inv = clamp_grad(pred_inv, cfg.grad_clip)
    p = prepare(pred_inv, target_inv, mask, None, scope, fill=1.0, pred_name="pred_inv", target_name="target_inv")
    unit = p.w  # the valid pixels as 0/1 weights
    d = p.pred - p.target  # SSI residual on inverse depth; 0 at invalid pixels
    g = log_depth_ratio(p.pred, p.target, cfg.min_depth, cfg.max_depth)  # SILog residual on depth; 0 there too
    target_depth = 1.0 / p.target.clamp(*_inverse_clamp(cfg)).detach()  # weights and metrics only
    threshold = near_threshold_at(as_progress(progress, p.pred), cfg).to(p.pred.dtype)

    if weights is None:
        w = near_field_pixel_weights(target_depth, threshold, cfg)  # in [1, near_weight], finite
        weights_ok = torch.ones_like(p.n_valid, dtype=torch.bool)
    else:
        # Only explicit weights can make the weighted loss non-finite where the unweighted one is
        # finite (inf/NaN/negative): such an image is computed with unit weights (so no NaN reaches
        # the gradient: a `where` on a non-finite value alone would leak 0 * NaN), then replaced by
        # the unweighted baseline. Without a host sync (the seed's issue 4).
        w = torch.where(p.valid, rows(weights, scope).to(p.pred.dtype).detach(), 1.0)
        weights_ok = all_reduce_min((torch.isfinite(w) & (w >= 0)).all(dim=-1), scope)
        w = torch.where(weights_ok.unsqueeze(-1), w, 1.0)

    # SSI on inverse depth
    if cfg.ssi_weighting == "weighted-mean":  # weighted moments: the scale of w cancels
        w_ssi = valid_weights(p.valid, w, w.dtype, scope) if weights is not None else w * unit
        ssi = _ssi_silog(moments(d, w_ssi, scope), moments(g, unit, scope), cfg)[0]
    else:  # the seed's d * clamp(w / w_bar): for reproduction
        w_bar = _mean_weight(w, p, cfg)
        d_scaled = d * (w / w_bar).clamp(*cfg.ssi_weight_clamp)
        ssi = _ssi_silog(moments(d_scaled, unit, scope), moments(g, unit, scope), cfg)[0]
    # SILog on depth, the seed's issue 3: g scaled by u = sqrt(w) / mean(sqrt(w)), clamped
    root = torch.sqrt(w)
    (sum_root, n) = all_reduce_sum((root * unit).sum(dim=-1), p.n_valid.to(root.dtype), scope=scope)
    u = (root / safe_div(sum_root, n).clamp(min=1e-12).unsqueeze(-1)).clamp(*cfg.silog_weight_clamp)
    silog = _ssi_silog(moments(d, unit, scope), moments(u * g, unit, scope), cfg)[1]
    weighted = cfg.ssi_weight * ssi + cfg.silog_weight * silog

    # the unweighted SSI-SILog: the fallback of the non-finite guard
    base_ssi, base_silog = _ssi_silog(moments(d, unit, scope), moments(g, unit, scope), cfg)
    baseline = cfg.ssi_weight * base_ssi + cfg.silog_weight * base_silog
    if cfg.combine == "split":  # separate unweighted losses over near and far pixels, mixed 0.7 / 0.3
        near = unit * (target_depth < threshold).to(unit.dtype)
        far = unit - near
        near_loss = _weighted_ssi_silog(d, g, near, cfg, scope)
        far_loss = _weighted_ssi_silog(d, g, far, cfg, scope)
        n_near, n_all = all_reduce_sum(near.sum(dim=-1), p.n_valid.to(near.dtype), scope=scope)
        has_near, has_far = n_near > 0, (n_all - n_near) > 0
        both = cfg.split_weights[0] * near_loss + cfg.split_weights[1] * far_loss
        total = torch.where(has_near & has_far, both, torch.where(has_near, near_loss, far_loss))
    else:
        total = torch.where(weights_ok, weighted, baseline)
    # the seed's issue 4 without a host sync: a non-finite image falls back to the unweighted loss
    total = torch.where(torch.isfinite(total), total, baseline)
    values = tuple(v.detach() for v in (total, ssi, silog, baseline))
    compute = functools.partial(_metrics, p, target_depth, threshold.detach(), values, cfg)
    return NearFieldTerms(total, p.n_valid, compute)


def _inverse_clamp(cfg: NearFieldConfig) -> Tuple[float, Optional[float]]:
    low, high = inverse_bounds(cfg.min_depth, cfg.max_depth)
    return (DEFAULT_EPS if low is None else max(DEFAULT_EPS, low)), high


def _mean_weight(w: Tensor, p: Pair, cfg: NearFieldConfig) -> Union[float, Tensor]:
    """The seed's ``w_bar``: a ``"fixed"`` constant, or the ``"batch"`` mean weight of the valid pixels."""
    if cfg.ssi_weight_norm == "fixed":
        return cfg.ssi_weight_mean
    sum_w, n = all_reduce_sum((w * p.w).sum(), p.n_valid.sum().to(w.dtype), scope=p.scope)
    return safe_div(sum_w, n).clamp(min=torch.finfo(w.dtype).tiny)


def _weighted_ssi_silog(d: Tensor, g: Tensor, region: Tensor, cfg: NearFieldConfig, scope: str) -> Tensor:
    """The unweighted SSI-SILog over the pixels of a 0/1 ``region``."""
    ssi, silog = _ssi_silog(moments(d, region, scope), moments(g, region, scope), cfg)
    return cfg.ssi_weight * ssi + cfg.silog_weight * silog


def _metrics(
    p: Pair, target_depth: Tensor, threshold: Tensor, values: Tuple[Tensor, ...], cfg: NearFieldConfig
) -> Dict[str, Tensor]:
    """Detached batch metrics, computed only when read (:class:`~depthloss.nn.base.LazyMetrics`)."""
    total, ssi, silog, baseline = values
    with torch.no_grad():
        unit = p.w.detach()
        near = unit * (target_depth < threshold).to(unit.dtype)
        n_near, n_all = near.sum(), unit.sum()
        error = (to_depth(p.pred.detach(), cfg.min_depth, cfg.max_depth) - target_depth).abs()
        near_sum, all_sum = (error * near).sum(), (error * unit).sum()
        has_valid = (p.n_valid > 0).to(unit.dtype)

        def batch_mean(v: Tensor) -> Tensor:
            return safe_div((v * has_valid).sum(), has_valid.sum())

        return {
            "total": batch_mean(total),
            "ssi": batch_mean(ssi),
            "silog": batch_mean(silog),
            "baseline": batch_mean(baseline),
            "total_over_baseline": safe_div(batch_mean(total), batch_mean(baseline)),
            "near_ratio": safe_div(n_near, n_all),
            "near_mae": safe_div(near_sum, n_near),
            "far_mae": safe_div(all_sum - near_sum, n_all - n_near),
            "threshold_t": threshold,
        }


@autocast_off
def near_field_ssi_silog(
    pred_inv: Tensor,
    target_inv: Tensor,
    mask: Optional[Tensor] = None,
    progress: Progress = 0.0,
    weights: Optional[Tensor] = None,
    alpha: float = 0.85,
    silog_ratio: float = 10.0,
    silog_ratio2: float = 0.85,
    ssi_weight: float = 0.7,
    silog_weight: float = 0.3,
    near_threshold: float = 1.0,
    near_weight: float = 5.0,
    transition: float = 0.3,
    weight_mode: WeightMode = "smooth",
    ssi_weighting: SsiWeighting = "weighted-mean",
    ssi_weight_norm: WeightNorm = "fixed",
    ssi_weight_mean: float = 1.75,
    silog_weight_clamp: Tuple[float, float] = (0.7, 2.0),
    ssi_weight_clamp: Tuple[float, float] = (0.5, 5.0),
    threshold_schedule: Optional[ScheduleKind] = None,
    threshold_start: float = 0.5,
    threshold_end: float = 1.5,
    combine: Combine = "sum",
    split_weights: Tuple[float, float] = (0.7, 0.3),
    grad_clip: Optional[float] = None,
    min_depth: Optional[float] = None,
    max_depth: Optional[float] = None,
    *,
    reduction: Reduction = "mean",
    scope: GlobalScope = "image",
) -> Tensor:
    r"""Near-field-weighted SSI (inverse depth) + SILog (depth), the seed's analysis fixed.

    Weights :math:`w` come from the target depth in metres (:func:`near_field_weights`:
    ``near_weight`` closer than the threshold, 1 beyond, non-increasing), unless
    ``weights`` is given (e.g. computed once at full resolution for every scale).

    .. math:: \mathcal L = w_{ssi}\,\big(\operatorname{var}_w(d) + \alpha\,E_w[d]^2\big)
              + w_{silog}\,r\sqrt{E[(ug)^2] - r_2\,E[ug]^2 + 10^{-8}},
              \qquad u = \operatorname{clamp}\!\Big(\frac{\sqrt w}{\operatorname{mean}\sqrt w}, 0.7, 2\Big)

    with :math:`d = \hat\rho - \rho` on inverse depth and :math:`g = \log\hat z - \log z` on depth.

    - **SSI** on inverse depth: ``"weighted-mean"`` uses weighted moments
      :math:`\sum w d / \sum w` (the scale of ``w`` cancels; no batch-dependent
      normalization). ``"scaled-diff"`` keeps the seed's
      :math:`d \cdot \operatorname{clamp}(w / \bar w, 0.5, 5)` with :math:`\bar w` the
      ``"fixed"`` constant ``ssi_weight_mean`` or the ``"batch"`` mean (the seed's,
      batch-dependent): for reproduction only.
    - **SILog** on depth, exactly the seed's issue 3: ``g`` scaled by ``u`` (mean over the
      image's valid pixels, the batch's under ``scope="batch"``).
    - ``combine="split"``: separate unweighted SSI-SILog losses over near and far pixels
      mixed by ``split_weights`` (an image with only one region uses that region).
    - ``threshold_schedule``: the threshold follows ``schedule(progress, kind,
      threshold_start, threshold_end)`` clamped to [0.3, 3] m.
    - A non-finite image loss (e.g. from inf/NaN explicit ``weights``) falls back to the
      unweighted SSI-SILog, value and gradient (no host sync). ``grad_clip=c`` clamps the
      per-pixel gradient reaching ``pred_inv``.

    Deliberately *not* implemented: standardizing residuals before weighting (seed issue 8)
    makes the loss blind to error magnitude; BatchNorm momentum (issue 6-1) belongs to the
    model.

    Args:
        pred_inv: ``(B, 1, H, W)`` or ``(B, H, W)`` predicted inverse depth.
        target_inv: same shape, positive where valid.
        mask: bool, same shape; ``None`` means every pixel is valid.
        progress: training progress in ``[0, 1]`` (float or 0-dim tensor).
        weights: optional explicit per-pixel weights (replace the near-field weights).
        alpha: SSI mean weight (default 0.85).
        silog_ratio: SILog scale ``r`` (default 10).
        silog_ratio2: SILog variance weight ``r_2`` in ``[0, 1]`` (default 0.85).
        ssi_weight: weight of the SSI term (default 0.7).
        silog_weight: weight of the SILog term (default 0.3).
        near_threshold: near/far boundary in metres (default 1).
        near_weight: weight of near pixels, ``>= 1`` (default 5).
        transition: half-width of the smooth/linear transition in metres (default 0.3).
        weight_mode: ``"smooth"`` (default), ``"linear"`` or ``"step"``.
        ssi_weighting: ``"weighted-mean"`` (default) or ``"scaled-diff"`` (the seed's).
        ssi_weight_norm: ``"fixed"`` (default) or ``"batch"``: ``w_bar`` for ``"scaled-diff"``.
        ssi_weight_mean: the fixed ``w_bar`` (default 1.75, the seed's dataset value).
        silog_weight_clamp: clamp of ``u`` (default (0.7, 2.0)).
        ssi_weight_clamp: clamp of ``w / w_bar`` for ``"scaled-diff"`` (default (0.5, 5.0)).
        threshold_schedule: ``None`` (fixed threshold, default) or a schedule kind.
        threshold_start: scheduled threshold at progress 0 (default 0.5 m).
        threshold_end: scheduled threshold at progress 1 (default 1.5 m).
        combine: ``"sum"`` (default) or ``"split"``.
        split_weights: near/far mix for ``"split"`` (default (0.7, 0.3)).
        grad_clip: optional bound on the per-pixel gradient of ``pred_inv``.
        min_depth: optional lower depth clamp.
        max_depth: optional upper depth clamp.
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"``.
        scope: ``"image"`` (default), ``"batch"``, or ``"global"`` (the batch statistics
            summed over all ranks of the default process group).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Example:
        >>> target_inv = 1.0 / torch.tensor([[[0.5, 0.8], [2.0, 10.0]]])
        >>> near_field_ssi_silog(target_inv, target_inv) < 1e-3
        tensor(True)
    """
    check_progress(progress)
    cfg = NearFieldConfig(
        alpha, silog_ratio, silog_ratio2, ssi_weight, silog_weight, near_threshold, near_weight, transition,
        weight_mode, ssi_weighting, ssi_weight_norm, ssi_weight_mean, silog_weight_clamp, ssi_weight_clamp,
        threshold_schedule, threshold_start, threshold_end, combine, split_weights, grad_clip, min_depth, max_depth,
    )  # fmt: skip
    check_reduction(reduction, scope, GLOBAL_SCOPES, "near-field-ssi-silog")
    t = near_field_terms(pred_inv, target_inv, mask, progress, weights, cfg, scope)
    return reduce_images(t.value, t.n_valid, reduction)
