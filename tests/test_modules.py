"""Tests of the loss modules (``depthloss.nn``), parametrized over the registry.

Generic contracts (DESIGN §2, §4) are checked for every name in
``depthloss.list_losses()``: finiteness of loss and gradient on sparse and dense targets
in both input spaces, empty masks, invalid target values that must not leak, low
precision and autocast, float64 gradcheck, ``torch.compile(fullgraph=True)`` without
recompiling when ``progress`` changes, no input mutation, reductions, equivalence with the
registered functional kernel, metrics and hyper-parameter validation.

Then loss-specific behaviour: invariances, near-field weights, the seed's mistakes
(suffix matching, the reversed tanh weights, the gradient hook on a scalar loss, AbsRel
dividing by the prediction), NearFieldSSISilog and ScaleAdaptiveLoss options, and the
progress-dependent weights of the enhanced / progressive SSI losses.

Expected numbers are computed by hand (or by an independent formula written out in the
test); the code under test is only called to relate two of its own results (invariance,
module vs functional).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Iterator, Optional, Set, Tuple

import pytest
import torch
from torch import Tensor

import depthloss.functional as DF
from depthloss import (
    AbsRelLoss,
    EnhancedSSILoss,
    MiDaSLoss,
    NearFieldSSISilog,
    ProgressiveSSILoss,
    ScaleAdaptiveLoss,
    SILogLoss,
    SSILoss,
    SSISilogLoss,
    SSITrimLoss,
    get_loss,
    list_losses,
    loss_info,
)

NAMES = list_losses()
SPACES = ("inverse", "depth")
FUNCTIONAL_NAMES = [n for n in NAMES if loss_info(n).functional is not None]
PROGRESS_NAMES = [n for n in NAMES if loss_info(n).uses_progress]

NEAR_FIELD_METRICS = {
    "total",
    "ssi",
    "silog",
    "baseline",
    "total_over_baseline",
    "near_ratio",
    "near_mae",
    "far_mae",
    "threshold_t",
    "loss",
}


def scale_adaptive_metrics(num_scales: int) -> Set[str]:
    keys = {"alpha_t", "num_valid_pixels", "loss"}
    for level in range(num_scales):
        for suffix in ("loss", "l1", "grad", "valid_frac", "stencil_frac", "weight"):
            keys.add(f"level{level}_{suffix}")
    return keys


#: the metrics every registered loss must report (a new loss must add its entry here)
EXPECTED_METRICS: Dict[str, Set[str]] = {
    "l1": {"loss"},
    "mse": {"loss"},
    "berhu": {"loss"},
    "abs_rel": {"loss"},
    "silog": {"loss"},
    "ssi": {"loss"},
    "ssi-silog": {"ssi_component", "silog_component", "loss"},
    "enhanced-ssi": {"dynamic_ssi_weight", "dynamic_l1_weight", "ssi_component", "l1_component", "loss"},
    "progressive-ssi": {"dynamic_ssi_weight", "dynamic_l1_weight", "ssi_component", "l1_component", "loss"},
    "midas": {"data", "grad", "loss"},
    "ssi-trim": {"data", "grad", "loss"},
    "near-field-ssi-silog": NEAR_FIELD_METRICS,
    "scale-adaptive": scale_adaptive_metrics(4),
}


# ----------------------------------------------------------------------------------------
# input helpers
# ----------------------------------------------------------------------------------------
def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def to_input_space(depth: Tensor, space: str) -> Tensor:
    """Depth (0 = invalid) -> the module's input space, written out independently of depthloss."""
    if space == "depth":
        return depth.clone()
    safe = torch.where(depth > 0, depth, torch.ones_like(depth))
    return torch.where(depth > 0, 1.0 / safe, torch.zeros_like(depth))


def make_case(
    space: str,
    *,
    shape: Tuple[int, ...] = (2, 1, 16, 16),
    density: float = 1.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    low: float = 0.5,
    high: float = 5.0,
) -> Tuple[Tensor, Tensor, Tensor]:
    """``(pred, target, valid)`` in ``space``: target depth in [low, high] where valid, 0 elsewhere."""
    g = _gen(seed)
    depth_t = low + (high - low) * torch.rand(shape, generator=g, dtype=torch.float64)
    noise = 1.0 + 0.3 * (2.0 * torch.rand(shape, generator=g, dtype=torch.float64) - 1.0)
    depth_p = depth_t * noise
    if density < 1.0:
        valid = torch.rand(shape, generator=g) < density
    else:
        valid = torch.ones(shape, dtype=torch.bool)
    depth_t = torch.where(valid, depth_t, torch.zeros_like(depth_t))
    pred = to_input_space(depth_p, space).to(dtype)
    target = to_input_space(depth_t, space).to(dtype)
    return pred, target, valid


def build(name: str, space: str = "inverse", **kwargs: Any) -> torch.nn.Module:
    return get_loss(name, input_space=space, **kwargs)


def assert_tensor_equal(a: Tensor, b: Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=0.0, atol=0.0, equal_nan=True)


# ----------------------------------------------------------------------------------------
# finiteness, empty masks, invalid values
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("density", [0.05, 0.3, 1.0], ids=["sparse5", "sparse30", "dense"])
@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("name", NAMES)
def test_finite_loss_and_gradient(name: str, space: str, density: float) -> None:
    pred, target, valid = make_case(space, density=density, seed=1)
    assert valid.any()
    pred.requires_grad_(True)
    loss = build(name, space)(pred, target, progress=0.4)
    assert loss.shape == () and loss.dtype == torch.float32
    assert torch.isfinite(loss)
    loss.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
    assert pred.grad.abs().sum() > 0  # the valid pixels do get a gradient
    if name != "scale-adaptive":  # its dense prediction pyramid spreads gradient in blocks (tested below)
        assert (pred.grad[~valid] == 0).all(), "invalid pixels must receive exactly zero gradient"


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("name", NAMES)
def test_empty_mask_gives_zero_loss_and_zero_connected_gradient(name: str, space: str) -> None:
    pred, target, _ = make_case(space, seed=2)
    module = build(name, space)
    cases = [
        (torch.zeros_like(target), None),  # no return anywhere
        (target, torch.zeros_like(target, dtype=torch.bool)),  # valid target, user mask empty
    ]
    for tgt, mask in cases:
        p = pred.clone().requires_grad_(True)
        loss = module(p, tgt, mask, progress=0.5)
        assert loss.requires_grad, "the result must stay connected to the graph"
        assert loss.dtype == torch.float32
        assert_tensor_equal(loss.detach(), torch.zeros(()))
        loss.backward()
        assert_tensor_equal(p.grad, torch.zeros_like(p))
        none = build(name, space, reduction="none")(pred, tgt, mask)
        assert_tensor_equal(none, torch.zeros(pred.shape[0]))


