"""The conventions of DESIGN §2, checked for every registered loss (parametrized from ``list_losses()``).

Inputs come from :func:`helpers.loss_inputs`, which reads ``loss_info`` (keyword inputs such as
near-field ``weights`` included), so a newly registered loss joins every test here:

- finite value and gradient for valid inputs: sparse and dense targets, empty masks, a single
  valid pixel, constant images, depths 1e-3..1e3, fp16/bf16 (computed in float32), autocast;
- invalid pixels (NaN, inf, 0, -1 in the target; NaN in the prediction there) get exactly zero
  gradient and change nothing; an image without valid pixels gives 0 with a connected zero
  gradient;
- ``B = 0``: 0 with a connected zero gradient, ``"none"`` gives shape ``(0,)``;
- no input mutation; dtype promotion (float32 pred + float64 target -> float64); the result on
  the input's device (the ``meta`` device stands in for an accelerator);
- reductions and batch permutation equivariance of ``reduction="none"``; per-image values do
  not depend on the rest of the batch;
- ``progress``: every accepted form gives the same value; ``module.half()`` keeps it exact;
- ``input_space`` is required and explained; base arguments are validated in ``__init__``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest
import torch
from torch import Tensor

import depthloss
from helpers import (
    NAMES,
    SPACES,
    STENCIL_LOSSES,
    assert_equal,
    build,
    extra_input,
    junk_like,
    layout_shape,
    loss_inputs,
    small_kwargs,
    to_input_space,
)

TESTS = Path(__file__).resolve().parent


def per_name(name: str, space: str = "inverse", **kwargs: Any) -> torch.nn.Module:
    return build(name, space, **small_kwargs(name), **kwargs)


def extra_inputs(inputs: Any) -> Dict[str, Tensor]:
    return {k: v for k, v in inputs.kwargs.items() if k != "progress"}


# ---------------------------------------------------------------------------------------------
# layout of the suite
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_every_registered_loss_has_its_test_file(name: str) -> None:
    path = TESTS / "losses" / f"test_{name.replace('-', '_')}.py"
    assert path.is_file(), f"add {path.relative_to(TESTS.parent)} (see tests/loss_testing.py)"


# ---------------------------------------------------------------------------------------------
# finiteness, invalid pixels, empty masks
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("density", [0.05, 0.3, 1.0], ids=["sparse5", "sparse30", "dense"])
@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("name", NAMES)
def test_finite_value_and_gradient_zero_at_invalid_pixels(name: str, space: str, density: float) -> None:
    inputs = loss_inputs(name, space, density=density, seed=1, mask=density < 1.0)
    assert inputs.valid.any()
    pred = inputs.leaf()
    loss = inputs.call(per_name(name, space), pred)
    assert loss.shape == () and loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    # no data term: on sparse targets no stencil may be valid (loss 0)
    stencil_only = name in STENCIL_LOSSES and density < 1.0
    assert torch.isfinite(pred.grad).all() and (pred.grad.abs().sum() > 0 or stencil_only)
    assert torch.equal(pred.grad[~inputs.valid], torch.zeros_like(pred.grad[~inputs.valid])), (
        "invalid pixels: exactly 0"
    )


VALID_EDGES = ("single_pixel", "constant_pred", "constant_target", "constant_both", "wide_range", "one_empty_image")


@pytest.mark.parametrize("edge", VALID_EDGES)
@pytest.mark.parametrize("name", NAMES)
def test_valid_edge_inputs_are_finite(name: str, edge: str) -> None:
    """Single pixels, flat images (zero variance, zero MAD), depths 1e-3..1e3: finite value and gradient."""
    shape = (3, 1, 6, 7)
    g = torch.Generator().manual_seed(2)
    depth_p = 0.5 + 4.0 * torch.rand(shape, generator=g, dtype=torch.float64)
    depth_t = 0.5 + 4.0 * torch.rand(shape, generator=g, dtype=torch.float64)
    valid = torch.rand(shape, generator=g) < 0.7
    if edge == "single_pixel":
        valid = torch.zeros(shape, dtype=torch.bool)
        valid[0, 0, 0, 0] = valid[1, 0, 3, 4] = valid[2, 0, 5, 6] = True
    elif edge in ("constant_pred", "constant_both"):
        depth_p = torch.full(shape, 2.5, dtype=torch.float64)
    if edge in ("constant_target", "constant_both"):
        depth_t = torch.full(shape, 0.75, dtype=torch.float64)
    elif edge == "wide_range":
        depth_p = torch.exp(
            torch.empty(shape, dtype=torch.float64).uniform_(math.log(1e-3), math.log(1e3), generator=g)
        )
        depth_t = torch.exp(
            torch.empty(shape, dtype=torch.float64).uniform_(math.log(1e-3), math.log(1e3), generator=g)
        )
    elif edge == "one_empty_image":
        valid[1] = False
    depth_t = torch.where(valid, depth_t, 0.0)
    for space in SPACES:
        kwargs = {"min_depth": 1e-3, "max_depth": 1e3} if "min_depth" in depthloss.loss_info(name).defaults else {}
        module = per_name(name, space, **kwargs)
        for dtype in (torch.float32, torch.float64):
            pred = to_input_space(depth_p, space).to(dtype).requires_grad_(True)
            target = to_input_space(depth_t, space).to(dtype)
            extra = {k: v.to(dtype) for k, v in extra_inputs(loss_inputs(name, shape=shape)).items()}
            loss = module(pred, target, progress=0.4, **extra)
            loss.backward()
            what = (space, dtype)
            assert torch.isfinite(loss), what
            assert torch.isfinite(pred.grad).all(), what
            assert torch.equal(pred.grad[~valid], torch.zeros_like(pred.grad[~valid])), what


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("name", NAMES)
def test_empty_mask_gives_zero_with_a_connected_zero_gradient(name: str, space: str) -> None:
    inputs = loss_inputs(name, space, seed=2)
    module = per_name(name, space)
    none = per_name(name, space, reduction="none")
    for target, mask in (
        (torch.zeros_like(inputs.target), None),
        (inputs.target, torch.zeros_like(inputs.target, dtype=torch.bool)),
    ):
        pred = inputs.leaf()
        loss = module(pred, target, mask, **inputs.kwargs)
        assert loss.requires_grad, "the result must stay connected to the graph"
        assert_equal(loss.detach(), torch.zeros(()))
        loss.backward()
        assert_equal(pred.grad, torch.zeros_like(pred))
        assert_equal(none(inputs.pred, target, mask, **inputs.kwargs), torch.zeros(inputs.pred.shape[0]))


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("name", NAMES)
def test_invalid_values_do_not_leak(name: str, space: str) -> None:
    """Junk at invalid pixels (target: 0, NaN, inf, -inf, -1; prediction: NaN; extra inputs: NaN)
    gives exactly the clean value and gradient; a finite target excluded by the user mask too."""
    inputs = loss_inputs(name, space, density=0.3, seed=4, extra=True)
    invalid = ~inputs.valid
    dirty_target = torch.where(invalid, junk_like(inputs.target), inputs.target)
    garbage = torch.where(invalid, torch.full_like(inputs.target, 123.0), inputs.target)
    module = per_name(name, space)
    clean_extra = extra_inputs(inputs)
    dirty_extra = {  # per-pixel extras get junk at invalid pixels (hdn-random's samples and intrinsics K stay)
        k: torch.where(invalid, float("nan"), v) if v.shape == invalid.shape else v for k, v in clean_extra.items()
    }
    results = []
    for pred_junk, target, mask, extra in (
        (False, inputs.target, None, clean_extra),
        (True, dirty_target, None, dirty_extra),
        (True, garbage, inputs.valid, dirty_extra),
    ):
        pred = torch.where(invalid, float("nan"), inputs.pred) if pred_junk else inputs.pred
        pred = pred.clone().requires_grad_(True)
        loss = module(pred, target, mask, progress=0.3, **extra)
        loss.backward()
        results.append((loss.detach(), pred.grad))
    assert torch.isfinite(results[0][0])
    for loss, grad in results[1:]:
        torch.testing.assert_close(loss, results[0][0], rtol=0, atol=0)
        torch.testing.assert_close(grad, results[0][1], rtol=0, atol=0)
        assert torch.equal(grad[invalid], torch.zeros_like(grad[invalid]))


# ---------------------------------------------------------------------------------------------
# empty batches
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", [(0, 1, 8, 8), (0, 8, 8)], ids=["4d", "3d"])
@pytest.mark.parametrize("name", NAMES)
def test_empty_batch(name: str, layout: tuple) -> None:
    """Issue 12 item 4: B = 0 failed in every loss (cannot reshape tensor of 0 elements)."""
    layout = layout_shape(layout, depthloss.loss_info(name).input_layout)
    extra = {
        k: extra_input(k, torch.rand(layout), torch.Generator().manual_seed(0)).float()
        for k in depthloss.loss_info(name).inputs
    }
    for space in SPACES:
        pred = torch.rand(layout, requires_grad=True)
        loss = per_name(name, space)(pred, torch.rand(layout), progress=0.3, **extra)
        assert loss.shape == () and float(loss.detach()) == 0.0 and loss.requires_grad
        loss.backward()
        assert pred.grad is not None and pred.grad.shape == layout
        for reduction in ("none", "sum", "pixel-mean"):
            out = per_name(name, space, reduction=reduction)(pred, torch.rand(layout), **extra)
            assert out.shape == ((0,) if reduction == "none" else ())
            assert torch.isfinite(out).all()
        assert float(per_name(name, space, scope="batch")(pred, torch.rand(layout), **extra).detach()) == 0.0


# ---------------------------------------------------------------------------------------------
# no mutation, dtypes, devices
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("name", NAMES)
def test_inputs_not_mutated(name: str, space: str) -> None:
    inputs = loss_inputs(name, space, density=0.3, seed=10, mask=True)
    target = torch.where(
        inputs.valid | (torch.arange(inputs.target.numel()).reshape(inputs.target.shape) % 2 == 0),
        inputs.target,
        float("nan"),
    )
    pred = inputs.leaf()
    progress = torch.tensor(0.5)
    extra = extra_inputs(inputs)
    before = [t.clone() for t in (pred.detach(), target, inputs.mask, progress, *extra.values())]
    module = per_name(name, space)
    module(pred, target, inputs.mask, progress, **extra).backward()
    for a, b in zip((pred.detach(), target, inputs.mask, progress, *extra.values()), before):
        assert_equal(a, b)
    assert_equal(module.progress, torch.tensor(0.0))  # an explicit progress leaves the attribute alone


@pytest.mark.parametrize("name", NAMES)
def test_dtype_promotion(name: str) -> None:
    """Every module returns the promoted dtype (at least float32): float32 + float64 -> float64."""
    inputs = loss_inputs(name, density=0.5)
    extra = extra_inputs(inputs)
    module = per_name(name)
    cases = [
        (torch.float32, torch.float64, torch.float64),
        (torch.float64, torch.float32, torch.float64),
        (torch.float16, torch.float32, torch.float32),
        (torch.bfloat16, torch.bfloat16, torch.float32),
        (torch.float16, torch.float64, torch.float64),
    ]
    for p_dtype, t_dtype, expected in cases:
        pred = inputs.pred.detach().to(p_dtype).clone().requires_grad_(True)
        loss = module(pred, inputs.target.to(t_dtype), progress=0.3, **extra)
        assert loss.dtype == expected, (p_dtype, t_dtype, loss.dtype)
        loss.backward()
        assert pred.grad.dtype == p_dtype and torch.isfinite(pred.grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision_inputs_compute_in_float32(name: str, dtype: torch.dtype) -> None:
    for space in SPACES:
        inputs = loss_inputs(name, space, density=0.3, seed=5)
        extra = extra_inputs(inputs)
        module = per_name(name, space)
        low = inputs.pred.to(dtype).requires_grad_(True)
        loss = module(low, inputs.target.to(dtype), progress=0.3, **{k: v.to(dtype) for k, v in extra.items()})
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        loss.backward()
        assert low.grad.dtype == dtype and torch.isfinite(low.grad).all()
        reference = module(
            inputs.pred.to(dtype).float(),
            inputs.target.to(dtype).float(),
            progress=0.3,
            **{k: v.to(dtype).float() for k, v in extra.items()},
        )
        torch.testing.assert_close(loss.detach(), reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_runs_inside_bf16_autocast(name: str) -> None:
    inputs = loss_inputs(name, density=0.3, seed=6, progress=0.6)
    module = per_name(name)
    expected = inputs.call(module)
    pred = inputs.leaf()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = inputs.call(module, pred)
        pred_bf16 = torch.matmul(pred, torch.eye(pred.shape[-1]))  # an upstream op under autocast
        loss_bf16 = inputs.call(module, pred_bf16)
    assert pred_bf16.dtype == torch.bfloat16
    assert loss.dtype == torch.float32 and loss_bf16.dtype == torch.float32
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        loss_bf16.detach(), inputs.call(module, pred_bf16.detach().float()), rtol=1e-5, atol=1e-6
    )
    (loss + loss_bf16).backward()
    assert torch.isfinite(pred.grad).all() and (pred.grad.abs().sum() > 0 or name in STENCIL_LOSSES)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(name: str) -> None:
    """Constants are created on the input's device: the loss runs on CUDA, result and gradient there."""
    inputs = loss_inputs(name, density=0.4)
    extra = extra_inputs(inputs)
    module = per_name(name)
    expected = inputs.call(module)
    pred = inputs.pred.cuda().requires_grad_(True)
    loss = module.cuda()(pred, inputs.target.cuda(), progress=0.3, **{k: v.cuda() for k, v in extra.items()})
    loss.backward()
    assert loss.device.type == "cuda" and pred.grad.device.type == "cuda"
    torch.testing.assert_close(loss.cpu(), expected, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# reductions, equivariance
# ---------------------------------------------------------------------------------------------
#: losses whose "pixel-mean" pools terms, levels or samples rather than weighting per-image values
POOLED_PIXEL_MEAN = (
    "midas", "ssi-trim", "depth-pro", "mage", "male", "msge", "grad-l1", "hdn-random",
    "temporal-gradient-matching", "video-depth",
)  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_reductions(name: str) -> None:
    inputs = loss_inputs(name, shape=(3, 1, 12, 12), density=0.5, seed=11)
    target = inputs.target.clone()
    target[1] = 0.0  # image 1 has no valid pixel
    extra = extra_inputs(inputs)
    run = lambda **kw: per_name(name, **kw)(inputs.pred, target, progress=0.3, **extra)  # noqa: E731
    per_image, mean, total, pixel = (
        run(reduction="none"),
        run(reduction="mean"),
        run(reduction="sum"),
        run(reduction="pixel-mean"),
    )
    assert per_image.shape == (3,) and mean.shape == total.shape == pixel.shape == ()
    assert per_image[1] == 0.0 and per_image[0] != per_image[2]
    torch.testing.assert_close(mean, (per_image[0] + per_image[2]) / 2.0)
    torch.testing.assert_close(total, per_image.sum())
    # an image's value does not depend on the rest of the batch
    alone = per_name(name, reduction="none")(
        inputs.pred[2:], target[2:], progress=0.3, **{k: v[2:] for k, v in extra.items()}
    )
    torch.testing.assert_close(alone, per_image[2:], rtol=1e-5, atol=1e-6)
    counts = (target > 0).flatten(1).sum(1).float()
    # these pool each term and level, each stencil (grad-l1), (context, pixel) pairs (hdn-random)
    # or frames (the video losses) over the batch (tested in their files)
    if name not in POOLED_PIXEL_MEAN:
        torch.testing.assert_close(pixel, (per_image * counts).sum() / counts.sum(), rtol=1e-5, atol=1e-6)
    pooled = run(scope="batch")
    assert pooled.shape == () and torch.isfinite(pooled)
    for reduction in ("none", "pixel-mean"):
        with pytest.raises(ValueError, match="reduction"):
            per_name(name, scope="batch", reduction=reduction)


@pytest.mark.parametrize("name", NAMES)
def test_batch_permutation_equivariance(name: str) -> None:
    inputs = loss_inputs(name, shape=(4, 1, 10, 9), density=0.5, seed=12)
    module = per_name(name, reduction="none")
    base = inputs.call(module)
    for perm in (torch.tensor([3, 2, 1, 0]), torch.tensor([1, 3, 0, 2])):
        extra = {k: v[perm] for k, v in extra_inputs(inputs).items()}
        torch.testing.assert_close(
            module(inputs.pred[perm], inputs.target[perm], progress=0.3, **extra), base[perm], rtol=1e-6, atol=1e-7
        )


# ---------------------------------------------------------------------------------------------
# progress
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_every_progress_form_gives_the_same_value(name: str) -> None:
    """Issue 12 item 6: np.float32 progress was rejected while np.float64 was accepted."""
    inputs = loss_inputs(name, progress=None)
    module = per_name(name)
    expected = inputs.call(module, progress=0.5)
    for value in (np.float32(0.5), np.float64(0.5), torch.tensor(0.5), torch.tensor(0.5, dtype=torch.float64), 0.5):
        torch.testing.assert_close(inputs.call(module, progress=value), expected, rtol=1e-6, atol=1e-7)
    module.progress = np.float32(0.5)
    torch.testing.assert_close(inputs.call(module), expected, rtol=1e-6, atol=1e-7)
    module.progress = torch.tensor(0.5)
    torch.testing.assert_close(inputs.call(module, progress=None), expected, rtol=1e-6, atol=1e-7)
    for ints in (0, 1):
        assert torch.isfinite(inputs.call(module, progress=ints))
    if not depthloss.loss_info(name).uses_progress:
        torch.testing.assert_close(inputs.call(module, progress=0.0), inputs.call(module, progress=1.0))


@pytest.mark.parametrize("cast", ["half", "bfloat16", "double", "float"])
@pytest.mark.parametrize("name", NAMES)
def test_module_cast_keeps_progress_exact(name: str, cast: str) -> None:
    """Issue 12 item 6: module.half() quantized the progress buffer (0.3 -> 0.30078125)."""
    module = per_name(name)
    module.progress = 0.3
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), module)  # a loss inside a model that is cast
    if cast == "bfloat16":
        model.to(torch.bfloat16)
    else:
        getattr(model, cast)()
    assert module.progress.dtype in (torch.float32, torch.float64)
    assert float(module.progress) == float(torch.tensor(0.3))  # the float32 value, not bf16's 0.30078125


