"""Every public kernel compiles without graph breaks, and every differentiable kernel passes gradcheck.

``torch.compile(fullgraph=True)`` turns any graph break into an error, so these tests also
guard the "dense and sync-free" convention (DESIGN §2): ``.item()``, ``nonzero``, boolean
mask indexing and Python branches on tensor values all break the graph. The backend used
here is the eager backend (it runs the captured graph as is) plus a counter, which lets the
tests check that a new 0-dim ``threshold`` / ``progress`` value does not recompile.

Gradients are checked with :func:`torch.autograd.gradcheck` in float64 on small maps with
distinct values, away from the kinks of medians, trims, ``abs`` and berHu's switch.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple, Optional

import pytest
import torch
from torch import Tensor
from torch.autograd.gradcheck import GradcheckError

import depthloss.functional as F

# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------


class Inputs(NamedTuple):
    pred: Tensor
    target: Tensor
    mask: Tensor
    weights: Tensor
    threshold: Tensor
    progress: Tensor


def make_inputs(shape: tuple[int, ...] = (2, 1, 6, 7), dtype: torch.dtype = torch.float32, seed: int = 0) -> Inputs:
    """Positive maps with distinct values, a mask with invalid pixels, weights.

    The prediction is dense (a network's output); the target stores 0 at invalid pixels (the
    sparse "no return" convention). NaN/inf at invalid pixels are covered by test_properties.
    """
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(shape, generator=g) > 0.25
    mask[:, ..., 0, 0] = True  # every image has a valid pixel
    pred = 0.5 + 1.5 * torch.rand(shape, generator=g, dtype=dtype)
    target = 0.5 + 1.5 * torch.rand(shape, generator=g, dtype=dtype)
    weights = 0.1 + torch.rand(shape, generator=g, dtype=dtype)
    return Inputs(
        pred=pred,
        target=torch.where(mask, target, 0.0),
        mask=mask,
        weights=weights,
        threshold=torch.tensor(1.2, dtype=dtype),
        progress=torch.tensor(0.3, dtype=dtype),
    )


def flat_tensors(out: Any) -> list[Tensor]:
    """The tensors of a kernel's output (a tensor, a float, or a (named) tuple of them)."""
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, tuple):
        return [t for o in out for t in flat_tensors(o)]
    return []


# --------------------------------------------------------------------------------------
# torch.compile(fullgraph=True)
# --------------------------------------------------------------------------------------

Call = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor], Any]

# One entry per public kernel; several modes share one compiled frame where that is cheap.
CALLS: dict[str, Call] = {
    "abs_rel": lambda p, t, m, w, th, pr: F.abs_rel(p, t, m, w),
    "berhu": lambda p, t, m, w, th, pr: F.berhu(p, t, m, w, reduction="none"),
    "clamp_grad": lambda p, t, m, w, th, pr: (100.0 * F.clamp_grad(torch.where(m, p, 0.0), 0.5)).sum(),
    "depth_to_inv": lambda p, t, m, w, th, pr: F.depth_to_inv(p, min_depth=0.7, max_depth=1.8),
    "downsample": lambda p, t, m, w, th, pr: (F.downsample(t, 2), F.downsample(t, 3, "bilinear")),
    "downsample_sparse": lambda p, t, m, w, th, pr: tuple(
        F.downsample_sparse(p, m, 2, mode) for mode in ("mean", "min", "nearest")
    ),
    "gradient_matching": lambda p, t, m, w, th, pr: (
        F.gradient_matching(p - t, m, scales=2, operator="sobel"),
        F.gradient_matching(p - t, m, scales=3, operator="diff", reduction="none"),
    ),
    "inv_to_depth": lambda p, t, m, w, th, pr: F.inv_to_depth(p, max_depth=1.5),
    "l1": lambda p, t, m, w, th, pr: F.l1(p, t, m, w),
    "lsq_scale_shift": lambda p, t, m, w, th, pr: F.lsq_scale_shift(p, t, m, w),
    "mad_normalize": lambda p, t, m, w, th, pr: F.mad_normalize(p, m),
    "masked_mean": lambda p, t, m, w, th, pr: F.masked_mean(p, m, w),
    "masked_median": lambda p, t, m, w, th, pr: (F.masked_median(p, m), F.masked_median(p, m, scope="batch")),
    "masked_var": lambda p, t, m, w, th, pr: F.masked_var(p, m, w),
    "midas": lambda p, t, m, w, th, pr: F.midas(p, t, m),
    "mse": lambda p, t, m, w, th, pr: F.mse(p, t, m, w, scope="batch"),
    "near_field_ssi_silog": lambda p, t, m, w, th, pr: F.near_field_ssi_silog(p, t, m, pr),
    "near_field_weights": lambda p, t, m, w, th, pr: tuple(
        F.near_field_weights(t, th, 5.0, 0.3, mode) for mode in ("smooth", "linear", "step")
    ),
    "scale_adaptive": lambda p, t, m, w, th, pr: F.scale_adaptive(p, t, m, pr),
    "scale_weights": lambda p, t, m, w, th, pr: (F.scale_weights(pr, 4), F.scale_weights(pr, 3, "cosine")),
    "schedule": lambda p, t, m, w, th, pr: tuple(
        F.schedule(pr, kind, 1.0, 0.2) for kind in ("linear", "cosine", "step")
    ),
    "silog": lambda p, t, m, w, th, pr: F.silog(p, t, m, weights=w),
    "sobel": lambda p, t, m, w, th, pr: F.sobel(t),
    "sobel_mask": lambda p, t, m, w, th, pr: F.sobel_mask(m),
    "ssi": lambda p, t, m, w, th, pr: (F.ssi(p, t, m), F.ssi(p, t, m, alpha=0.0, weights=w)),
    "ssi_lsq": lambda p, t, m, w, th, pr: F.ssi_lsq(p, t, m, w),
    "ssi_mae": lambda p, t, m, w, th, pr: (F.ssi_mae(p, t, m), F.ssi_mae(p, t, m, trim=0.0, reduction="none")),
    "ssi_silog": lambda p, t, m, w, th, pr: F.ssi_silog(p, t, m),
    "ssi_trim": lambda p, t, m, w, th, pr: F.ssi_trim(p, t, m),
}

