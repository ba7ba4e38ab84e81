"""``torch.autograd.gradcheck`` (float64) of every differentiable building block.

Small maps with distinct values, away from the kinks of medians, ``abs`` and berHu's switch;
invalid pixels hold a finite junk value. The losses' own gradchecks are in ``tests/losses``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import pytest
import torch
from torch import Tensor
from torch.autograd.gradcheck import GradcheckError

import depthloss.functional as F


class Inputs(NamedTuple):
    pred: Tensor
    target: Tensor
    mask: Tensor
    weights: Tensor
    threshold: Tensor
    progress: Tensor


SHAPE = (2, 1, 5, 6)


def _gc_inputs(seed: int = 1) -> Inputs:
    """float64 maps in [0.5, 2] with distinct values; invalid pixels hold a finite junk value."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(SHAPE, generator=g) > 0.2
    mask[:, :, 1:4, 1:4] = True  # full 3x3 stencils exist, and plenty of valid pixels
    pred = 0.5 + 1.5 * torch.rand(SHAPE, generator=g, dtype=torch.float64)
    target = 0.5 + 1.5 * torch.rand(SHAPE, generator=g, dtype=torch.float64)
    weights = 0.2 + torch.rand(SHAPE, generator=g, dtype=torch.float64)
    return Inputs(
        pred=torch.where(mask, pred, 7.0),
        target=torch.where(mask, target, 9.0),
        mask=mask,
        weights=weights,
        threshold=torch.tensor(1.1, dtype=torch.float64),
        progress=torch.tensor(0.3, dtype=torch.float64),
    )


def _berhu_free_of_max(i: Inputs) -> Callable[..., Tensor]:
    """berHu with the per-image argmax of |d| held fixed: ``c`` is detached by definition, so
    perturbing the pixel that sets it would change ``c`` where the analytic gradient cannot see it."""
    d = torch.where(i.mask, (i.pred - i.target).abs(), -1.0).flatten(1)
    frozen = torch.zeros_like(d, dtype=torch.bool).scatter(1, d.argmax(1, keepdim=True), True).reshape(SHAPE)
    p0, t0 = i.pred.detach(), i.target.detach()

    def fn(p: Tensor, t: Tensor, w: Tensor) -> Tensor:
        return F.berhu(torch.where(frozen, p0, p), torch.where(frozen, t0, t), i.mask, w, reduction="none")

    return fn


Builder = Callable[[Inputs], Callable[..., Any]]


class Check(NamedTuple):
    """``build(inputs)`` gives the function to check; ``wrt`` names the inputs it is checked against."""

    build: Builder
    wrt: tuple[str, ...]
    fast: bool = False  # fast_mode: random projections of the Jacobian instead of all of it


PTW = ("pred", "target", "weights")
PT = ("pred", "target")


def _loss(kernel: Callable[..., Tensor], weighted: bool = True, **kw: Any) -> Builder:
    """``(p, t[, w]) -> kernel(p, t, mask[, w], reduction="none", **kw)``; weights go by keyword."""
    if weighted:
        return lambda i: lambda p, t, w: kernel(p, t, i.mask, weights=w, reduction="none", **kw)
    return lambda i: lambda p, t: kernel(p, t, i.mask, reduction="none", **kw)


def _near_field_weights(i: Inputs) -> Callable[..., Any]:
    return lambda d, th: tuple(F.near_field_weights(d, th, 4.0, 0.5, m) for m in ("smooth", "linear"))


def _downsample_sparse(i: Inputs) -> Callable[..., Any]:
    return lambda d: tuple(F.downsample_sparse(d, i.mask, 2, m).depth for m in ("mean", "min", "nearest"))


GRADCHECKS: dict[str, Check] = {
    "masked_mean": Check(lambda i: lambda x, w: F.masked_mean(x, i.mask, w), ("pred", "weights")),
    "masked_var": Check(lambda i: lambda x, w: F.masked_var(x, i.mask, w), ("pred", "weights")),
    "masked_median": Check(lambda i: lambda x: F.masked_median(x, i.mask), ("pred",)),
    "mad_normalize": Check(lambda i: lambda x: tuple(F.mad_normalize(x, i.mask)), ("pred",), fast=True),
    "lsq_scale_shift": Check(lambda i: lambda p, t, w: tuple(F.lsq_scale_shift(p, t, i.mask, w)), PTW),
    "sobel": Check(lambda i: lambda x: tuple(F.sobel(x)), ("pred",), fast=True),
    "gradient_matching_sobel": Check(
        lambda i: lambda r: F.gradient_matching(r, i.mask, scales=2, reduction="none"), ("pred",)
    ),
    "gradient_matching_diff": Check(
        lambda i: lambda r: F.gradient_matching(r, i.mask, scales=2, operator="diff", reduction="none"), ("pred",)
    ),
    "ssi": Check(_loss(F.ssi), PTW),
    "ssi_mae_trim0": Check(_loss(F.ssi_mae, weighted=False, trim=0.0), PT, fast=True),
    "ssi_mae_trim": Check(_loss(F.ssi_mae, weighted=False, trim=0.25), PT, fast=True),
    "ssi_lsq": Check(_loss(F.ssi_lsq), PTW),
    "silog": Check(_loss(F.silog), PTW),
    "l1": Check(_loss(F.l1), PTW),
    "mse": Check(_loss(F.mse), PTW),
    "abs_rel": Check(_loss(F.abs_rel), PTW),
    "berhu": Check(_berhu_free_of_max, PTW),
    "downsample": Check(
        lambda i: lambda x: (F.downsample(x, 2), F.downsample(x, 2, "bilinear")), ("target",), fast=True
    ),
    "downsample_sparse": Check(_downsample_sparse, ("pred",), fast=True),
    # even sizes take the strided 2x2 mean (odd ones avg_pool2d)
    "downsample_even": Check(lambda i: lambda x: F.downsample(x[..., :4, :], 2), ("target",)),
    "depth_to_inv": Check(
        lambda i: lambda d: F.depth_to_inv(torch.where(i.mask, d, 0.0), max_depth=1.9), ("pred",), fast=True
    ),
    "inv_to_depth": Check(
        lambda i: lambda d: F.inv_to_depth(torch.where(i.mask, d, 0.0), min_depth=0.6), ("pred",), fast=True
    ),
    "near_field_weights": Check(_near_field_weights, ("target", "threshold"), fast=True),
}


@pytest.mark.parametrize("name", sorted(GRADCHECKS))
def test_gradcheck(name):
    check = GRADCHECKS[name]
    inputs = _gc_inputs()
    fn = check.build(inputs)
    args = tuple(getattr(inputs, n).detach().clone().requires_grad_(True) for n in check.wrt)
    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=check.fast)


def test_gradcheck_would_catch_a_wrong_gradient():
    """The harness is sharp: a detached term (missing gradient) fails gradcheck."""
    i = _gc_inputs()
    x = i.pred.detach().clone().requires_grad_(True)

    def wrong(x: Tensor) -> Tensor:
        return F.masked_mean(x, i.mask) + F.masked_var(x.detach(), i.mask) + 0.0 * x.sum()

    with pytest.raises(GradcheckError):
        torch.autograd.gradcheck(wrong, (x,), eps=1e-6, atol=1e-6, rtol=1e-4)
