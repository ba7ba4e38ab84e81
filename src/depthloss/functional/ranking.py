r"""Pairwise ordinal ranking loss with edge-guided pair sampling (DIW; structure-guided ranking).

Pairs are a fixed number per image, drawn by :func:`ranking_pairs` (edge-guided pairs that
straddle image or depth edges, plus random pairs of distinct valid pixels), and enter the
loss as an explicit ``(B, P, 2)`` index tensor: validity is a pair weight, never an index.
"""

from __future__ import annotations

from typing import List, Literal, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from depthloss._checks import SCOPES, check_choice, check_depth_map, check_float, check_int, check_mask, check_reduction
from depthloss.functional._plumbing import (
    Reduction,
    Scope,
    autocast_off,
    compute_dtype,
    prepare,
    reduce_images,
    safe_div,
)
from depthloss.functional.image import sobel, sobel_mask
from depthloss.functional.sampling import check_generator, hashed_uniform, pick_valid, sample_distinct_pairs, uniform

__all__ = ["RankingTerms", "ordinal_labels", "ranking", "ranking_pairs", "ranking_terms", "reduce_ranking"]

Direction = Literal["gradient", "authors"]
PairDenominator = Literal["valid", "all"]


# -- checks -----------------------------------------------------------------------------------
def check_sampling_args(
    num_pairs: int,
    edge_fraction: float,
    min_distance: int,
    max_distance: int,
    edge_threshold: float,
    image_channel: Optional[int],
    direction: str,
) -> None:
    """Validate the pair-sampling hyper-parameters (:func:`ranking_pairs`)."""
    check_int("num_pairs", num_pairs, low=1)
    check_float("edge_fraction", edge_fraction, low=0.0, high=1.0)
    check_int("min_distance", min_distance, low=1)
    check_int("max_distance", max_distance, low=min_distance)
    check_float("edge_threshold", edge_threshold, low=0.0, high=1.0)
    if image_channel is not None:
        check_int("image_channel", image_channel, low=0)
    check_choice("direction", direction, ("gradient", "authors"))


def check_loss_args(tolerance: float, alpha: float, pair_denominator: str) -> None:
    """Validate the loss hyper-parameters (:func:`ranking`)."""
    check_float("tolerance", tolerance, low=0.0)
    check_float("alpha", alpha, low=0.0)
    check_choice("pair_denominator", pair_denominator, ("valid", "all"))