def test_scale_adaptive_gradient_stays_in_blocks_with_valid_targets() -> None:
    """Invalid pixels whose coarsest pyramid block holds no valid target get exactly 0."""
    pred, target, valid = make_case("depth", shape=(2, 1, 16, 16), density=0.3, seed=3)
    valid[..., :8] = False  # columns 0..7: whole 8x8 blocks without a return (num_scales=4)
    target = torch.where(valid, target, torch.zeros_like(target))
    pred.requires_grad_(True)
    ScaleAdaptiveLoss(input_space="depth")(pred, target, progress=0.5).backward()
    assert (pred.grad[..., :8] == 0).all()
    assert (pred.grad[..., 8:] != 0).any()


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("name", NAMES)
def test_invalid_target_values_do_not_leak(name: str, space: str) -> None:
    pred, clean, valid = make_case(space, density=0.3, seed=4)
    invalid = ~valid
    junk = torch.tensor([0.0, float("nan"), float("inf"), float("-inf"), -1.0])
    idx = torch.arange(clean.numel()).reshape(clean.shape) % junk.numel()
    dirty = torch.where(invalid, junk[idx], clean)
    garbage = torch.where(invalid, torch.full_like(clean, 123.0), clean)  # finite, excluded by the mask
    module = build(name, space)
    results = []
    for tgt, mask in ((clean, None), (dirty, None), (garbage, valid)):
        p = pred.clone().requires_grad_(True)
        loss = module(p, tgt, mask, progress=0.3)
        loss.backward()
        results.append((loss.detach(), p.grad))
    assert torch.isfinite(results[0][0])
    for loss, grad in results[1:]:
        torch.testing.assert_close(loss, results[0][0], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(grad, results[0][1], rtol=1e-6, atol=1e-7)
        assert torch.isfinite(grad).all()


# ----------------------------------------------------------------------------------------
# precision
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision_inputs_compute_in_float32(name: str, dtype: torch.dtype) -> None:
    for space in SPACES:
        pred, target, _ = make_case(space, density=0.3, seed=5)
        module = build(name, space)
        p_low = pred.to(dtype).requires_grad_(True)
        loss = module(p_low, target.to(dtype), progress=0.3)
        assert loss.dtype == torch.float32
        assert torch.isfinite(loss)
        loss.backward()
        assert p_low.grad.dtype == dtype and torch.isfinite(p_low.grad).all()
        # same rounded values, computed in float32 from the start
        reference = module(pred.to(dtype).float(), target.to(dtype).float(), progress=0.3)
        torch.testing.assert_close(loss.detach(), reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_runs_inside_bf16_autocast(name: str) -> None:
    pred, target, _ = make_case("inverse", density=0.3, seed=6)
    module = build(name, "inverse")
    expected = module(pred, target, progress=0.6)
    p = pred.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = module(p, target, progress=0.6)
        # an upstream op under autocast hands the loss a bf16 prediction
        p_bf16 = torch.matmul(p, torch.eye(pred.shape[-1]))
        loss_bf16 = module(p_bf16, target, progress=0.6)
    assert p_bf16.dtype == torch.bfloat16
    assert loss.dtype == torch.float32 and loss_bf16.dtype == torch.float32
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-5, atol=1e-6)
    expected_bf16 = module(p_bf16.detach().float(), target, progress=0.6)
    torch.testing.assert_close(loss_bf16.detach(), expected_bf16, rtol=1e-5, atol=1e-6)
    (loss + loss_bf16).backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


# ----------------------------------------------------------------------------------------
# float64 gradcheck
# ----------------------------------------------------------------------------------------
#: small pyramids keep gradcheck cheap (the radix-select medians cost per call, not per pixel)
GRADCHECK_KWARGS: Dict[str, Dict[str, Any]] = {
    "scale-adaptive": {"num_scales": 2},
    "midas": {"scales": 2},
    "ssi-trim": {"scales": 2},
}
#: median-based losses: a smaller image (each forward costs several radix selects)
GRADCHECK_SHAPES: Dict[str, Tuple[int, ...]] = {
    "scale-adaptive": (2, 1, 6, 6),
    "ssi-trim": (2, 1, 6, 6),
}


def gradcheck_case(space: str, shape: Tuple[int, ...], seed: int = 7) -> Tuple[Tensor, Tensor]:
    """Dense float64 inputs with distinct values; every |pred - target| is at least 5% of target."""
    g = _gen(seed)
    depth_t = 0.5 + 4.0 * torch.rand(shape, generator=g, dtype=torch.float64)
    rel = 0.05 + 0.25 * torch.rand(shape, generator=g, dtype=torch.float64)
    sign = torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0).to(torch.float64)
    depth_p = depth_t * (1.0 + sign * rel)
    return to_input_space(depth_p, space), to_input_space(depth_t, space)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """gradcheck runs hundreds of forwards on tiny tensors, where intra-op threads only add
    synchronization overhead (a lot of it on a loaded 2-core machine); restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("name", [n for n in NAMES if n != "berhu"])
def test_gradcheck_float64(name: str, space: str) -> None:
    shape = GRADCHECK_SHAPES.get(name, (2, 1, 8, 8))
    pred, target = gradcheck_case(space, shape)
    module = build(name, space, **GRADCHECK_KWARGS.get(name, {}))
    pred.requires_grad_(True)
    assert module(pred, target, progress=0.3).dtype == torch.float64
    assert torch.autograd.gradcheck(lambda x: module(x, target, progress=0.3), (pred,), eps=1e-6, atol=1e-5)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("space", SPACES)
def test_gradcheck_berhu_with_fixed_threshold_pixel(space: str) -> None:
    """berHu's ``c = 0.2 max|d|`` is detached by definition, so the largest-residual pixel is
    held fixed (not an input of the check); the rest covers both branches, away from the kinks
    ``d = 0`` and ``|d| = c``."""
    shape = (2, 1, 8, 8)
    g = _gen(8)
    target = 0.5 + 2.0 * torch.rand(shape, generator=g, dtype=torch.float64)
    magnitude = torch.where(
        torch.rand(shape, generator=g) < 0.5,
        0.05 + 0.8 * torch.rand(shape, generator=g, dtype=torch.float64),  # linear branch, c = 1
        1.2 + 0.8 * torch.rand(shape, generator=g, dtype=torch.float64),  # quadratic branch
    )
    sign = torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0).to(torch.float64)
    outlier = torch.zeros(shape, dtype=torch.bool)
    outlier[:, :, 3, 4] = True
    magnitude = torch.where(outlier, torch.full_like(magnitude, 5.0), magnitude)  # c = 0.2 * 5 = 1
    fixed = target + sign * magnitude
    module = build("berhu", space)

    def loss_of(x: Tensor) -> Tensor:
        return module(torch.where(outlier, fixed, x), target)

    x = fixed.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(loss_of, (x,), eps=1e-6, atol=1e-5)


# ----------------------------------------------------------------------------------------
# torch.compile
# ----------------------------------------------------------------------------------------
#: scale-adaptive: a 2-level pyramid compiles faster; near-field: make progress matter, and
#: clamp the gradient (the autograd.Function must compile too)
COMPILE_KWARGS: Dict[str, Dict[str, Any]] = {
    "scale-adaptive": {"num_scales": 2},
    "near-field-ssi-silog": {
        "threshold_schedule": "linear",
        "threshold_start": 0.3,
        "threshold_end": 3.0,
        "grad_clip": 1e-3,
    },
}


@pytest.mark.parametrize("name", NAMES)
def test_compile_fullgraph_matches_eager_without_recompiling_on_progress(name: str) -> None:
    torch._dynamo.reset()  # all modules share DepthLoss.forward: stay clear of the recompile limit
    graphs = []

    def backend(gm: torch.fx.GraphModule, example_inputs: Any) -> Callable[..., Any]:
        graphs.append(gm)
        return gm.forward

    kwargs = COMPILE_KWARGS.get(name, {})
    module = build(name, "inverse", **kwargs)
    eager = build(name, "inverse", **kwargs)
    try:
        _check_compiled(name, module, eager, torch.compile(module, fullgraph=True, backend=backend), graphs)
    finally:
        torch._dynamo.reset()


def _check_compiled(
    name: str, module: torch.nn.Module, eager: torch.nn.Module, compiled: Callable[..., Tensor], graphs: list
) -> None:
    pred, target, _ = make_case("inverse", density=0.3, seed=9)

    def run(fn: Callable[..., Tensor], progress: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        p = pred.clone().requires_grad_(True)
        loss = fn(p, target) if progress is None else fn(p, target, progress=progress)
        loss.backward()
        return loss.detach(), p.grad

    values = []
    for value in (0.25, 0.75):  # progress as a 0-dim tensor
        got, expected = run(compiled, torch.tensor(value)), run(eager, torch.tensor(value))
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(module.metrics["loss"], got[0])
        # metrics are computed eagerly inside the graph, lazily (LazyMetrics) outside it
        assert set(module.metrics) == set(eager.metrics)
        for key in eager.metrics:
            torch.testing.assert_close(module.metrics[key], eager.metrics[key], rtol=1e-5, atol=1e-6)
        values.append(got[0])
    assert len(graphs) == 1, "a new progress tensor value must not recompile"
    for value in (0.7, 0.2):  # progress through the module attribute
        module.progress = value
        eager.progress = value
        got, expected = run(compiled, None), run(eager, None)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
        values.append(got[0])
    assert len(graphs) == 2, "changing module.progress must not recompile"
    if name in PROGRESS_NAMES:  # the value does flow into the compiled graph
        assert not torch.allclose(values[0], values[1])
        assert not torch.allclose(values[2], values[3])


# ----------------------------------------------------------------------------------------
# no mutation, reductions
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("name", NAMES)
def test_inputs_not_mutated(name: str, space: str) -> None:
    pred, target, valid = make_case(space, density=0.3, seed=10)
    target = torch.where(valid | (torch.arange(target.numel()).reshape(target.shape) % 2 == 0), target, float("nan"))
    mask = valid.clone()
    mask[0, 0, :2] = False
    p = pred.clone().requires_grad_(True)
    copies = (pred.clone(), target.clone(), mask.clone())
    module = build(name, space)
    extra: Dict[str, Tensor] = {}
    if name == "near-field-ssi-silog":
        extra["weights"] = torch.rand(pred.shape, generator=_gen(1)) + 1.0
    weight_copy = {k: v.clone() for k, v in extra.items()}
    progress = torch.tensor(0.5)
    module(p, target, mask, progress, **extra).backward()
    assert_tensor_equal(p.detach(), copies[0])
    assert_tensor_equal(target, copies[1])
    assert_tensor_equal(mask, copies[2])
    for k, v in extra.items():
        assert_tensor_equal(v, weight_copy[k])
    assert_tensor_equal(progress, torch.tensor(0.5))
    assert_tensor_equal(module.progress, torch.tensor(0.0))  # an explicit progress leaves the attribute alone


@pytest.mark.parametrize("name", NAMES)
def test_reductions(name: str) -> None:
    pred, target, _ = make_case("inverse", shape=(3, 1, 12, 12), density=0.5, seed=11)
    target[1] = 0.0  # image 1 has no valid pixel
    per_image = build(name, reduction="none")(pred, target, progress=0.3)
    mean = build(name, reduction="mean")(pred, target, progress=0.3)
    total = build(name, reduction="sum")(pred, target, progress=0.3)
    assert per_image.shape == (3,) and mean.shape == () and total.shape == ()
    assert per_image[1] == 0.0
    assert per_image[0] != per_image[2]
    torch.testing.assert_close(mean, (per_image[0] + per_image[2]) / 2.0)
    torch.testing.assert_close(total, per_image.sum())
    # per-image statistics: an image's value does not depend on the rest of the batch
    alone = build(name, reduction="none")(pred[2:], target[2:], progress=0.3)
    torch.testing.assert_close(alone, per_image[2:], rtol=1e-5, atol=1e-6)
    pooled = build(name, scope="batch")(pred, target, progress=0.3)
    assert pooled.shape == () and torch.isfinite(pooled)
    with pytest.raises(ValueError, match="reduction"):
        build(name, scope="batch", reduction="none")


# ----------------------------------------------------------------------------------------
# module == functional
# ----------------------------------------------------------------------------------------
def _depth(x: Tensor, space: str, lo: Optional[float] = None, hi: Optional[float] = None) -> Tensor:
    """What the modules' to_space(x, "depth") does: invert if needed, clamp positive values."""
    d = x if space == "depth" else to_input_space(x, "inverse")  # 1/x where x > 0, else 0
    if lo is None and hi is None:
        return d
    return torch.where(d > 0, d.clamp(min=lo, max=hi), d)


