"""Randomized hierarchical depth normalization (Metric3D v2's ``HDNRandomLoss`` / ``HDSNRandomLoss``)."""

from __future__ import annotations

from typing import Any, Literal, Optional, Sequence, Tuple

import torch
from torch import Tensor

from depthloss._checks import SCOPES, check_choice, check_float, check_int, check_ordered, check_reduction
from depthloss.functional._plumbing import Reduction, Scope, autocast_off, prepare, reduce_images
from depthloss.functional.groups import (
    family_terms,
    group_ssi_sums,
    random_range_members,
    random_window_members,
    whole_members,
)
from depthloss.functional.hdn import Bins, Grouping, check_hdn_args, image_size, reduce_families
from depthloss.functional.sampling import check_generator, uniform

__all__ = ["hdn_random"]

WholeImage = Literal["spatial", "all", "none"]
#: uniforms per sample: 4 for a window (height, width, top, left), 2 for a depth range (start, end)
SAMPLE_COLUMNS = 6


def check_window_size(window_size: Any) -> Tuple[float, float]:
    """``(smallest, largest)`` window side as fractions of the image side, ``0 < smallest <= largest <= 1``."""
    if not isinstance(window_size, Sequence) or isinstance(window_size, str) or len(window_size) != 2:
        raise TypeError(f"window_size must be a pair (smallest, largest) of fractions, got {window_size!r}")
    lo = check_float("window_size[0]", window_size[0], low=0.0, high=1.0, low_inclusive=False)
    hi = check_float("window_size[1]", window_size[1], low=0.0, high=1.0, low_inclusive=False)
    check_ordered("window_size", lo, hi, strict=False, shown=window_size)
    return float(lo), float(hi)


def check_hdn_random_args(
    grouping: str, num_windows: int, num_ranges: int, bins: str, window_size: Any, whole_image: str, min_pixels: int,
    eps: float,
) -> Tuple[float, float]:  # fmt: skip
    """Validate the hyper-parameters of ``hdn_random``; returns ``window_size`` as floats."""
    check_hdn_args(grouping, bins, min_pixels, eps)
    check_int("num_windows", num_windows, low=1)
    check_int("num_ranges", num_ranges, low=1)
    check_choice("whole_image", whole_image, ("spatial", "all", "none"))
    return check_window_size(window_size)