# ---------------------------------------------------------------------------------------------
# construction
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_input_space_is_required_and_explained(name: str) -> None:
    """Issue 12 item 3: the space was a silent trap (midas gave 17.30 instead of 0.66 on metric depth)."""
    info = depthloss.loss_info(name)
    for make in (lambda: info.cls(), lambda: depthloss.get_loss(name), lambda: depthloss.get_loss(f"sparse-{name}")):
        with pytest.raises(TypeError) as err:
            make()
        message = str(err.value)
        assert "input_space" in message and "'depth'" in message and "'inverse'" in message
        assert name in message
    with pytest.raises(ValueError, match="input_space"):
        info.cls(input_space="disparity")
    assert info.defaults["input_space"] is None


@pytest.mark.parametrize("name", NAMES)
def test_base_arguments_validated_in_init(name: str) -> None:
    cls = depthloss.loss_info(name).cls
    with pytest.raises(ValueError, match="reduction"):
        cls(input_space="depth", reduction="avg")
    with pytest.raises(ValueError, match="scope"):
        cls(input_space="depth", scope="dataset")
    if "global" not in depthloss.loss_info(name).scopes:
        with pytest.raises(ValueError, match=f"scope: {name} accepts 'image', 'batch'; got 'global'"):
            cls(input_space="depth", scope="global")
    with pytest.raises(ValueError, match="reduction='none'"):
        cls(input_space="depth", scope="batch", reduction="none")
    for lo, hi in ((5.0, 5.0), (10.0, 1.0)):
        with pytest.raises(ValueError, match="min_depth"):
            cls(input_space="depth", min_depth=lo, max_depth=hi)
    module = cls(input_space="depth", min_depth=0.5, max_depth=50.0)
    assert (module.min_depth, module.max_depth, module.input_space) == (0.5, 50.0, "depth")