def _inverse(x: Tensor, space: str, lo: Optional[float] = None, hi: Optional[float] = None) -> Tensor:
    """What the modules' to_space(x, "inverse") does: the depth range [lo, hi] clamps inverse input to
    [1/hi, 1/lo]; depth input is clamped, then inverted."""
    if space == "inverse":
        if lo is None and hi is None:
            return x
        return torch.where(x > 0, x.clamp(min=1.0 / hi, max=1.0 / lo), x)
    d = x if lo is None and hi is None else torch.where(x > 0, x.clamp(min=lo, max=hi), x)
    return to_input_space(d, "inverse")


#: per loss: (module kwargs, expected(pred, target, valid, space, progress) written out from its compute)
FUNCTIONAL_CASES: Dict[str, Tuple[Dict[str, Any], Callable[..., Tensor]]] = {
    "l1": ({}, lambda p, t, m, s, pr: DF.l1(p, t, m, reduction="none")),
    "mse": ({}, lambda p, t, m, s, pr: DF.mse(p, t, m, reduction="none")),
    "berhu": ({"threshold": 0.35}, lambda p, t, m, s, pr: DF.berhu(p, t, m, threshold=0.35, reduction="none")),
    "abs_rel": ({}, lambda p, t, m, s, pr: DF.abs_rel(_depth(p, s), _depth(t, s), m, reduction="none")),
    "silog": (
        {"lambd": 0.5, "ratio": 3.0, "eps": 1e-6},
        lambda p, t, m, s, pr: DF.silog(_depth(p, s), _depth(t, s), m, 0.5, 3.0, eps=1e-6, reduction="none"),
    ),
    "ssi": ({"alpha": 0.3}, lambda p, t, m, s, pr: DF.ssi(_inverse(p, s), _inverse(t, s), m, 0.3, reduction="none")),
    "ssi-silog": (
        {"alpha": 0.5, "silog_ratio": 5.0, "silog_ratio2": 0.6, "ssi_weight": 0.4, "silog_weight": 0.6,
         "min_depth": 0.8, "max_depth": 4.0},
        lambda p, t, m, s, pr: DF.ssi_silog(
            _inverse(p, s, 0.8, 4.0), _inverse(t, s, 0.8, 4.0), m, 0.5, 5.0, 0.6, 0.4, 0.6,
            min_depth=0.8, max_depth=4.0, reduction="none",
        ),
    ),
    "midas": (
        {"alpha": 0.7, "scales": 2, "operator": "sobel"},
        lambda p, t, m, s, pr: DF.midas(_inverse(p, s), _inverse(t, s), m, 0.7, 2, "sobel", reduction="none"),
    ),
    "ssi-trim": (
        {"trim": 0.3, "alpha": 0.25, "scales": 3, "operator": "diff", "eps": 1e-5},
        lambda p, t, m, s, pr: DF.ssi_trim(
            _inverse(p, s), _inverse(t, s), m, 0.3, 0.25, 3, "diff", 1e-5, reduction="none"
        ),
    ),
    "scale-adaptive": (
        {"min_depth": 0.8, "max_depth": 4.0, "lambda_sg": 0.3, "num_scales": 3, "gt_downsample": "min",
         "alpha_schedule": "cosine"},
        lambda p, t, m, s, pr: DF.scale_adaptive(
            _depth(p, s, 0.8, 4.0), _depth(t, s, 0.8, 4.0), m, pr, lambda_sg=0.3, num_scales=3,
            gt_downsample="min", alpha_schedule="cosine", reduction="none",
        ),
    ),
    "near-field-ssi-silog": (
        {"near_weight": 3.0, "weight_mode": "linear", "near_threshold": 2.0, "transition": 0.5,
         "min_depth": 0.8, "max_depth": 4.0, "alpha": 0.6},
        lambda p, t, m, s, pr: DF.near_field_ssi_silog(
            _inverse(p, s, 0.8, 4.0), _inverse(t, s, 0.8, 4.0), m, pr, near_weight=3.0, weight_mode="linear",
            near_threshold=2.0, transition=0.5, min_depth=0.8, max_depth=4.0, alpha=0.6, reduction="none",
        ),
    ),
}


