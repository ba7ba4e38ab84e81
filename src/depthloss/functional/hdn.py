"""Hierarchical depth normalization (HDN): SSI residuals normalized within depth ranges and windows."""

from __future__ import annotations

from typing import List, Literal, Optional, Tuple

import torch
from torch import Tensor

from depthloss._checks import SCOPES, check_choice, check_float, check_int, check_reduction
from depthloss.functional._plumbing import Pair, Reduction, Scope, autocast_off, prepare, reduce_images
from depthloss.functional.groups import (
    GroupSums,
    combine_families,
    depth_bin_ids,
    family_terms,
    grid_ids,
    partition_ssi_sums,
)

__all__ = ["hdn"]

Grouping = Literal["depth", "spatial", "both"]
Bins = Literal["quantile", "range"]
GROUPINGS = ("depth", "spatial", "both")
BINS = ("quantile", "range")


def check_hdn_args(grouping: str, bins: str, min_pixels: int, eps: float) -> None:
    """Validate the hyper-parameters shared by ``hdn`` and ``hdn_random``."""
    check_choice("grouping", grouping, GROUPINGS)
    check_choice("bins", bins, BINS)
    check_int("min_pixels", min_pixels, low=1)
    check_float("eps", eps, low=0.0, low_inclusive=False)


def image_size(pred: Tensor) -> Tuple[int, int]:
    """``(H, W)`` of a ``(B, 1, H, W)`` or ``(B, H, W)`` map."""
    return int(pred.shape[-2]), int(pred.shape[-1])


def reduce_families(p: Pair, terms: List[Tuple[Tensor, Tensor]], reduction: str) -> Tensor:
    """Per-image values (or the pooled batch for ``"pixel-mean"``) from the families' sums."""
    if reduction == "pixel-mean":
        return combine_families(tuple(terms), pooled=True)[0]
    value, size = combine_families(tuple(terms), pooled=False)
    return reduce_images(value, size, reduction)


@autocast_off
def hdn(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    grouping: Grouping = "both",
    levels: int = 3,
    bins: Bins = "quantile",
    min_pixels: int = 1,
    eps: float = 1e-6,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Hierarchical depth normalization loss (HDN, Zhang et al. 2022; Metric3D v2).

    Every *context* ``c`` (a group of valid pixels) normalizes prediction and target by its
    own median and mean absolute deviation; the loss is the mean absolute difference of the
    normalized maps over all (context, pixel) pairs:

    .. math:: \hat x^c_u = \frac{x_u - \operatorname{med}_c(x)}{\max\left(\tfrac{1}{|c|}\sum_{v \in c}
              |x_v - \operatorname{med}_c(x)|,\ \epsilon \operatorname{MAD}(x)\right)}, \qquad
              \mathcal L_F = \frac{\sum_{c \in F} \sum_{u \in c} |\hat p^c_u - \hat g^c_u|}{\sum_{c \in F} |c|}

    for a family ``F`` of contexts, medians (lower medians) and MADs over the context's valid
    pixels only. Level ``k = 0 .. levels - 1`` of the hierarchy holds

    - **depth** (HDN-DR): the valid target depths split into ``2^k`` bins, by quantile
      (``bins="quantile"``: equal counts, the paper's sorted-depth groups) or by equal-width
      ranges of ``[min, max]`` (``bins="range"``: Metric3D's ``HDNLoss``);
    - **spatial** (HDN-S): the image split into ``2^k x 2^k`` windows.

    Every valid pixel lies in one context per level, so :math:`\mathcal L_F` is also the
    per-pixel mean over its contexts (the paper's form). ``grouping="both"`` averages the
    depth and spatial losses (Metric3D v2 weights its two HDN losses 0.5 each). Level 0 is
    the whole image: ``levels=1`` is the image-level SSI MAE. A context's MAD is floored at
    ``eps`` times the image's MAD (a flat context normalizes to 0), so the loss is exactly
    invariant to ``pred -> a*pred + b`` for ``a > 0`` (contexts come from the target).

    **Differences from the authors' code, and the options that reproduce it.** Metric3D's
    ``HDNLoss`` splits depth ranges of equal width (``bins="range"``) and its last range is
    open, ``d < max + 1e-30``, which in float32 drops the largest depth from every context;
    here the last range is closed. It divides by ``MAD + 1e-8`` (absolute; here
    ``max(MAD, eps * MAD_image)``, relative, so a near-flat context cannot break the invariance). Its
    medians and MADs are per image and context (``scope="image"``); only the final average
    pools the batch: ``reduction="pixel-mean"`` is its form (every (context, pixel) pair of
    the batch counts once); the default averages per-image losses. Groups smaller than
    ``min_pixels`` are left out, by weight (default 1: every non-empty context counts, as in
    the authors' code; Metric3D drops its semantic groups of 500 pixels or fewer).

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` depth (Metric3D applies HDN on depth).
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        grouping: ``"depth"``, ``"spatial"`` or ``"both"`` (default).
        levels: hierarchy levels, ``>= 1`` (default 3, Metric3D's ``grid=3``: 1 + 2 + 4 depth
            contexts, 1 + 4 + 16 windows).
        bins: ``"quantile"`` (default) or ``"range"`` (Metric3D).
        min_pixels: smallest context that counts (default 1).
        eps: floor of every context's MAD relative to the image's MAD (default ``1e-6``).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, ``"none"``, or
            ``"pixel-mean"`` (the batch's (context, pixel) pairs pooled: Metric3D).
        scope: ``"image"`` (default) or ``"batch"``: contexts of the pooled batch (depth bins
            of the batch's depths; a window spans the same window of every image).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Reference:
        C. Zhang, W. Yin, Z. Wang, G. Yu, B. Fu, C. Shen, *Hierarchical Normalization for
        Robust Monocular Depth Estimation*, NeurIPS 2022; M. Hu, W. Yin et al., *Metric3D v2*,
        TPAMI 2024, code: ``YvanYin/Metric3D`` ``training/mono/model/losses/HDNL.py``,
        ``HDSNL.py``.

    Example:
        >>> target = torch.tensor([[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 9.0]]])
        >>> hdn(2.0 * target + 1.0, target)
        tensor(0.)
        >>> pred = target.clone()
        >>> pred[0, 0, 0] = 3.5
        >>> hdn(pred, target), hdn(pred, target, grouping="depth", levels=2)
        (tensor(0.3613), tensor(0.4420))
    """
    check_hdn_args(grouping, bins, min_pixels, eps)
    check_int("levels", levels, low=1)
    check_reduction(reduction, scope, SCOPES, "hdn")
    p = prepare(pred, target, mask, None, scope)
    if p.pred.shape[-1] == 0:  # no pixels at all: 0, connected
        return reduce_images(p.pred.sum(dim=-1), p.n_valid, "sum" if reduction == "pixel-mean" else reduction)
    height, width = image_size(pred)
    terms = []
    for family in ("depth", "spatial"):
        if grouping not in (family, "both"):
            continue
        levels_sums = []
        for k in range(levels):  # every level partitions the valid pixels
            if family == "depth":
                ids, parts = depth_bin_ids(p.target, p.valid, p.n_valid, k, bins), 2**k
            else:
                ids, parts = grid_ids(p.valid, height, width, k), 4**k
            levels_sums.append(partition_ssi_sums(p.pred, p.target, p.valid, p.n_valid, ids, parts, eps))
        sums = GroupSums(*(torch.cat(parts, dim=1) for parts in zip(*levels_sums)))
        terms.append(family_terms(sums, min_pixels))
    return reduce_families(p, terms, reduction)