def check_image(image: Optional[Tensor], target: Tensor, name: str = "image") -> Optional[Tensor]:
    """``None``, or a floating ``(B, C, H, W)`` or ``(B, H, W)`` tensor with ``target``'s batch, size and device."""
    if image is None:
        return None
    if not isinstance(image, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or None, got {type(image).__name__}")
    if not image.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {image.dtype}")
    b, h, w = target.shape[0], target.shape[-2], target.shape[-1]
    if image.dim() not in (3, 4) or image.shape[0] != b or tuple(image.shape[-2:]) != (h, w):
        raise ValueError(
            f"{name} must have shape (B, C, H, W) or (B, H, W) = ({b}, C, {h}, {w}), got {tuple(image.shape)}"
        )
    if image.device != target.device:
        raise ValueError(f"{name} must be on the same device as target: expected {target.device}, got {image.device}")
    return image


def check_pairs(pairs: Tensor, pred: Tensor, name: str = "pairs") -> Tensor:
    """An int64 ``(B, P, 2)`` tensor on ``pred``'s device (values are not inspected)."""
    if not isinstance(pairs, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or None, got {type(pairs).__name__}")
    if pairs.dtype != torch.int64:
        raise TypeError(f"{name} must be an int64 tensor of flat pixel indices, got dtype {pairs.dtype}")
    if pairs.dim() != 3 or pairs.shape[0] != pred.shape[0] or pairs.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (B, P, 2) with B = {pred.shape[0]}, got {tuple(pairs.shape)}")
    if pairs.device != pred.device:
        raise ValueError(f"{name} must be on the same device as pred: expected {pred.device}, got {pairs.device}")
    return pairs


# -- sampling ---------------------------------------------------------------------------------
def _edges(
    target: Tensor, valid: Tensor, image: Optional[Tensor], image_channel: Optional[int]
) -> Tuple[Tensor, Tensor, Tensor]:
    """``(magnitude, gx, gy)`` of the guiding map, ``(B, H, W)``, 0 where no full valid 3x3 window."""
    b, h, w = target.shape[0], target.shape[-2], target.shape[-1]
    window = valid.reshape(b, h, w)  # only full 3x3 windows of valid pixels: junk never leaks
    if image is not None:
        if image.dim() == 3:  # one channel
            x = image
        else:
            x = image.mean(dim=1) if image_channel is None else image[:, image_channel]
        x = x.to(compute_dtype(x))
        x = torch.where(window, x, torch.zeros_like(x))
    else:  # log depth: edges measure relative depth jumps, the same for any scale of the target
        t = target.reshape(b, h, w).to(compute_dtype(target))
        x = torch.where(window, torch.log(torch.where(window, t, torch.ones_like(t))), torch.zeros_like(t))
    window = sobel_mask(window) if h >= 3 and w >= 3 else torch.zeros_like(window)
    gx, gy = sobel(x)
    magnitude = torch.where(window, torch.sqrt(gx * gx + gy * gy), torch.zeros_like(gx))
    return magnitude, gx, gy


@torch.no_grad()
def ranking_pairs(
    target: Tensor,
    mask: Optional[Tensor] = None,
    image: Optional[Tensor] = None,
    num_pairs: int = 4000,
    edge_fraction: float = 0.75,
    min_distance: int = 2,
    max_distance: int = 30,
    edge_threshold: float = 0.1,
    image_channel: Optional[int] = None,
    direction: Direction = "gradient",
    *,
    generator: Optional[torch.Generator] = None,
    seed: Optional[int] = None,
) -> Tensor:
    r"""Draw ``num_pairs`` pixel pairs per image: edge-guided pairs, then random pairs.

    **Edge-guided pairs** (Xian et al. 2020, "EGS"). Edges are the Sobel magnitude of the
    guiding map: the ``image`` (the mean of its channels, or channel ``image_channel``) when
    given, else the log of the target (a depth edge is a relative jump, so the edges do not
    change with the target's scale), where the whole 3x3 window is valid (the library's Sobel
    rule: values at invalid pixels, of the image too, never reach the loss). Edge pixels have
    a magnitude ``> 0`` and ``>= edge_threshold`` times the image's largest. ``K =
    floor(num_pairs * edge_fraction / 3)`` anchors are drawn uniformly among them (with
    replacement); around each, four points ``a, b, c, d`` lie on the line through the anchor
    along the gradient direction ``θ`` at signed distances ``-δ_a, -δ_b, +δ_c, +δ_d``, each
    ``δ`` uniform in ``{min_distance, ..., max_distance}`` (rounded to pixels, clamped to the
    image), giving the pairs ``(a, b), (b, c), (c, d)``: ``(b, c)`` straddles the edge.

    **Random pairs** ("RS"): the remaining ``num_pairs - 3K`` pairs are two distinct valid
    pixels, uniform (:func:`~depthloss.functional.sampling.sample_distinct_pairs`).

    Draws, in order: anchors ``(B, K)``, distances ``(B, 4, K)``, random pairs ``(B, R, 2)``,
    all float64 uniforms from ``generator`` (or the global RNG). With ``seed`` they come from
    a counter-based hash instead (:func:`~depthloss.functional.sampling.hashed_uniform`):
    the same pairs on every call, device and backend, traceable by ``torch.compile``, and the
    same uniforms for every image (an image's pairs do not depend on its place in the
    batch). Fixed shapes, no host sync.

    **Differences from the authors' code.** Their anchor count is the number of edge pixels
    and the random pairs as many (3 edge pairs per random pair: ``edge_fraction=0.75``); here
    both are fixed. Their Sobel ``y`` tap points up while rows grow down, so for oblique edges
    their line runs *along* the edge (``direction="authors"`` reproduces it; the default
    follows the paper: across the edge). They take the image's first channel
    (``image_channel=0``); here the channel mean. A flat guiding map has no edge pixels here
    (theirs: every pixel, with ``θ = 0``); their image edges also cover windows with invalid
    depth. Random pairs are independent draws of two distinct pixels (theirs: disjoint pairs
    of one permutation).

    Args:
        target: ``(B, 1, H, W)`` or ``(B, H, W)`` depth (positive where valid).
        mask: bool, same shape; ``None``: every pixel is valid. Pixels with a target ``<= 0``,
            NaN or inf are never valid.
        image: optional ``(B, C, H, W)`` guiding image (e.g. RGB), or ``(B, H, W)`` (one channel).
        num_pairs: pairs per image ``P`` (default 4000).
        edge_fraction: share of edge-guided pairs (default 0.75; 0 gives random pairs only).
        min_distance, max_distance: range of the point distances in pixels (default 2, 30).
        edge_threshold: edge pixels are ``>=`` this fraction of the largest magnitude (0.1).
        image_channel: channel of ``image`` that guides; ``None`` (default): their mean.
        direction: ``"gradient"`` (default) or ``"authors"`` (see above).
        generator: optional ``torch.Generator`` on the target's device.
        seed: optional ``int``: deterministic counter-based draws (``generator`` is then unused).

    Returns:
        int64 ``(B, P, 2)`` flat pixel indices into each image's ``H * W`` pixels; ``-1`` marks
        a pair that could not be drawn (no edge pixel, fewer than two valid pixels).

    Example:
        >>> target = torch.ones(1, 1, 8, 8)
        >>> target[..., 4:] = 2.0
        >>> pairs = ranking_pairs(target, num_pairs=6, edge_fraction=0.5, generator=torch.Generator().manual_seed(0))
        >>> pairs.shape, bool((pairs >= 0).all())
        (torch.Size([1, 6, 2]), True)
    """
    check_depth_map("target", target)
    check_mask(mask, target, "target")
    check_image(image, target)
    check_sampling_args(num_pairs, edge_fraction, min_distance, max_distance, edge_threshold, image_channel, direction)
    check_generator(generator, target)
    if seed is not None:
        check_int("seed", seed, low=0)
    if image is not None and image.dim() == 4 and image_channel is not None and image_channel >= image.shape[1]:
        raise ValueError(f"image_channel must be < the image's {image.shape[1]} channels, got {image_channel}")
    b, h, w = target.shape[0], target.shape[-2], target.shape[-1]
    n = h * w
    flat_t = target.reshape(b, n)
    positive = torch.isfinite(flat_t) & (flat_t > 0)
    valid = positive if mask is None else positive & mask.reshape(b, n)
    k = int(num_pairs * edge_fraction) // 3

    def draw(shape: Tuple[int, ...], stream: int) -> Tensor:
        if seed is not None:  # the same uniforms for every image
            return hashed_uniform(shape, target, seed, stream).expand(b, *shape)
        return uniform((b, *shape), target, generator, torch.float64)

    parts: List[Tensor] = []
    oks: List[Tensor] = []
    if k > 0:
        magnitude, gx, gy = _edges(target, valid, image, image_channel)
        flat = magnitude.reshape(b, n)
        top = flat.amax(dim=-1, keepdim=True) if n > 0 else flat.sum(dim=-1, keepdim=True)
        edge = (flat > 0) & (flat >= edge_threshold * top)
        anchors = pick_valid(edge, draw((k,), 1))
        row, col = anchors.index // w, anchors.index % w
        theta = torch.atan2(gy.reshape(b, n).gather(1, anchors.index), gx.reshape(b, n).gather(1, anchors.index))
        cos, sin = torch.cos(theta), torch.sin(theta)
        if direction == "authors":  # their y tap points up (rows grow down)
            sin = -sin
        u = draw((4, k), 2)
        span = max_distance - min_distance + 1
        dist = (min_distance + (u * span).floor()).clamp(max=max_distance)
        quarter = torch.arange(4, device=target.device).reshape(1, 4, 1)
        sign = torch.where(quarter < 2, -1.0, 1.0).to(torch.float64)  # a, b before the edge; c, d after
        dist = dist * sign
        cols = (col.unsqueeze(1) + torch.round(dist * cos.unsqueeze(1)).long()).clamp(0, w - 1)
        rows = (row.unsqueeze(1) + torch.round(dist * sin.unsqueeze(1)).long()).clamp(0, h - 1)
        points = rows * w + cols  # (B, 4, K): a, b, c, d
        first = points[:, 0:3].reshape(b, 3 * k)  # a, b, c
        second = points[:, 1:4].reshape(b, 3 * k)  # b, c, d
        parts.append(torch.stack([first, second], dim=-1))
        oks.append(anchors.ok.unsqueeze(1).expand(b, 3, k).reshape(b, 3 * k))
    r = num_pairs - 3 * k
    if r > 0:
        rand = sample_distinct_pairs(valid, r, u=draw((r, 2), 3))
        parts.append(rand.index)
        oks.append(rand.ok)
    pairs, ok = torch.cat(parts, dim=1), torch.cat(oks, dim=1)
    return torch.where(ok.unsqueeze(-1), pairs, torch.full_like(pairs, -1))


# -- the loss ---------------------------------------------------------------------------------
def ordinal_labels(target_a: Tensor, target_b: Tensor, tolerance: float) -> Tensor:
    """``+1`` where ``t_a / t_b >= 1 + tolerance``, ``-1`` where ``<= 1 / (1 + tolerance)``, else 0.

    Computed on log-ratios (``|log(t_a / t_b)| < log(1 + tolerance)`` is "equal", a band
    symmetric in log, so inverse depths give the same equal pairs with negated labels);
    ``t_a == t_b`` is always "equal", so ``tolerance=0`` gives ``sign(t_a - t_b)``. Targets
    must be positive.
    """
    log_ratio = torch.log(target_a) - torch.log(target_b)
    band = torch.log1p(torch.full((), tolerance, dtype=log_ratio.dtype, device=log_ratio.device))
    equal = (log_ratio.abs() < band) | (log_ratio == 0)
    return torch.where(equal, torch.zeros_like(log_ratio), torch.sign(log_ratio))


class RankingTerms(NamedTuple):
    """Per-image ``(B,)`` sums over the pairs (or ``(1,)`` under ``scope="batch"``)."""

    loss_sum: Tensor  # Σ w · ℓ over the pairs
    n_valid: Tensor  # pairs with both pixels valid (the weights' sum)
    n_drawn: Tensor  # pairs that were drawn (index >= 0), valid or not
    n_ordered: Tensor  # valid pairs with label ±1
    n_correct: Tensor  # ... whose prediction order agrees with the label
    n_pixels: Tensor  # valid pixels (the weights of reduction="pixel-mean")


def ranking_terms(
    pred: Tensor, target: Tensor, mask: Optional[Tensor], pairs: Tensor, tolerance: float, alpha: float, scope: str
) -> RankingTerms:
    """Per-pair losses weighted by the validity of both pixels, summed per image."""
    p = prepare(pred, target, mask, None, "image", fill=1.0)
    check_pairs(pairs, pred)
    n = p.pred.shape[-1]
    drawn = ((pairs >= 0) & (pairs < n)).all(dim=-1)  # (B, P)
    idx = pairs.clamp(min=0, max=max(n - 1, 0))
    ia, ib = idx[..., 0], idx[..., 1]
    positive = p.valid & torch.isfinite(p.target) & (p.target > 0)
    t = torch.where(positive, p.target, torch.ones_like(p.target))
    w = drawn & positive.gather(1, ia) & positive.gather(1, ib)
    label = ordinal_labels(t.gather(1, ia), t.gather(1, ib), tolerance)
    x = torch.where(positive, p.pred, torch.ones_like(p.pred))  # junk off the valid pixels never reaches a value
    z = x.gather(1, ia) - x.gather(1, ib)  # the loss sees pred only through differences
    per_pair = torch.where(label == 0, alpha * z * z, F.softplus(-label * z))
    wf = w.to(z.dtype)
    ordered = w & (label != 0)
    correct = ordered & (torch.sign(z) == label)
    sums = [
        (wf * per_pair).sum(-1), wf.sum(-1), drawn.to(z.dtype).sum(-1), ordered.sum(-1), correct.sum(-1),
        positive.sum(-1),
    ]  # fmt: skip
    if scope != "image":
        sums = [s.sum().reshape(1) for s in sums]
    return RankingTerms(*sums)


@autocast_off
def ranking(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    image: Optional[Tensor] = None,
    num_pairs: int = 4000,
    edge_fraction: float = 0.75,
    tolerance: float = 0.03,
    alpha: float = 1.0,
    min_distance: int = 2,
    max_distance: int = 30,
    edge_threshold: float = 0.1,
    image_channel: Optional[int] = None,
    direction: Direction = "gradient",
    pair_denominator: PairDenominator = "valid",
    *,
    pairs: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    seed: Optional[int] = None,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Pairwise ordinal ranking loss (DIW) on edge-guided and random pairs (structure-guided ranking).

    For the pairs :math:`(i, j)` of image :math:`b` with both pixels valid (:math:`w_{ij} = 1`),
    :math:`z = p_i - p_j` and the ordinal label :math:`r_{ij}` of the target
    (:func:`ordinal_labels`: ``+1`` if :math:`t_i / t_j \ge 1 + \sigma`, ``-1`` if
    :math:`\le 1 / (1 + \sigma)`, else 0):

    .. math:: \ell_{ij} = \begin{cases} \log(1 + e^{-r_{ij} z}) & r_{ij} \ne 0 \\
              \alpha z^2 & r_{ij} = 0 \end{cases} \qquad
              \mathcal L_b = \frac{\sum w_{ij} \ell_{ij}}{\sum w_{ij}}

    The pairs are ``pairs`` when given, else drawn by :func:`ranking_pairs` (``num_pairs``
    per image; the sampling arguments are passed on) from ``generator`` or the global RNG.

    **What is invariant.** The labels, hence the loss, are unchanged under ``target -> a *
    target`` (``a > 0``); with ``tolerance=0`` they are ``sign(t_i - t_j)``, unchanged under
    *any* strictly increasing map of the target (on fixed pairs, or pairs guided by an
    ``image``; target-guided edges move with a non-linear map). The loss depends on ``pred``
    only through differences (``pred -> pred + c`` changes nothing). Its value changes under
    other maps of ``pred``; the *set of correctly ordered pairs* (``sign(z) = r``, the
    module's ``pair_accuracy`` metric) does not, under any strictly increasing map of ``pred``.

    **Differences from the authors' code** (Xian et al.'s ``EdgeguidedRankingLoss``), and the
    options that reproduce it. They divide the sums by all sampled pairs, the invalid ones
    included (``pair_denominator="all"``); here the mean is over valid pairs, as the paper's
    loss over the pairs with ground truth. Their ratio adds ``1e-6`` to both depths (an
    absolute offset: it breaks the scale invariance; omitted), and at ``sigma=0`` they label
    equal depths ``+1`` (here 0). Sampling differences: :func:`ranking_pairs`. Images without
    a valid pair give 0 and are left out of ``reduction="mean"`` (they divide by all images).

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)``, in the target's space (larger = farther for depth).
        target: same shape, positive where valid. Depth and inverse depth give the same equal
            pairs (the band is symmetric in log) with negated labels; the module ranks depth.
        mask: bool, same shape; ``None``: every pixel is valid.
        image: optional ``(B, C, H, W)`` (or ``(B, H, W)``) guiding image; ``None``: edges of the target.
        num_pairs, edge_fraction, min_distance, max_distance, edge_threshold, image_channel, direction: sampling,
            see :func:`ranking_pairs` (ignored when ``pairs`` is given).
        tolerance: relative tolerance ``σ`` of "equal" depths (default 0.03, the authors').
        alpha: weight of the equal pairs' squared difference (default 1).
        pair_denominator: ``"valid"`` (default) or ``"all"`` (the authors': all drawn pairs).
        pairs: optional int64 ``(B, P, 2)`` flat pixel indices (``-1``: no pair), e.g. from
            :func:`ranking_pairs`; indices outside ``[0, H*W)`` count as no pair.
        generator: optional ``torch.Generator`` for the sampling (eager only: under
            ``torch.compile(fullgraph=True)`` torch 2.13 raises ``Unsupported`` for it; compile
            with the global RNG, a ``seed``, or pre-drawn ``pairs``).
        seed: optional ``int``: deterministic, traceable counter-based sampling instead.
        reduction: ``"mean"`` over images with a valid pair, ``"sum"``, ``"none"`` or
            ``"pixel-mean"`` (images weighted by their valid pixels, the library's convention).
        scope: ``"image"`` (default) or ``"batch"`` (one mean over the batch's pairs).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Reference:
        W. Chen et al., *Single-Image Depth Perception in the Wild*, NeurIPS 2016 (Eq. 1);
        K. Xian et al., *Structure-Guided Ranking Loss for Single Image Depth Prediction*,
        CVPR 2020, and the authors' ``ranking_loss.py`` (KexianHust/Structure-Guided-Ranking-Loss).

    Example:
        >>> target = torch.tensor([[[1.0, 2.0], [4.0, 4.05]]])
        >>> pairs = torch.tensor([[[0, 1], [1, 2], [2, 3]]])  # 1 < 2, 2 < 4, 4 ≈ 4.05
        >>> ranking(target, target, pairs=pairs)  # (log(1 + e^-1) + log(1 + e^-2) + 0.05^2) / 3
        tensor(0.1476)
        >>> ranking(target + 7.0, target, pairs=pairs)  # only differences of pred count
        tensor(0.1476)
    """
    check_loss_args(tolerance, alpha, pair_denominator)
    check_reduction(reduction, scope, SCOPES, "ranking")
    check_depth_map("pred", pred)
    if pairs is None:
        pairs = ranking_pairs(
            target, mask, image, num_pairs, edge_fraction, min_distance, max_distance, edge_threshold,
            image_channel, direction, generator=generator, seed=seed,
        )  # fmt: skip
    terms = ranking_terms(pred, target, mask, pairs, tolerance, alpha, scope)
    return reduce_ranking(terms, pair_denominator, reduction)


def reduce_ranking(terms: RankingTerms, pair_denominator: str, reduction: str) -> Tensor:
    """Per-image means over the pairs, reduced over images (``"pixel-mean"``: weighted by valid pixels)."""
    den = terms.n_valid if pair_denominator == "valid" else terms.n_drawn
    count = terms.n_pixels if reduction == "pixel-mean" else terms.n_valid
    return reduce_images(safe_div(terms.loss_sum, den), count, reduction)