def test_every_functional_loss_has_an_equivalence_case() -> None:
    assert set(FUNCTIONAL_CASES) == set(FUNCTIONAL_NAMES)


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("name", FUNCTIONAL_NAMES)
def test_module_equals_functional(name: str, space: str) -> None:
    kwargs, expected_fn = FUNCTIONAL_CASES[name]
    pred, target, _ = make_case(space, shape=(2, 1, 12, 12), density=0.6, seed=12)
    valid = target > 0  # written out: the module adds isfinite & > 0
    module = build(name, space, reduction="none", **kwargs)
    got = module(pred, target, progress=0.4)
    expected = expected_fn(pred, target, valid, space, 0.4)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)
    assert got.abs().min() > 0


@pytest.mark.parametrize("space", SPACES)
def test_scale_adaptive_inverse_mode_equals_functional(space: str) -> None:
    pred, target, _ = make_case(space, shape=(2, 1, 12, 12), density=0.6, seed=13)
    valid = target > 0
    got = ScaleAdaptiveLoss(input_space=space, use_inv_depth=True, reduction="none")(pred, target, progress=0.6)
    # default clamp [0.1, 100] m does not bind for depths in [0.35, 6.5]
    expected = DF.scale_adaptive(_inverse(pred, space), _inverse(target, space), valid, 0.6, reduction="none")
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)
    in_depth = ScaleAdaptiveLoss(input_space=space, reduction="none")(pred, target, progress=0.6)
    assert not torch.allclose(got, in_depth)


@pytest.mark.parametrize("space", SPACES)
def test_near_field_module_with_explicit_weights_equals_functional(space: str) -> None:
    pred, target, _ = make_case(space, shape=(2, 1, 10, 10), density=0.6, seed=14)
    weights = 1.0 + 3.0 * torch.rand(pred.shape, generator=_gen(2))
    got = NearFieldSSISilog(input_space=space, reduction="none")(pred, target, weights=weights)
    expected = DF.near_field_ssi_silog(_inverse(pred, space), _inverse(target, space), target > 0, 0.0, weights,
                                       reduction="none")
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------------------
# metrics
# ----------------------------------------------------------------------------------------
def test_every_registered_loss_documents_its_metrics() -> None:
    assert set(EXPECTED_METRICS) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_metrics_are_detached_tensors_updated_on_each_call(name: str) -> None:
    module = build(name)
    assert module.metrics == {}
    snapshots = []
    for seed, progress in ((15, 0.2), (16, 0.9)):
        pred, target, _ = make_case("inverse", density=0.4, seed=seed)
        p = pred.clone().requires_grad_(True)
        loss = module(p, target, progress=progress)
        metrics = module.metrics
        assert set(metrics) == EXPECTED_METRICS[name]
        for key, value in metrics.items():
            assert isinstance(value, Tensor), key
            assert not value.requires_grad and value.grad_fn is None, key
            assert value.dim() == 0 and torch.isfinite(value), key
        torch.testing.assert_close(metrics["loss"], loss.detach())
        snapshots.append(metrics)
    assert snapshots[0] is not snapshots[1]
    assert snapshots[0]["loss"] != snapshots[1]["loss"]
    # reduction="none": the "loss" metric is the mean of the per-image values
    pred, target, _ = make_case("inverse", density=0.4, seed=17)
    per_image = build(name, reduction="none")
    values = per_image(pred, target, progress=0.5)
    torch.testing.assert_close(per_image.metrics["loss"], values.mean())


def test_near_field_metrics_are_computed_only_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Near-field's diagnostics cost full-resolution passes: deferred until read, then cached."""
    import depthloss.functional.near_field as near_field_module
    from depthloss.nn.base import LazyMetrics

    calls = []
    original = near_field_module._metrics

    def counting(*args: Any) -> Dict[str, Tensor]:
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(near_field_module, "_metrics", counting)
    module = build("near-field-ssi-silog")
    pred, target, _ = make_case("inverse", density=0.4, seed=21)
    p = pred.clone().requires_grad_(True)
    loss = module(p, target)
    loss.backward()
    assert isinstance(module.metrics, LazyMetrics) and not calls
    first = dict(module.metrics)
    assert len(calls) == 1 and set(first) == EXPECTED_METRICS["near-field-ssi-silog"]
    assert float(module.metrics["near_ratio"]) == float(first["near_ratio"]) and len(calls) == 1
    torch.testing.assert_close(first["loss"], loss.detach())
    # the deferred function holds no autograd history (nothing keeps the graph alive)
    module(p * 2.0, target)
    pending = module.metrics._compute
    held = [a for a in pending.args if isinstance(a, Tensor)] + [t for a in pending.args if isinstance(a, tuple) for t in a]
    held += [pending.args[0].pred, pending.args[0].target]
    assert held and all(t.grad_fn is None and not t.requires_grad for t in held)


