"""Confidence (uncertainty-head) loss: a predicted confidence regresses the prediction's own error."""

from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import Tensor

from depthloss._checks import SCOPES, check_choice, check_like, check_reduction
from depthloss.functional._plumbing import (
    Reduction,
    Scope,
    autocast_off,
    compute_dtype,
    prepare,
    reduce_images,
    rows,
    safe_div,
    safe_sqrt,
)
from depthloss.functional.statistics import lower_median

__all__ = ["confidence_loss"]

ConfidenceForm = Literal["metric3d", "unidepth"]
ConfidenceOutput = Literal["linear", "sqrt"]
#: UniDepth's ``output_fn="sqrt"``: ``sqrt(x + 1e-4)``
SQRT_OFFSET = 1e-4


@autocast_off
def confidence_loss(
    pred: Tensor,
    target: Tensor,
    confidence: Tensor,
    mask: Optional[Tensor] = None,
    form: ConfidenceForm = "metric3d",
    detach_pred: bool = True,
    rescale: bool = True,
    output: Optional[ConfidenceOutput] = None,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""L1 between a predicted per-pixel confidence (or uncertainty) and the prediction's error.

    ``form="metric3d"`` (default; Metric3D v2 ``ConfidenceLoss``): the confidence regresses
    ``1 - relative error`` on the pixels whose relative error is below 1,

    .. math:: \mathcal L = \frac{1}{|K|} \sum_{i \in K} \Big| c_i - \big(1 - \tfrac{|p_i - g_i|}{g_i}\big) \Big|,
              \qquad K = \{ i \text{ valid} : |g_i - p_i| < g_i \}

    ``form="unidepth"`` (UniDepth ``Confidence``): the predicted *uncertainty* regresses the
    absolute error of the median-rescaled prediction, then UniDepth's ``output_fn``:

    .. math:: \mathcal L = f\Big(\frac1n \sum_i \big|\, |\lambda p_i - g_i| - c_i \big|\Big), \qquad
              \lambda = \frac{\operatorname{med}(g)}{\operatorname{med}(p)} \text{ (or 1 without rescale)},
              \qquad f(x) = \sqrt{x + 10^{-4}}

    on depth maps (``pred``, ``target``: metric depth, ``target > 0`` where valid).

    **The prediction is detached by default** (``detach_pred=True``): the loss trains only
    the confidence head and cannot pull the depth prediction towards pixels where it is easy
    to be confident; the value is unchanged and ``pred`` gets an exactly zero (connected)
    gradient. **Difference from the authors' code:** neither Metric3D's ``ConfidenceLoss``
    nor UniDepth's ``Confidence`` detaches inside the loss; ``detach_pred=False`` reproduces
    that (the error target then back-propagates into the prediction).

    Other differences: Metric3D pools the whole batch (``scope="batch"`` reproduces it) and
    divides by ``|K| + 1e-6`` (here exactly ``|K|``, 0 when ``K`` is empty); its sync-ing NaN
    guard is unnecessary here. UniDepth's medians are ``torch.median`` (the lower median, as
    here) and its rescale keeps the gradient through the medians (as here with
    ``detach_pred=False``).

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` predicted depth.
        target: same shape, positive where valid.
        confidence: same shape, the predicted confidence (``"metric3d"``, in [0, 1] at the
            optimum) or uncertainty (``"unidepth"``, in metres).
        mask: bool, same shape; ``None`` means every pixel is valid.
        form: ``"metric3d"`` (default) or ``"unidepth"``.
        detach_pred: stop the gradient into ``pred`` (default ``True``).
        rescale: ``"unidepth"`` only: median-rescale the prediction first (default ``True``,
            UniDepth's default).
        output: ``"linear"`` or ``"sqrt"`` (``sqrt(x + 1e-4)`` of each image's mean);
            default ``None``: ``"linear"`` for ``"metric3d"``, ``"sqrt"`` for ``"unidepth"``
            (the authors' settings).
        reduction: ``"mean"`` over images with a counted pixel, ``"sum"``, ``"none"`` or ``"pixel-mean"``.
        scope: ``"image"`` (default) or ``"batch"`` (the batch pooled: Metric3D).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Reference:
        M. Hu et al., *Metric3D v2*, TPAMI 2024 (``mono/model/losses/ConfidenceLoss.py``);
        L. Piccinelli et al., *UniDepthV2*, 2025 (``unidepth/ops/losses/confidence.py``).

    Example:
        >>> target = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]])
        >>> pred = torch.tensor([[[1.1, 2.0], [3.0, 8.0]]])
        >>> confidence_loss(pred, target, torch.tensor([[[0.9, 1.0], [0.75, 1.0]]]))
        tensor(0.)
        >>> confidence_loss(pred, target, torch.ones_like(target))  # mean of 0.1, 0, 0.25, 0
        tensor(0.0875)
    """
    check_choice("form", form, ("metric3d", "unidepth"))
    if output is not None:
        check_choice("output", output, ("linear", "sqrt"))
    check_reduction(reduction, scope, SCOPES, "confidence_loss")
    check_like("confidence", confidence, "pred", pred)
    p = prepare(pred, target, mask, None, scope, fill=1.0)
    dtype = compute_dtype(p.pred, confidence)
    pr, tr = p.pred.to(dtype), p.target.to(dtype)
    c = torch.where(p.valid, rows(confidence, scope).to(dtype), 0.0)
    pe = pr.detach() if detach_pred else pr
    out = output or ("linear" if form == "metric3d" else "sqrt")
    if form == "metric3d":
        err = (pe - tr).abs()
        keep = p.valid & (err < tr)
        gt_conf = 1.0 - err / torch.where(keep, tr, 1.0)
        count = keep.sum(dim=-1)
        total = torch.where(keep, (c - gt_conf).abs(), 0.0).sum(dim=-1)
    else:
        if rescale:
            ratio = safe_div(lower_median(tr, p.valid, p.n_valid), lower_median(pe, p.valid, p.n_valid))
            pe = ratio.unsqueeze(-1) * pe
        count = p.n_valid
        total = torch.where(p.valid, ((pe - tr).abs() - c).abs(), 0.0).sum(dim=-1)
    value = safe_div(total, count.to(dtype))
    if out == "sqrt":
        value = torch.where(count > 0, safe_sqrt(value + SQRT_OFFSET), 0.0)
    if detach_pred:  # a connected, exactly zero gradient for pred (backward() works without the head)
        value = value + 0.0 * torch.where(p.valid, pr, 0.0).sum(dim=-1)
    return reduce_images(value, count, reduction)