@pytest.mark.parametrize("name", NAMES)
def test_depth_clamp_applies_in_both_spaces(name: str) -> None:
    """min_depth / max_depth clamp valid depths whichever space they arrive in (maps as given excepted)."""
    if depthloss.loss_info(name).loss_space == "input":
        pytest.skip("computed on the maps as given: not clamped")
    depth_p = torch.tensor([[[[0.05, 2.0], [3.0, 500.0]]]], dtype=torch.float64).expand(2, 1, 2, 2).clone()
    depth_t = torch.tensor([[[[0.5, 2.5], [3.5, 40.0]]]], dtype=torch.float64).expand(2, 1, 2, 2).clone()
    extra = {k: v.double() for k, v in extra_inputs(loss_inputs(name, shape=(2, 1, 2, 2))).items()}
    values = [
        per_name(name, space, min_depth=0.25, max_depth=50.0)(
            to_input_space(depth_p, space), to_input_space(depth_t, space), progress=0.5, **extra
        )
        for space in SPACES
    ]
    torch.testing.assert_close(values[0], values[1], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "berhu"])
def test_second_derivatives(name: str) -> None:
    """Plain autograd throughout: double backward (create_graph=True) is correct for every loss.

    (berHu's ``c = 0.2 max|d|`` is a detached maximum by definition: no finite-difference second
    derivative matches it.)
    """
    from loss_testing import gradcheck_inputs

    pred, target = gradcheck_inputs("inverse", (1, 1, 5, 5), seed=6)
    module = per_name(name)
    extra = {k: v.double() for k, v in extra_inputs(loss_inputs(name, shape=(1, 1, 5, 5))).items()}
    x = pred.clone().requires_grad_(True)
    assert torch.autograd.gradgradcheck(
        lambda p: module(p, target, progress=0.3, **extra), (x,), atol=1e-5, rtol=1e-4, fast_mode=True
    )