# ----------------------------------------------------------------------------------------
# hyper-parameter validation
# ----------------------------------------------------------------------------------------
INVALID_HYPERPARAMETERS = [
    ("scale-adaptive", {"lambda_sg": 2}, ValueError, "lambda_sg"),
    ("scale-adaptive", {"num_scales": 0}, ValueError, "num_scales"),
    ("scale-adaptive", {"num_scales": 2.0}, TypeError, "num_scales"),
    ("scale-adaptive", {"alpha_schedule": "bogus"}, ValueError, "alpha_schedule"),
    ("scale-adaptive", {"scale_schedule": "exp"}, ValueError, "scale_schedule"),
    ("scale-adaptive", {"alpha_start": 1.5}, ValueError, "alpha_start"),
    ("scale-adaptive", {"gt_downsample": "max"}, ValueError, "gt_downsample"),
    ("scale-adaptive", {"use_inv_depth": "yes"}, TypeError, "use_inv_depth"),
    ("scale-adaptive", {"eps": 0.0}, ValueError, "eps"),
    ("near-field-ssi-silog", {"near_weight": 0.5}, ValueError, "near_weight"),
    ("near-field-ssi-silog", {"weight_mode": "x"}, ValueError, "weight_mode"),
    ("near-field-ssi-silog", {"ssi_weighting": "median"}, ValueError, "ssi_weighting"),
    ("near-field-ssi-silog", {"ssi_weight_norm": "global"}, ValueError, "ssi_weight_norm"),
    ("near-field-ssi-silog", {"combine": "both"}, ValueError, "combine"),
    ("near-field-ssi-silog", {"near_threshold": 0.0}, ValueError, "near_threshold"),
    ("near-field-ssi-silog", {"transition": -0.1}, ValueError, "transition"),
    ("near-field-ssi-silog", {"silog_weight_clamp": (2.0, 0.7)}, ValueError, "silog_weight_clamp"),
    ("near-field-ssi-silog", {"ssi_weight_clamp": 3.0}, TypeError, "ssi_weight_clamp"),
    ("near-field-ssi-silog", {"threshold_schedule": "bogus"}, ValueError, "threshold_schedule"),
    ("near-field-ssi-silog", {"grad_clip": 0.0}, ValueError, "grad_clip"),
    ("near-field-ssi-silog", {"silog_ratio2": 1.5}, ValueError, "silog_ratio2"),
    ("ssi-trim", {"trim": 1.0}, ValueError, "trim"),
    ("ssi-trim", {"trim": -0.1}, ValueError, "trim"),
    ("ssi-trim", {"scales": 0}, ValueError, "scales"),
    ("midas", {"operator": "laplace"}, ValueError, "operator"),
    ("midas", {"alpha": -0.5}, ValueError, "alpha"),
    ("silog", {"lambd": 1.5}, ValueError, "lambd"),
    ("silog", {"ratio": 0.0}, ValueError, "ratio"),
    ("silog", {"eps": "small"}, TypeError, "eps"),
    ("berhu", {"threshold": 0.0}, ValueError, "threshold"),
    ("ssi", {"alpha": -1.0}, ValueError, "alpha"),
    ("ssi-silog", {"silog_ratio2": 2.0}, ValueError, "silog_ratio2"),
    ("ssi-silog", {"ssi_weight": float("nan")}, ValueError, "ssi_weight"),
    ("enhanced-ssi", {"adaptive_weighting": 1}, TypeError, "adaptive_weighting"),
    ("enhanced-ssi", {"l1_weight": -0.2}, ValueError, "l1_weight"),
    ("progressive-ssi", {"weight_schedule": "exp"}, ValueError, "weight_schedule"),
    ("progressive-ssi", {"ssi_weight_start": 0.0, "l1_weight_start": 0.0}, ValueError, "ssi_weight_start"),
    ("l1", {"min_depth": -1.0}, ValueError, "min_depth"),
    ("mse", {"max_depth": 0.0}, ValueError, "max_depth"),
]