# kernels taking a 0-dim tensor hyper-parameter that must not be baked into the graph
RETUNED = {"near_field_weights", "scale_adaptive", "scale_weights", "schedule", "near_field_ssi_silog"}


def public_kernels() -> list[str]:
    return sorted(n for n in F.__all__ if inspect.isfunction(getattr(F, n)))


def test_every_public_kernel_is_covered():
    assert sorted(CALLS) == public_kernels()


class CountingEagerBackend:
    """The eager backend (runs the captured FX graph unchanged) that counts compiled frames."""

    def __init__(self) -> None:
        self.frames = 0

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: list[Tensor]) -> Callable[..., Any]:
        self.frames += 1
        return gm.forward


def _grads(out: Any, inputs: Inputs) -> list[Optional[Tensor]]:
    outs = [o for o in flat_tensors(out) if o.requires_grad]
    if not outs:
        return []
    total = sum((o * (1.0 + torch.arange(o.numel(), dtype=o.dtype).reshape(o.shape) / 7.0)).sum() for o in outs)
    leaves = [x for x in inputs if x.requires_grad]
    return list(torch.autograd.grad(total, leaves, allow_unused=True))


def _fresh(inputs: Inputs) -> Inputs:
    return Inputs(*(x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs))


def _assert_same(actual: Any, expected: Any, what: str) -> None:
    a, e = flat_tensors(actual), flat_tensors(expected)
    assert len(a) == len(e), what
    assert a, f"{what}: no tensor output"
    for x, y in zip(a, e):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-7, msg=lambda m: f"{what}: {m}")


@pytest.mark.parametrize("name", sorted(CALLS))
def test_compiles_without_graph_breaks_and_matches_eager(name):
    fn = CALLS[name]
    torch._dynamo.reset()
    backend = CountingEagerBackend()
    compiled = torch.compile(fn, fullgraph=True, backend=backend)

    eager_in, compiled_in = _fresh(make_inputs()), _fresh(make_inputs())
    expected = fn(*eager_in)
    actual = compiled(*compiled_in)  # fullgraph=True: a graph break raises here
    _assert_same(actual, expected, f"{name} forward")
    g_expected, g_actual = _grads(expected, eager_in), _grads(actual, compiled_in)
    assert len(g_actual) == len(g_expected)
    for ga, ge in zip(g_actual, g_expected):
        assert (ga is None) == (ge is None), f"{name}: gradient presence differs"
        if ge is not None:
            assert torch.isfinite(ga).all()
            torch.testing.assert_close(ga, ge, rtol=1e-6, atol=1e-7, msg=lambda m: f"{name} backward: {m}")
    assert backend.frames == 1, f"{name} compiled {backend.frames} frames"

    if name in RETUNED:
        # a different 0-dim threshold / progress reuses the compiled graph
        retuned = make_inputs()._replace(threshold=torch.tensor(0.8), progress=torch.tensor(0.9))
        _assert_same(compiled(*_fresh(retuned)), fn(*_fresh(retuned)), f"{name} retuned")
        assert backend.frames == 1, f"{name} recompiled for a new 0-dim tensor value"


