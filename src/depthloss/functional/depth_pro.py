"""Depth Pro's training objective: per-image trimmed MAE on inverse depth plus multi-scale derivative losses."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from depthloss._checks import SCOPES, check_float, check_reduction
from depthloss.functional._plumbing import Reduction, Scope, autocast_off, prepare, reduce_images, safe_div
from depthloss.functional.derivatives import check_derivative_args, derivative_error_sums, reduce_levels
from depthloss.functional.statistics import trimmed_sum_rows

__all__ = ["depth_pro"]

# (name, operator, power) of the derivative terms, in the paper's order
DERIVATIVE_TERMS = (("mage", "scharr", 1), ("male", "laplace", 1), ("msge", "scharr", 2))


def check_depth_pro_args(
    mae_weight: float, mage_weight: float, male_weight: float, msge_weight: float, trim: float, num_scales: int
) -> None:
    """Validate the hyper-parameters of :func:`depth_pro`."""
    for name, value in (
        ("mae_weight", mae_weight),
        ("mage_weight", mage_weight),
        ("male_weight", male_weight),
        ("msge_weight", msge_weight),
    ):
        check_float(name, value, low=0.0)
    check_float("trim", trim, low=0.0, high=1.0, high_inclusive=False)
    check_derivative_args(num_scales)


@autocast_off
def depth_pro(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    mae_weight: float = 1.0,
    mage_weight: float = 1.0,
    male_weight: float = 1.0,
    msge_weight: float = 1.0,
    trim: float = 0.2,
    num_scales: int = 6,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Depth Pro's objective on (canonical) inverse depth: trimmed MAE + MAGE + MALE + MSGE.

    .. math:: \mathcal L = w_{\mathrm{MAE}} \frac{1}{k} \sum_{k\ \text{smallest}} |C_i - \hat C_i|
              + w_{\mathrm{MAGE}} \mathcal L_{S,1,M} + w_{\mathrm{MALE}} \mathcal L_{L,1,M}
              + w_{\mathrm{MSGE}} \mathcal L_{S,2,M},
              \qquad k = n - \lfloor \text{trim} \cdot n \rfloor

    per image over its ``n`` valid pixels, with the multi-scale derivative losses of
    :func:`~depthloss.functional.mage.mage`, :func:`~depthloss.functional.male.male` and
    :func:`~depthloss.functional.msge.msge`. A weight of 0 drops its term (it is not computed).

    **The paper's curriculum** (Sec. 3.2): real-world data, whose ground truth holds outliers, use
    the MAE with the largest 20 % of the errors of each image discarded (``trim=0.2``, the
    default); synthetic data use the plain MAE (``trim=0``). The first stage adds the gradient
    loss on synthetic data; the second, on synthetic data only, uses MAE, MAGE, MALE and MSGE
    (all weights 1, the default here). The relative weights of the terms are not published;
    the authors released no training code (apple/ml-depth-pro holds inference and evaluation
    only). The paper's loss space is canonical inverse depth ``C = f_px / (w D)``: pass it as
    inverse depth to reproduce its scale. Real-data stage one: ``mage_weight=male_weight=
    msge_weight=0`` (or the MAGE weight alone); stage two: ``trim=0``.

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` (canonical) inverse depth.
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        mae_weight: weight of the trimmed MAE, ``>= 0`` (default 1).
        mage_weight: weight of MAGE (Scharr, ``p = 1``), ``>= 0`` (default 1).
        male_weight: weight of MALE (Laplace, ``p = 1``), ``>= 0`` (default 1).
        msge_weight: weight of MSGE (Scharr, ``p = 2``), ``>= 0`` (default 1).
        trim: fraction of the largest absolute errors discarded per image, in ``[0, 1)``
            (default 0.2, the paper's for real-world data); exact to 6 decimal places.
        num_scales: pyramid levels ``M >= 1`` of the derivative losses (default 6).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, ``"none"`` (``(B,)``),
            or ``"pixel-mean"``: every term and every level pooled over the batch (kept sums
            over kept counts, level sums over stencil counts).
        scope: ``"image"`` (default) or ``"batch"`` (one trim over the pooled batch, each level
            pooled; one value).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Reference:
        A. Bochkovskii et al., *Depth Pro: Sharp Monocular Metric Depth in Less Than a Second*,
        ICLR 2025 (arXiv:2410.02073), Sec. 3.2 "Training objectives".

    Example:
        >>> target = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])  # no 3x3 stencil fits
        >>> pred = target + torch.tensor([[[0.1, 0.1], [0.1, 0.1], [0.1, 5.0]]])
        >>> depth_pro(pred, target, trim=0.0), depth_pro(pred, target)  # the outlier is trimmed
        (tensor(0.9167), tensor(0.1000))
    """
    check_depth_pro_args(mae_weight, mage_weight, male_weight, msge_weight, trim, num_scales)
    check_reduction(reduction, scope, SCOPES, "depth-pro")
    p = prepare(pred, target, mask, None, scope)
    abs_err = (p.pred - p.target).abs()  # 0 at invalid pixels
    kept = trimmed_sum_rows(abs_err, p.valid, p.n_valid, trim)
    data_sum, data_den = mae_weight * kept.kept_sum, kept.keep.to(abs_err.dtype)

    images = (pred.shape[0], pred.shape[-2], pred.shape[-1])
    r = (p.pred - p.target).reshape(images)  # per image whatever the scope: derivatives are local
    valid = p.valid.reshape(images)
    n_valid = valid.flatten(1).sum(dim=1)
    weights = {"mage": mage_weight, "male": male_weight, "msge": msge_weight}
    derivative = torch.zeros_like(data_sum)  # (G,)
    pooled = torch.zeros((), dtype=abs_err.dtype, device=abs_err.device)
    for name, operator, power in DERIVATIVE_TERMS:
        if weights[name] == 0.0:
            continue
        sums, counts = derivative_error_sums(r, valid, operator, power, num_scales)
        if scope != "image":
            sums, counts = sums.sum(dim=0, keepdim=True), counts.sum(dim=0, keepdim=True)
        derivative = derivative + weights[name] * reduce_levels(sums, counts)
        pooled = (
            pooled + weights[name] * reduce_levels(sums.sum(dim=0, keepdim=True), counts.sum(dim=0, keepdim=True)).sum()
        )

    if reduction == "pixel-mean":  # each term and level pooled over the batch
        return safe_div(data_sum.sum(), data_den.sum()) + pooled
    return reduce_images(
        safe_div(data_sum, data_den) + derivative, n_valid if scope == "image" else p.n_valid, reduction
    )