@pytest.mark.parametrize(
    "name,kwargs,exc,param",
    INVALID_HYPERPARAMETERS,
    ids=[f"{n}-{'-'.join(k)}" for n, k, _, _ in INVALID_HYPERPARAMETERS],
)
def test_hyperparameters_validated_in_init(name: str, kwargs: Dict[str, Any], exc: type, param: str) -> None:
    cls = loss_info(name).cls
    with pytest.raises(exc, match=param):
        cls(**kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_base_arguments_validated_in_init(name: str) -> None:
    cls = loss_info(name).cls
    with pytest.raises(ValueError, match="input_space"):
        cls(input_space="disparity")
    with pytest.raises(ValueError, match="reduction"):
        cls(reduction="avg")
    with pytest.raises(ValueError, match="scope"):
        cls(scope="dataset")
    if "global" not in loss_info(name).scopes:
        with pytest.raises(ValueError, match="scope"):
            cls(scope="global")
    with pytest.raises(ValueError, match="reduction='none'"):
        cls(scope="batch", reduction="none")
    with pytest.raises(ValueError, match="min_depth"):
        cls(min_depth=5.0, max_depth=5.0)
    with pytest.raises(ValueError, match="min_depth"):
        cls(min_depth=10.0, max_depth=1.0)
    cls(input_space="depth", min_depth=0.5, max_depth=50.0)  # and valid values are accepted


# ----------------------------------------------------------------------------------------
# invariances
# ----------------------------------------------------------------------------------------
AFFINE = [(3.0, 1.0), (0.5, 0.3), (1.7, -0.5)]


def test_scale_adaptive_alpha_one_is_affine_invariant() -> None:
    pred, target, _ = make_case("depth", density=0.5, seed=18, low=2.0, high=8.0)  # pred in [1.4, 10.4] m
    module = ScaleAdaptiveLoss(input_space="depth", alpha_start=1.0, alpha_end=1.0)
    base = module(pred, target, progress=0.7)
    assert base > 1e-2
    for a, b in AFFINE:  # a * pred + b stays well inside [min_depth, max_depth] = [0.1, 100]
        torch.testing.assert_close(module(a * pred + b, target, progress=0.7), base, rtol=1e-4, atol=1e-5)


def test_scale_adaptive_alpha_zero_is_not_affine_invariant() -> None:
    pred, target, _ = make_case("depth", density=0.5, seed=18, low=2.0, high=8.0)
    module = ScaleAdaptiveLoss(input_space="depth", alpha_start=0.0, alpha_end=0.0)
    base = module(pred, target, progress=0.7)
    for a, b in AFFINE + [(1.0, 0.5), (2.0, 0.0)]:
        moved = module(a * pred + b, target, progress=0.7)
        assert (moved - base).abs() > 0.05 * base


@pytest.mark.parametrize("cls", [MiDaSLoss, SSITrimLoss], ids=["midas", "ssi-trim"])
def test_midas_losses_affine_invariant_on_inverse_depth(cls: type) -> None:
    pred, target, _ = make_case("inverse", density=0.6, seed=19)  # inverse depth in [0.15, 2.9]
    module = cls(input_space="inverse", reduction="none")
    base = module(pred, target)
    assert (base > 1e-2).all()
    for a, b in [(3.0, 1.0), (0.5, 0.3), (20.0, -1.0)]:
        torch.testing.assert_close(module(a * pred + b, target), base, rtol=1e-4, atol=1e-5)


def test_silog_lambda_one_invariant_to_global_scale() -> None:
    pred, target, _ = make_case("depth", density=0.6, seed=20)
    module = SILogLoss(lambd=1.0, input_space="depth", reduction="none")
    base = module(pred, target)
    assert (base > 0.1).all()
    for a in (0.1, 3.0, 25.0):
        torch.testing.assert_close(module(a * pred, target), base, rtol=1e-4, atol=1e-5)
    default = SILogLoss(input_space="depth", reduction="none")  # lambd = 0.85 is not
    assert ((default(3.0 * pred, target) - default(pred, target)).abs() > 0.1).all()


@pytest.mark.parametrize("mode", ["smooth", "linear", "step"])
def test_near_field_weights_never_increase_with_depth(mode: str) -> None:
    depth = torch.linspace(0.01, 10.0, 2000).reshape(1, 1, 40, 50)  # increasing in row-major order
    w = DF.near_field_weights(depth, threshold=1.0, near_weight=5.0, transition=0.3, mode=mode).flatten()
    assert (w[1:] <= w[:-1]).all()
    assert abs(float(w[0]) - 5.0) < 1e-2 and abs(float(w[-1]) - 1.0) < 1e-6
    for space in SPACES:
        module = NearFieldSSISilog(weight_mode=mode, input_space=space, near_weight=4.0,
                                   threshold_schedule="linear", threshold_start=0.5, threshold_end=2.5)
        for progress in (0.0, 0.5, 1.0):
            wm = module.full_resolution_weights(to_input_space(depth, space), progress=progress).flatten()
            assert (wm[1:] <= wm[:-1]).all()
            assert 3.5 < float(wm[0]) <= 4.0 and abs(float(wm[-1]) - 1.0) < 1e-6


# ----------------------------------------------------------------------------------------
# the seed's mistakes
# ----------------------------------------------------------------------------------------
def test_regression_suffix_matching() -> None:
    """The seed's ``endswith`` chain resolved these to the plain SSI loss."""
    assert type(get_loss("enhanced-ssi")) is EnhancedSSILoss
    assert type(get_loss("progressive-ssi")) is ProgressiveSSILoss
    assert type(get_loss("sparse-ssi-silog")) is SSISilogLoss
    assert type(get_loss("ssi")) is SSILoss
    for name in ("enhanced-ssi", "progressive-ssi", "sparse-ssi-silog"):
        assert not isinstance(get_loss(name), SSILoss)


def seed_smooth_weights(depth: Tensor) -> Tensor:
    """The seed's Solution 5-1 formula (near_field_loss_analysis.md), sign reversed."""
    return 1.0 + (5.0 - 1.0) * (1.0 + torch.tanh((depth - 1.0) / 0.3)) / 2.0


def test_regression_reversed_tanh_weights() -> None:
    depth = torch.tensor([[[0.2, 5.0]]])
    seed = seed_smooth_weights(depth)
    assert abs(float(seed[0, 0, 0]) - 1.0) < 0.05 and abs(float(seed[0, 0, 1]) - 5.0) < 1e-4  # near ~1, far ~5
    expected = [1.0 + 4.0 * 0.5 * (1.0 - math.tanh((d - 1.0) / 0.3)) for d in (0.2, 5.0)]
    for ours in (
        DF.near_field_weights(depth),
        NearFieldSSISilog(input_space="depth").full_resolution_weights(depth),
        NearFieldSSISilog().full_resolution_weights(1.0 / depth),
    ):
        assert abs(float(ours[0, 0, 0]) - 5.0) < 0.05 and abs(float(ours[0, 0, 1]) - 1.0) < 1e-4
        torch.testing.assert_close(ours, torch.tensor([[expected]]), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours, 6.0 - seed, rtol=1e-5, atol=1e-5)  # the mirror image


def _grad_of(module: torch.nn.Module, pred: Tensor, target: Tensor, hook: bool = False) -> Tensor:
    p = pred.clone().requires_grad_(True)
    loss = module(p, target)
    if hook:  # the seed: ssi_loss.register_hook(lambda grad: torch.clamp(grad, -1.0, 1.0))
        loss.register_hook(lambda g: g.clamp(-1.0, 1.0))
    loss.backward()
    return p.grad


@pytest.mark.parametrize("space", SPACES)
def test_regression_gradient_hook_on_scalar_clamps_nothing(space: str) -> None:
    depth_t = torch.tensor([[[[1.0, 0.5], [2.0, 0.25]]]])
    depth_p = torch.tensor([[[[0.2, 3.0], [0.3, 4.0]]]])  # large errors on a 4-pixel image
    pred, target = to_input_space(depth_p, space), to_input_space(depth_t, space)
    plain = _grad_of(NearFieldSSISilog(input_space=space), pred, target)
    assert plain.abs().max() > 1.0
    hooked = _grad_of(NearFieldSSISilog(input_space=space), pred, target, hook=True)
    assert_tensor_equal(hooked, plain)  # the hook only sees d loss / d loss = 1
    clipped = _grad_of(NearFieldSSISilog(input_space=space, grad_clip=1.0), pred, target)
    assert clipped.abs().max() <= 1.0
    assert_tensor_equal(clipped, plain.clamp(-1.0, 1.0))
    loose = _grad_of(NearFieldSSISilog(input_space=space, grad_clip=1e6), pred, target)
    assert_tensor_equal(loose, plain)


def test_regression_grad_clip_on_realistic_batch() -> None:
    pred, target, _ = make_case("inverse", density=0.3, seed=21)
    plain = _grad_of(NearFieldSSISilog(), pred, target)
    c = float(plain.abs().max()) / 4.0
    clipped = _grad_of(NearFieldSSISilog(grad_clip=c), pred, target)
    assert clipped.abs().max() <= c
    assert_tensor_equal(clipped, plain.clamp(-c, c))
    torch.testing.assert_close(
        NearFieldSSISilog(grad_clip=c)(pred, target), NearFieldSSISilog()(pred, target), rtol=0.0, atol=0.0
    )


def test_regression_abs_rel_divides_by_target() -> None:
    pred = torch.tensor([[[2.0, 3.0]]])
    target = torch.tensor([[[1.0, 4.0]]])
    ours = AbsRelLoss(input_space="depth")(pred, target)
    assert abs(float(ours) - (1.0 / 1.0 + 1.0 / 4.0) / 2.0) < 1e-6  # 0.625
    seed = (1.0 / 2.0 + 1.0 / 3.0) / 2.0  # |p - g| / p, the seed's
    assert abs(float(ours) - seed) > 0.1
    # inverse-depth input: converted to depth first (pred depth 2, 3 -> inverse 1/2, 1/3)
    inv = AbsRelLoss()(1.0 / pred, 1.0 / target)
    assert abs(float(inv) - 0.625) < 1e-6


# ----------------------------------------------------------------------------------------
# NearFieldSSISilog
# ----------------------------------------------------------------------------------------
def _near_case(seed: int = 22, shape: Tuple[int, ...] = (2, 1, 10, 10), low: float = 0.3, high: float = 4.0):
    return make_case("inverse", shape=shape, density=0.6, seed=seed, low=low, high=high)


@pytest.mark.parametrize("space", SPACES)
def test_near_field_weight_modes_all_run(space: str) -> None:
    pred, target, _ = make_case(space, density=0.6, seed=23, low=0.3, high=4.0)
    values = []
    for mode in ("step", "linear", "smooth"):
        p = pred.clone().requires_grad_(True)
        loss = NearFieldSSISilog(weight_mode=mode, input_space=space)(p, target)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(p.grad).all()
        values.append(float(loss.detach()))
    assert len(set(values)) == 3


def test_near_field_scaled_diff_runs_and_differs_from_weighted_mean() -> None:
    pred, target, _ = _near_case()
    weighted = NearFieldSSISilog()(pred, target)
    fixed = NearFieldSSISilog(ssi_weighting="scaled-diff", ssi_weight_norm="fixed")
    batch = NearFieldSSISilog(ssi_weighting="scaled-diff", ssi_weight_norm="batch")
    values = []
    for module in (fixed, batch):
        p = pred.clone().requires_grad_(True)
        loss = module(p, target)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(p.grad).all()
        assert abs(float(loss.detach()) - float(weighted)) > 1e-4
        values.append(float(loss.detach()))
    assert values[0] != values[1]


def _hand_weighted_ssi(d: Tensor, w: Tensor, alpha: float) -> float:
    mean = float((w * d).sum() / w.sum())
    second = float((w * d * d).sum() / w.sum())
    return second - mean * mean + alpha * mean * mean


def _hand_silog_u(pred_depth: Tensor, target_depth: Tensor, w: Tensor) -> float:
    u = (w.sqrt() / w.sqrt().mean()).clamp(0.7, 2.0)
    ug = u * (pred_depth.log() - target_depth.log())
    return 10.0 * math.sqrt(float((ug * ug).mean() - 0.85 * ug.mean() ** 2) + 1e-8)


def test_near_field_terms_match_hand_formulas() -> None:
    """The SSI and SILog terms against the formulas of DESIGN §4 (seed solution 2-1, issue 3)."""
    pred, target, valid = _near_case(seed=24)
    pred, target = pred.double(), target.double()
    w_all = (1.0 + 4.0 * torch.rand(pred.shape, generator=_gen(3))).double()
    ssi_only = NearFieldSSISilog(ssi_weight=1.0, silog_weight=0.0, reduction="none")(pred, target, weights=w_all)
    silog_only = NearFieldSSISilog(ssi_weight=0.0, silog_weight=1.0, reduction="none")(pred, target, weights=w_all)
    scaled = NearFieldSSISilog(ssi_weight=1.0, silog_weight=0.0, ssi_weighting="scaled-diff", reduction="none")(
        pred, target, weights=w_all
    )
    for b in range(pred.shape[0]):
        m = valid[b]
        p, t, w = pred[b][m], target[b][m], w_all[b][m]
        d = p - t
        assert abs(float(ssi_only[b]) - _hand_weighted_ssi(d, w, 0.85)) < 1e-9
        assert abs(float(silog_only[b]) - _hand_silog_u(1.0 / p, 1.0 / t, w)) < 1e-9
        ds = d * (w / 1.75).clamp(0.5, 5.0)  # the seed's d * w / w̄, fixed w̄ = 1.75
        assert abs(float(scaled[b]) - _hand_weighted_ssi(ds, torch.ones_like(ds), 0.85)) < 1e-9


def test_near_field_threshold_schedule_moves_and_clamps() -> None:
    pred, target, valid = _near_case(seed=25)
    depth = 1.0 / target[valid]
    module = NearFieldSSISilog(threshold_schedule="linear", threshold_start=0.1, threshold_end=5.0)
    # linear: 0.1 + 4.9 p, clamped to [0.3, 3.0]
    for progress, expected in ((0.0, 0.3), (0.02, 0.3), (0.5, 2.55), (0.9, 3.0), (1.0, 3.0)):
        module(pred, target, progress=progress)
        assert abs(float(module.metrics["threshold_t"]) - expected) < 1e-6
        near_ratio = float((depth < expected).double().mean())
        assert abs(float(module.metrics["near_ratio"]) - near_ratio) < 1e-6
    module(pred, target, progress=torch.tensor(0.25))
    assert abs(float(module.metrics["threshold_t"]) - (0.1 + 4.9 * 0.25)) < 1e-6
    module.progress = 0.5
    module(pred, target)
    assert abs(float(module.metrics["threshold_t"]) - 2.55) < 1e-6
    default = NearFieldSSISilog(threshold_schedule="cosine")  # 0.5 m -> 1.5 m
    default(pred, target, progress=0.5)
    assert abs(float(default.metrics["threshold_t"]) - 1.0) < 1e-6
    fixed = NearFieldSSISilog(near_threshold=2.0)
    for progress in (0.0, 1.0):
        fixed(pred, target, progress=progress)
        assert abs(float(fixed.metrics["threshold_t"]) - 2.0) < 1e-6


def test_near_field_split_equals_near_only_loss_when_every_pixel_is_near() -> None:
    pred, target, valid = _near_case(seed=26, low=0.2, high=0.9)  # every valid target closer than 1 m
    split = NearFieldSSISilog(combine="split", reduction="none")(pred, target)
    near_only = DF.ssi_silog(pred, target, valid, reduction="none")  # unweighted SSI-SILog of the near pixels
    torch.testing.assert_close(split, near_only, rtol=1e-6, atol=1e-7)
    weighted = NearFieldSSISilog(reduction="none")(pred, target)
    assert not torch.allclose(split, weighted)


def test_near_field_split_mixes_near_and_far_losses() -> None:
    pred, target, valid = _near_case(seed=27, low=0.3, high=4.0)
    depth = torch.where(valid, 1.0 / target.clamp(min=1e-6), torch.zeros_like(target))
    near, far = valid & (depth < 1.0), valid & (depth >= 1.0)
    assert near.flatten(1).any(1).all() and far.flatten(1).any(1).all()
    p = pred.clone().requires_grad_(True)
    split = NearFieldSSISilog(combine="split", reduction="none")(p, target)
    expected = 0.7 * DF.ssi_silog(pred, target, near, reduction="none") + 0.3 * DF.ssi_silog(
        pred, target, far, reduction="none"
    )
    torch.testing.assert_close(split.detach(), expected, rtol=1e-6, atol=1e-7)
    split.sum().backward()
    assert torch.isfinite(p.grad).all()


def test_near_field_explicit_weights() -> None:
    pred, target, valid = _near_case(seed=28)
    module = NearFieldSSISilog(reduction="none")
    weights = 1.0 + 4.0 * torch.rand(pred.shape, generator=_gen(4))
    default = module(pred, target)
    explicit = module(pred, target, weights=weights)
    assert ((explicit - default).abs() > 1e-5).all()
    for k in (0.01, 7.0):  # weighted-mean: the scale of w cancels
        torch.testing.assert_close(module(pred, target, weights=k * weights), explicit, rtol=1e-5, atol=1e-6)
    # unit weights: the unweighted SSI-SILog
    torch.testing.assert_close(
        module(pred, target, weights=torch.ones_like(pred)), DF.ssi_silog(pred, target, valid, reduction="none"),
        rtol=1e-6, atol=1e-7,
    )
    # values at invalid pixels are ignored
    junk = torch.where(valid, weights, torch.full_like(weights, 1e3))
    torch.testing.assert_close(module(pred, target, weights=junk), explicit)


def test_near_field_non_finite_weighted_loss_falls_back_to_baseline() -> None:
    pred, target, valid = _near_case(seed=29, shape=(3, 1, 6, 6))
    assert valid[0, 0, 2, 3] and valid[1, 0, 4, 1]
    good = 1.0 + 4.0 * torch.rand(pred.shape, generator=_gen(5))
    bad = good.clone()
    bad[0, 0, 2, 3] = float("inf")
    bad[1, 0, 4, 1] = float("nan")
    module = NearFieldSSISilog(reduction="none")
    p = pred.clone().requires_grad_(True)
    out = module(p, target, weights=bad)
    metrics = module.metrics
    baseline = DF.ssi_silog(pred, target, valid, reduction="none")
    weighted = module(pred, target, weights=good)
    torch.testing.assert_close(out[:2].detach(), baseline[:2], rtol=1e-6, atol=1e-7)  # fell back
    torch.testing.assert_close(out[2].detach(), weighted[2], rtol=1e-6, atol=1e-7)  # untouched
    assert abs(float(weighted[2]) - float(baseline[2])) > 1e-5
    torch.testing.assert_close(metrics["baseline"], baseline.mean())
    assert all(torch.isfinite(v) for v in metrics.values())
    # the gradient of a fallen-back image is the baseline's, not NaN
    out.sum().backward()
    assert torch.isfinite(p.grad).all()
    ref = pred.clone().requires_grad_(True)
    (DF.ssi_silog(ref, target, valid, reduction="none")[:2].sum() + module(ref, target, weights=good)[2]).backward()
    torch.testing.assert_close(p.grad, ref.grad, rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------------------
# ScaleAdaptiveLoss
# ----------------------------------------------------------------------------------------
ALPHA_CASES = [
    # (alpha_schedule, alpha_start, alpha_end, progress, expected alpha_t), by hand
    ("linear", 1.0, 0.0, 0.25, 0.75),
    ("linear", 1.0, 0.0, 1.0, 0.0),
    ("linear", 0.8, 0.2, 0.5, 0.5),
    ("linear", 1.0, 0.0, 1.5, 0.0),  # progress clamped to [0, 1]
    ("cosine", 1.0, 0.0, 0.25, 0.5 * (1.0 + math.cos(math.pi * 0.25))),
    ("step", 1.0, 0.0, 0.4, 1.0),
    ("step", 1.0, 0.0, 0.6, 0.0),
    ("constant", 0.3, 0.9, 0.8, 0.3),
]


@pytest.mark.parametrize("kind,start,end,progress,expected", ALPHA_CASES)
def test_scale_adaptive_alpha_t_follows_schedule(
    kind: str, start: float, end: float, progress: float, expected: float
) -> None:
    pred, target, _ = make_case("inverse", shape=(1, 1, 8, 8), seed=30)
    module = ScaleAdaptiveLoss(alpha_schedule=kind, alpha_start=start, alpha_end=end, num_scales=2)
    for how in ("float", "tensor", "attribute"):
        if how == "float":
            module(pred, target, progress=progress)
        elif how == "tensor":
            module(pred, target, progress=torch.tensor(progress))
        else:
            module.progress = progress
            module(pred, target)
        assert abs(float(module.metrics["alpha_t"]) - expected) < 1e-6, how


def test_scale_adaptive_level_weights_and_counts() -> None:
    pred, target, valid = make_case("inverse", shape=(2, 1, 16, 16), density=0.4, seed=31)
    module = ScaleAdaptiveLoss(num_scales=3)
    # by hand: coarse-heavy 2^l / 7 at progress 0, fine-heavy 2^-l normalized at 1, their average at 0.5
    cases = ((0.0, [1 / 7, 2 / 7, 4 / 7]), (1.0, [4 / 7, 2 / 7, 1 / 7]), (0.5, [5 / 14, 4 / 14, 5 / 14]))
    for progress, expected in cases:
        module(pred, target, progress=progress)
        got = [float(module.metrics[f"level{l}_weight"]) for l in range(3)]
        assert got == pytest.approx(expected, abs=1e-6)
    assert float(module.metrics["num_valid_pixels"]) == float(valid.sum())
    assert float(module.metrics["level0_valid_frac"]) == pytest.approx(float(valid.float().mean()), abs=1e-6)
    uniform = ScaleAdaptiveLoss(num_scales=4, scale_schedule="constant")
    uniform(pred, target, progress=0.3)
    assert [float(uniform.metrics[f"level{l}_weight"]) for l in range(4)] == pytest.approx([0.25] * 4)


def test_scale_adaptive_gt_downsample_modes_all_run() -> None:
    pred, target, _ = make_case("depth", shape=(2, 1, 16, 16), density=0.3, seed=32)
    values = []
    for mode in ("nearest", "min", "mean"):
        p = pred.clone().requires_grad_(True)
        loss = ScaleAdaptiveLoss(input_space="depth", gt_downsample=mode, num_scales=3)(p, target, progress=0.8)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(p.grad).all()
        values.append(float(loss.detach()))
    assert len(set(values)) == 3


def test_scale_adaptive_lidar_rows_gradient_support_at_coarse_levels() -> None:
    g = _gen(33)
    depth = 2.0 + 30.0 * torch.rand(2, 1, 32, 32, generator=g)
    lidar = torch.zeros_like(depth)
    lidar[:, :, ::4, :] = depth[:, :, ::4, :]  # every 4th row has returns
    pred = depth * (1.0 + 0.1 * torch.randn(depth.shape, generator=g))
    module = ScaleAdaptiveLoss(input_space="depth", num_scales=4)
    module(pred, lidar, progress=0.5)
    m = module.metrics
    # by hand: level 0 and 1 (rows valid every 4th / 2nd row) have no full 3x3 window;
    # level 2 is 8x8 and fully valid (6x6 interior windows), level 3 is 4x4 (2x2 interior)
    assert float(m["level0_stencil_frac"]) == 0.0 and float(m["level1_stencil_frac"]) == 0.0
    assert float(m["level2_stencil_frac"]) == pytest.approx(36 / 64)
    assert float(m["level3_stencil_frac"]) == pytest.approx(4 / 16)
    assert float(m["level0_valid_frac"]) == pytest.approx(0.25)
    assert float(m["level1_valid_frac"]) == pytest.approx(0.5)
    assert float(m["level2_valid_frac"]) == pytest.approx(1.0)
    assert float(m["level0_grad"]) == 0.0 and float(m["level2_grad"]) > 0.0


def test_scale_adaptive_use_inv_depth() -> None:
    pred, target, _ = make_case("inverse", density=0.4, seed=34)
    p = pred.clone().requires_grad_(True)
    loss = ScaleAdaptiveLoss(use_inv_depth=True)(p, target, progress=0.5)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0 and torch.isfinite(p.grad).all()
    assert abs(float(loss.detach()) - float(ScaleAdaptiveLoss()(pred, target, progress=0.5))) > 1e-4


@pytest.mark.parametrize("shape", [(2, 1, 5, 7), (1, 1, 1, 1), (2, 3, 2)])
def test_scale_adaptive_more_levels_than_the_image_allows(shape: Tuple[int, ...]) -> None:
    pred, target, _ = make_case("depth", shape=shape, seed=35)
    for progress in (0.0, 0.5):
        p = pred.clone().requires_grad_(True)
        loss = ScaleAdaptiveLoss(input_space="depth", num_scales=4)(p, target, progress=progress)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(p.grad).all()


# ----------------------------------------------------------------------------------------
# EnhancedSSILoss / ProgressiveSSILoss
# ----------------------------------------------------------------------------------------
MIX_CASES = [
    # (name, kwargs, progress, (w_ssi, w_l1)) computed by hand from the documented formulas
    ("enhanced-ssi", {}, 0.0, (0.9 / 1.1, 0.2 / 1.1)),  # 0.8 + 0.1, 0.2 + 0
    ("enhanced-ssi", {}, 1.0, (0.8 / 1.1, 0.3 / 1.1)),  # 0.8 + 0, 0.2 + 0.1
    ("enhanced-ssi", {}, 0.5, (0.85 / 1.1, 0.25 / 1.1)),
    ("enhanced-ssi", {"ssi_weight": 0.5, "l1_weight": 0.5}, 0.0, (0.6 / 1.1, 0.5 / 1.1)),
    ("enhanced-ssi", {"adaptive_weighting": False}, 0.0, (0.8, 0.2)),
    ("enhanced-ssi", {"adaptive_weighting": False}, 1.0, (0.8, 0.2)),
    ("progressive-ssi", {}, 0.0, (0.9, 0.1)),
    ("progressive-ssi", {}, 1.0, (0.7, 0.3)),
    ("progressive-ssi", {}, 0.5, (0.8, 0.2)),
    ("progressive-ssi", {"ssi_weight_start": 3.0, "l1_weight_start": 1.0}, 0.0, (0.75, 0.25)),
    ("progressive-ssi", {"weight_schedule": "step"}, 0.4, (0.9, 0.1)),
    ("progressive-ssi", {"weight_schedule": "constant"}, 1.0, (0.9, 0.1)),
]


@pytest.mark.parametrize("name,kwargs,progress,expected", MIX_CASES)
def test_ssi_l1_mix_dynamic_weights(
    name: str, kwargs: Dict[str, Any], progress: float, expected: Tuple[float, float]
) -> None:
    pred, target, valid = make_case("inverse", density=0.5, seed=36)
    module = build(name, **kwargs)
    loss = module(pred, target, progress=progress)
    w_ssi, w_l1 = expected
    assert float(module.metrics["dynamic_ssi_weight"]) == pytest.approx(w_ssi, abs=1e-6)
    assert float(module.metrics["dynamic_l1_weight"]) == pytest.approx(w_l1, abs=1e-6)
    ssi = DF.ssi(pred, target, valid, 0.85)
    l1 = DF.l1(pred, target, valid)
    torch.testing.assert_close(loss, w_ssi * ssi + w_l1 * l1, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(module.metrics["ssi_component"], ssi)
    torch.testing.assert_close(module.metrics["l1_component"], l1)
    # the same weights with progress as a tensor and through the attribute
    module(pred, target, progress=torch.tensor(progress))
    assert float(module.metrics["dynamic_ssi_weight"]) == pytest.approx(w_ssi, abs=1e-6)
    module.progress = progress
    module(pred, target)
    assert float(module.metrics["dynamic_l1_weight"]) == pytest.approx(w_l1, abs=1e-6)