# --------------------------------------------------------------------------------------
# gradcheck (float64)
# --------------------------------------------------------------------------------------

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
    "schedule": Check(
        lambda i: lambda p: tuple(F.schedule(p, k, 2.0, -1.0) for k in ("linear", "cosine")), ("progress",)
    ),
    "scale_weights": Check(lambda i: lambda p: (F.scale_weights(p, 4), F.scale_weights(p, 3, "cosine")), ("progress",)),
    # composite losses
    "midas": Check(_loss(F.midas, weighted=False), PT, fast=True),
    "ssi_trim": Check(_loss(F.ssi_trim, weighted=False), PT, fast=True),
    "ssi_silog": Check(_loss(F.ssi_silog, weighted=False), PT, fast=True),
    # its pixel weights come from the target and are detached by design: check pred only
    "near_field_ssi_silog": Check(
        lambda i: lambda p: F.near_field_ssi_silog(p, i.target, i.mask, i.progress, reduction="none"),
        ("pred",),
        fast=True,
    ),
    "scale_adaptive": Check(
        lambda i: lambda p, t: F.scale_adaptive(p, t, i.mask, i.progress, reduction="none"), PT, fast=True
    ),
    # the metric unit floored by the target's median (u = scale_floor·|med g| > MAD): its own gradient path
    "scale_adaptive_floored_unit": Check(
        lambda i: lambda p, t: F.scale_adaptive(p, t, i.mask, 0.6, reduction="none", scale_floor=1.0, num_scales=2),
        PT,
    ),
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


# --------------------------------------------------------------------------------------
# the fused inverse-depth pair sums behind the SSI-SILog family
# --------------------------------------------------------------------------------------


def _pair_sums_oracle(p: Tensor, t: Tensor, m: Tensor, floor: float, ceil: Optional[float], w: Tensor, u: Tensor):
    """The same eight sums by plain autograd ops on the valid pixels (boolean indexing is fine here)."""
    rows = []
    for pi, ti, mi, wi, ui in zip(p, t, m, w, u):
        d = pi[mi] - ti[mi]
        g = torch.log(ti[mi].clamp(min=floor, max=ceil) / pi[mi].clamp(min=floor, max=ceil))
        y = ui[mi] * g
        wd = wi[mi] * d
        rows.append(torch.stack([d.sum(), (d * d).sum(), g.sum(), (g * g).sum(), wd.sum(), (wd * d).sum(), y.sum(), (y * y).sum()]))
    return torch.stack(rows).T


@pytest.mark.parametrize("bounds", ((1e-6, None), (0.6, 1.7)), ids=("floor", "floor_ceil"))
def test_inverse_pair_sums_match_autograd_and_gradcheck(bounds: tuple) -> None:
    from depthloss.functional._pair_sums import inverse_pair_sums

    i = _gc_inputs(seed=4)
    floor, ceil = bounds
    p = i.pred.reshape(2, -1).detach().clone().requires_grad_(True)
    t = i.target.reshape(2, -1).detach().clone().requires_grad_(True)
    m = i.mask.reshape(2, -1)
    t_poisoned = torch.where(m, t, float("nan"))  # never read at invalid pixels, forward or backward
    w, u = 1.0 + i.weights.reshape(2, -1), 0.5 + i.weights.reshape(2, -1)
    got = torch.stack(list(inverse_pair_sums(p, t_poisoned, m, floor, ceil, w=w, u=u)))
    expected = _pair_sums_oracle(p, t, m, floor, ceil, w, u)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    probe = torch.arange(1.0, 17.0, dtype=torch.float64).reshape(8, 2)
    g_got = torch.autograd.grad((got * probe).sum(), (p, t))
    g_exp = torch.autograd.grad((expected * probe).sum(), (p, t))
    for a, b in zip(g_got, g_exp):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert bool((g_got[0][~m] == 0).all()) and bool((g_got[1][~m] == 0).all())

    def fn(pp: Tensor, tt: Tensor) -> tuple:
        return tuple(inverse_pair_sums(pp, tt, m, floor, ceil, w=w, u=u))

    assert torch.autograd.gradcheck(fn, (p.detach().clone().requires_grad_(True), t.detach().clone().requires_grad_(True)), eps=1e-6, atol=1e-6, rtol=1e-4)


# --------------------------------------------------------------------------------------
# second derivatives: correct, or a clear error (never silently wrong)
# --------------------------------------------------------------------------------------


def _registered_losses() -> list:
    """Every registered loss but berHu, whose threshold ``c = 0.2 max|d|`` is a detached maximum
    by definition, so no finite-difference second derivative matches it at any input."""
    import depthloss

    return [n for n in depthloss.list_losses() if n != "berhu"]


@pytest.mark.parametrize("name", _registered_losses())
def test_double_backward_is_correct_or_refused(name: str) -> None:
    """Fused first-order backward passes refuse ``create_graph=True``; the rest pass gradgradcheck."""
    import depthloss

    module = depthloss.get_loss(name, input_space="depth") if name in ("l1", "mse") else depthloss.get_loss(name)
    i = _gc_inputs(seed=6)
    target = i.target.detach()
    p = i.pred.detach().clone().requires_grad_(True)
    try:
        (g,) = torch.autograd.grad(module(p, target, i.mask), p, create_graph=True)
    except RuntimeError as err:
        assert "double backward" in str(err)
        return
    assert torch.autograd.gradgradcheck(lambda x: module(x, target, i.mask), (p,), atol=1e-6, rtol=1e-4)