def check_samples(samples: Any, pred: Tensor, name: str = "samples") -> None:
    """Pre-drawn uniforms: a floating ``(B, S, 6)`` tensor on ``pred``'s device, ``S >= 1``."""
    if samples is None:
        return
    if not isinstance(samples, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or None, got {type(samples).__name__}")
    if not samples.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {samples.dtype}")
    b = pred.shape[0]
    if (
        samples.dim() != 3
        or samples.shape[0] not in (1, b)
        or samples.shape[2] != SAMPLE_COLUMNS
        or samples.shape[1] < 1
    ):
        raise ValueError(
            f"{name} must have shape (B, S, {SAMPLE_COLUMNS}) = ({b}, S, {SAMPLE_COLUMNS}) or (1, S, {SAMPLE_COLUMNS}) "
            f"with S >= 1 (uniforms in [0, 1): window height, width, top, left, range start, end), "
            f"got {tuple(samples.shape)}"
        )
    if samples.device != pred.device:
        raise ValueError(f"{name} must be on the same device as pred: expected {pred.device}, got {samples.device}")


@autocast_off
def hdn_random(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor] = None,
    grouping: Grouping = "both",
    num_windows: int = 20,
    num_ranges: int = 10,
    bins: Bins = "range",
    window_size: Tuple[float, float] = (0.125, 0.5),
    whole_image: WholeImage = "spatial",
    min_pixels: int = 1,
    eps: float = 1e-6,
    samples: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    *,
    reduction: Reduction = "mean",
    scope: Scope = "image",
) -> Tensor:
    r"""Randomized HDN: SSI residuals normalized within random windows and random depth ranges.

    Metric3D v2 replaces the fixed hierarchy of :func:`hdn` by a fixed number of random
    contexts per image: ``num_windows`` windows (``HDSNRandomLoss``, plus the whole image)
    and ``num_ranges`` depth ranges (``HDNRandomLoss``). Each context ``c`` normalizes both
    maps by its own median and MAD over its valid pixels, and each family ``F`` gives

    .. math:: \mathcal L_F = \frac{\sum_{c \in F} \sum_{u \in c} |\hat p^c_u - \hat g^c_u|}{\sum_{c \in F} |c|}

    (a pixel counts once per context containing it); ``grouping="both"`` averages the two
    families (Metric3D v2's config weights both losses 0.5). Invariant to
    ``pred -> a*pred + b`` for ``a > 0`` given the same samples.

    **Sampling.** Fixed counts, sync-free: contexts are bool masks of fixed shape and a
    context smaller than ``min_pixels`` (an empty one included) is weighted 0. Each sample
    is six uniforms in ``[0, 1)``: a window's height and width in
    ``[window_size_0, window_size_1)`` of the image side and its top-left corner in
    ``[0, 1 - window_size_0)`` (see :func:`~depthloss.functional.groups.random_window_members`),
    and a range covering the fractions ``[a, b)`` of the valid depth span, ``a`` in
    ``[0, 0.75)``, ``b - a >= 0.1`` (:func:`~depthloss.functional.groups.random_range_members`).
    ``generator`` makes the draw deterministic; without one the global RNG is used (the only
    form that traces under ``torch.compile(fullgraph=True)``). ``samples`` passes pre-drawn
    uniforms ``(B, S, 6)`` (or ``(1, S, 6)``, shared by the batch as Metric3D shares its
    windows): ``S`` windows (columns 0-3) and ``S`` ranges (columns 4-5) per image, replacing ``num_windows``, ``num_ranges`` and the generator (draw them eagerly,
    e.g. ``torch.rand(B, S, 6, generator=g)``, to compile with a generator's samples).

    **Differences from the authors' code, and the options that reproduce it.** Metric3D's
    range end is drawn as ``uniform(start_depth + 0.1, 1)`` with the start in metres, not as a
    fraction: ranges nearly always run to the farthest depth; here the end is a fraction, as
    intended. Its window sizes and starts are drawn without replacement (an error on images
    under 16 pixels a side) and shared by the batch; here they are drawn with replacement
    per image. ``HDSNRandomLoss`` sums the MAD over the whole image's pixels, invalid ones
    included, but divides by the window's count: not reproduced (it reads invalid pixels);
    here the MAD is the window's. The prediction's median is detached there (not here: its
    gradient is the median pixel's). ``HDNRandomLoss`` has no whole-image context,
    ``HDSNRandomLoss`` has one: ``whole_image="spatial"`` (default), ``"all"`` or ``"none"``.
    Metric3D's statistics are per image and context; it pools only the final average over
    the batch: ``reduction="pixel-mean"``. It divides by ``MAD + 1e-6``
    (here ``max(MAD, eps * MAD_image)``, as in :func:`hdn`).

    Args:
        pred: ``(B, 1, H, W)`` or ``(B, H, W)`` depth (Metric3D applies HDN on depth).
        target: same shape.
        mask: bool, same shape; ``None`` means every pixel is valid.
        grouping: ``"depth"``, ``"spatial"`` or ``"both"`` (default).
        num_windows: random windows per image (default 20, Metric3D v2).
        num_ranges: random depth ranges per image (default 10, Metric3D v2).
        bins: ``"range"`` (default, Metric3D: fractions of ``[min, max]``) or ``"quantile"``
            (fractions of the sorted valid depths).
        window_size: ``(smallest, largest)`` window side as fractions (default ``(0.125, 0.5)``).
        whole_image: which families also hold the whole image as a context (default
            ``"spatial"``: Metric3D).
        min_pixels: smallest context that counts (default 1).
        eps: floor of every context's MAD relative to the image's MAD (default ``1e-6``).
        samples: optional pre-drawn uniforms ``(B, S, 6)`` or ``(1, S, 6)`` (under ``scope="batch"`` the first
            image's row is used).
        generator: optional ``torch.Generator`` on the input's device.
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, ``"none"``, or
            ``"pixel-mean"`` (the batch pooled: Metric3D).
        scope: ``"image"`` (default) or ``"batch"`` (contexts of the pooled batch).

    Returns:
        The loss; ``(B,)`` for ``reduction="none"``.

    Reference:
        M. Hu, W. Yin et al., *Metric3D v2*, TPAMI 2024, code: ``YvanYin/Metric3D``
        ``training/mono/model/losses/HDNL_random.py``, ``HDSNL_random.py``; C. Zhang et al.,
        *Hierarchical Normalization for Robust Monocular Depth Estimation*, NeurIPS 2022.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> target = 1.0 + torch.rand(2, 1, 16, 16, generator=g)
        >>> pred = target + 0.1 * torch.rand(2, 1, 16, 16, generator=g)
        >>> samples = torch.rand(2, 8, 6, generator=g)
        >>> loss = hdn_random(pred, target, samples=samples)
        >>> loss
        tensor(0.1892)
        >>> torch.allclose(hdn_random(3.0 * pred + 1.0, target, samples=samples), loss, atol=1e-6)
        True
    """
    size = check_hdn_random_args(grouping, num_windows, num_ranges, bins, window_size, whole_image, min_pixels, eps)
    check_reduction(reduction, scope, SCOPES, "hdn_random")
    check_generator(generator, pred)
    p = prepare(pred, target, mask, None, scope)
    check_samples(samples, pred)
    if p.pred.shape[-1] == 0:  # no pixels at all: 0, connected
        return reduce_images(p.pred.sum(dim=-1), p.n_valid, "sum" if reduction == "pixel-mean" else reduction)
    height, width = image_size(pred)
    rows = p.pred.shape[0]
    if samples is not None:
        u = samples.to(p.pred.dtype)
        u = u[:1] if scope != "image" else u.expand(rows, -1, -1)  # (1, S, 6): shared by the batch
        u_windows, u_ranges = u[..., 0:4], u[..., 4:6]
    else:
        u_windows = uniform((rows, num_windows, 4), p.pred, generator)
        u_ranges = uniform((rows, num_ranges, 2), p.pred, generator)
    terms = []
    if grouping in ("depth", "both"):
        members = random_range_members(p.target, p.valid, p.n_valid, u_ranges, bins)
        if whole_image == "all":
            members = torch.cat([members, whole_members(p.valid)], dim=1)
        terms.append(family_terms(group_ssi_sums(p.pred, p.target, p.valid, p.n_valid, members, eps), min_pixels))
    if grouping in ("spatial", "both"):
        members = random_window_members(p.valid, height, width, u_windows, size)
        if whole_image != "none":
            members = torch.cat([members, whole_members(p.valid)], dim=1)
        terms.append(family_terms(group_ssi_sums(p.pred, p.target, p.valid, p.n_valid, members, eps), min_pixels))
    return reduce_families(p, terms, reduction)
