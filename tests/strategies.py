"""Reusable hypothesis strategies for depth-loss inputs.

Every tensor is built from a numpy array drawn by :func:`hypothesis.extra.numpy.arrays`
(mapped through :func:`torch.from_numpy`), so failing examples shrink towards small,
simple inputs: depth 1, dense masks, weight 0 or 1, small images.

Conventions (DESIGN §2): depth-like maps are ``(B, 1, H, W)`` or ``(B, H, W)`` with
``B`` in 1..3 and ``H, W`` in 1..12 (including sizes below the 3x3 Sobel stencil),
masks are bool tensors of the same shape, weights are non-negative floats.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple, Optional

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

__all__ = [
    "MASK_KINDS",
    "LossCase",
    "affine_params",
    "depth_maps",
    "inverse_depth_maps",
    "log_uniform",
    "loss_cases",
    "masks",
    "positive_scales",
    "shapes",
    "weight_maps",
]

Shape = tuple[int, ...]

#: the kinds of validity mask :func:`masks` draws
MASK_KINDS = ("full", "single", "random", "empty")

_LOG10_DEPTH = (-3.0, 3.0)  # depths span 1e-3 .. 1e3 metres


def shapes(
    min_batch: int = 1,
    max_batch: int = 3,
    min_side: int = 1,
    max_side: int = 12,
    channel_dim: Optional[bool] = None,
) -> st.SearchStrategy[Shape]:
    """``(B, 1, H, W)`` or ``(B, H, W)`` shapes; ``channel_dim`` forces one layout."""
    channel = st.booleans() if channel_dim is None else st.just(channel_dim)
    side = st.integers(min_side, max_side)
    return st.tuples(st.integers(min_batch, max_batch), side, side, channel).map(
        lambda t: (t[0], 1, t[1], t[2]) if t[3] else (t[0], t[1], t[2])
    )


def log_uniform(low: float = 1e-3, high: float = 1e3) -> st.SearchStrategy[float]:
    """Floats spread log-uniformly over ``[low, high]`` (drawn as a uniform exponent, so they shrink towards 1)."""
    lo, hi = math.log10(low), math.log10(high)
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False).map(lambda e: float(10.0**e))


# Strategies are cached per shape: building (and validating) a fresh strategy object inside
# every composite draw costs more than drawing from it.
_cache = functools.lru_cache(maxsize=4096)


@_cache
def _exponent_arrays(shape: Shape, lo: float, hi: float) -> st.SearchStrategy[np.ndarray]:
    """Arrays of exponents: free (hypothesis likes repeating values: ties) or all distinct."""
    elements = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    return st.one_of(
        arrays(np.float64, shape, elements=elements), arrays(np.float64, shape, elements=elements, unique=True)
    )


@st.composite
def _log_uniform_maps(draw: st.DrawFn, shape: Shape, low: float, high: float, constant: Optional[bool]) -> np.ndarray:
    a = np.power(10.0, draw(_exponent_arrays(shape, math.log10(low), math.log10(high))))
    if constant is False:
        return a
    b = shape[0]
    flat = np.ones(b, dtype=bool) if constant else draw(arrays(np.bool_, (b,), elements=st.booleans()))
    rows = a.reshape(b, -1)
    rows[flat] = rows[flat, :1]  # flat images repeat their first value
    return rows.reshape(shape)


@_cache
def depth_maps(
    shape: Shape,
    low: float = 1e-3,
    high: float = 1e3,
    dtype: torch.dtype = torch.float32,
    constant: Optional[bool] = None,
) -> st.SearchStrategy[torch.Tensor]:
    """Positive depths, log-uniform in ``[low, high]``, with ties or all distinct.

    ``constant=True`` makes every image flat (one value per image), ``False`` none, and
    ``None`` decides per image.
    """
    return _log_uniform_maps(shape, low, high, constant).map(lambda a: torch.from_numpy(a).to(dtype))


@_cache
def inverse_depth_maps(
    shape: Shape,
    low: float = 1e-3,
    high: float = 1e3,
    dtype: torch.dtype = torch.float32,
    constant: Optional[bool] = None,
) -> st.SearchStrategy[torch.Tensor]:
    """Inverse depths ``1 / d`` of :func:`depth_maps` (so in ``[1 / high, 1 / low]``)."""
    return depth_maps(shape, low, high, torch.float64, constant).map(lambda d: (1.0 / d).to(dtype))


@st.composite
def masks(
    draw: st.DrawFn,
    shape: Shape,
    kind: Optional[str] = None,
    density: Optional[float] = None,
) -> torch.Tensor:
    """Bool validity masks of kind ``"full"``, ``"single"`` (one valid pixel), ``"random"`` or ``"empty"``.

    ``kind=None`` draws one kind for the whole batch or, as ``"mixed"``, one per image (so
    batches mix empty and non-empty images). ``"random"`` masks draw a uniform score per
    pixel and keep pixels whose score is below ``density`` (drawn in ``[0, 1]`` per image
    when not given), so the density is controllable.
    """
    b, n = shape[0], math.prod(shape[1:])
    if kind is None:
        kind = draw(st.sampled_from(MASK_KINDS + ("mixed",)))
    kinds = [draw(st.sampled_from(MASK_KINDS)) for _ in range(b)] if kind == "mixed" else [kind] * b
    out = np.zeros((b, n), dtype=bool)
    for i, k in enumerate(kinds):
        if k == "full":
            out[i] = True
        elif k == "single":
            out[i, draw(st.integers(0, n - 1))] = True
        elif k == "random":
            d = draw(st.floats(0.0, 1.0)) if density is None else density
            out[i] = draw(_uniform_scores((n,))) < d
    return torch.from_numpy(out.reshape(shape))


@_cache
def _uniform_scores(shape: Shape) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.float64, shape, elements=st.floats(0.0, 1.0, exclude_max=True))


@_cache
def weight_maps(
    shape: Shape,
    high: float = 1e3,
    dtype: torch.dtype = torch.float32,
    min_positive: float = 0.0,
) -> st.SearchStrategy[torch.Tensor]:
    """Non-negative per-pixel weights, exact zeros included (often whole images of them).

    ``min_positive > 0`` keeps non-zero weights at least that large (no subnormals), for
    properties that rescale the weights and must not underflow.
    """
    any_positive = st.floats(min_positive, high, allow_nan=False, exclude_min=min_positive == 0.0)
    elements = st.one_of(st.just(0.0), any_positive, log_uniform(max(min_positive, 1e-3), high))
    return arrays(np.float64, shape, elements=elements).map(lambda a: torch.from_numpy(a).to(dtype))


def positive_scales(low: float = 1e-2, high: float = 1e2) -> st.SearchStrategy[float]:
    """A factor ``k > 0``, log-uniform in ``[low, high]``."""
    return log_uniform(low, high)


def affine_params(
    scale_range: tuple[float, float] = (1e-2, 1e2),
    max_shift: float = 10.0,
) -> st.SearchStrategy[tuple[float, float]]:
    """``(a, b)`` with ``a > 0`` log-uniform in ``scale_range`` and ``b`` in ``[-max_shift, max_shift]``."""
    return st.tuples(log_uniform(*scale_range), st.floats(-max_shift, max_shift, allow_nan=False))


class LossCase(NamedTuple):
    """One input of a pred/target loss: tensors of a common shape (``weights`` may be ``None``)."""

    pred: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor
    weights: Optional[torch.Tensor]


@st.composite
def loss_cases(
    draw: st.DrawFn,
    dtype: torch.dtype = torch.float32,
    space: str = "depth",
    with_weights: Optional[bool] = False,
    min_weight: float = 0.0,
    mask_kind: Optional[str] = None,
    poison_invalid: Optional[bool] = None,
    min_batch: int = 1,
    max_batch: int = 3,
    min_side: int = 1,
    max_side: int = 12,
    channel_dim: Optional[bool] = None,
) -> LossCase:
    """A prediction/target pair with a mask (and weights), ready for any pred/target kernel.

    Args:
        dtype: dtype of ``pred``, ``target`` and ``weights``.
        space: ``"depth"`` (log-uniform 1e-3..1e3) or ``"inverse"`` (its reciprocal).
        with_weights: ``True`` always draws weights, ``False`` never, ``None`` either.
        min_weight: smallest non-zero weight (see :func:`weight_maps`).
        mask_kind: one of :data:`MASK_KINDS`, or ``None`` for any.
        poison_invalid: store NaN / +-inf at invalid pixels of pred and target
            (``None``: sometimes).
    """
    shape = draw(shapes(min_batch, max_batch, min_side, max_side, channel_dim))
    maps = depth_maps if space == "depth" else inverse_depth_maps
    pred = draw(maps(shape, dtype=dtype))
    target = draw(maps(shape, dtype=dtype))
    mask = draw(masks(shape, kind=mask_kind))
    weights = None
    if with_weights or (with_weights is None and draw(st.booleans())):
        weights = draw(weight_maps(shape, dtype=dtype, min_positive=min_weight))
    poison = draw(st.booleans()) if poison_invalid is None else poison_invalid
    if poison:
        junk = st.sampled_from([math.nan, math.inf, -math.inf])
        pred = torch.where(mask, pred, torch.tensor(draw(junk), dtype=dtype))
        target = torch.where(mask, target, torch.tensor(draw(junk), dtype=dtype))
        if weights is not None:  # weights at invalid pixels are ignored too
            weights = torch.where(mask, weights, torch.tensor(draw(junk), dtype=dtype))
    return LossCase(pred, target, mask, weights)
