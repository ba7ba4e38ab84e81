"""The checks every per-loss file (``tests/losses/test_<loss>.py``) runs, in kornia's style.

A per-loss file holds one ``Test<Loss>`` class whose methods call these helpers with the
loss's own hyper-parameters, oracle and expectations:

- :func:`check_smoke`: both input spaces, 3-D and 4-D maps, every reduction, backward;
- :func:`check_bad_inputs` / :func:`check_bad_hyperparameters`: ``TypeError`` / ``ValueError``
  whose message names the argument, from the module, ``get_loss`` and the functional kernel;
- :func:`check_values`: the functional kernel against its float64 loop oracle
  (``tests/reference.py``) at several shapes and masks (junk at invalid pixels), both
  dtypes, every scope and reduction;
- :func:`check_gradient`: the kernel's autograd gradient against the oracle's central finite
  differences (float64), exact zeros at invalid pixels;
- :func:`check_gradcheck`: ``torch.autograd.gradcheck`` of the module in float64;
- :func:`check_module_equals_functional`: the module is the functional kernel on the inputs
  moved to the loss's space (the conversion written out in the test).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Tuple

import pytest
import torch
from torch import Tensor

import depthloss
from helpers import (
    ORACLE_SHAPES,
    SPACES,
    accel_mode,
    assert_grad_matches_oracle,
    assert_matches,
    build,
    depth_case,
    gen,
    loss_inputs,
    oracle_pair,
    poison,
    to_input_space,
    valid_of,
)

SCOPE_REDUCTIONS: Tuple[Tuple[str, str], ...] = (
    ("image", "mean"),
    ("image", "sum"),
    ("image", "none"),
    ("image", "pixel-mean"),
    ("batch", "mean"),
    ("batch", "sum"),
)
REDUCTIONS = ("mean", "sum", "none", "pixel-mean")
#: a variant value replaced by random positive per-pixel weights (junk at invalid pixels) of the case's shape
WEIGHTS = "<weights>"
PROGRESSES = (0.0, 0.37, 1.0)

Kernel = Callable[..., Tensor]


# ---------------------------------------------------------------------------------------------
# conversions the modules apply, written out (what DepthLoss.to_space documents)
# ---------------------------------------------------------------------------------------------
def depth_of(x: Tensor, space: str, lo: Optional[float] = None, hi: Optional[float] = None) -> Tensor:
    """Depth from ``space``: ``1 / x`` where positive (0 elsewhere), valid depths clamped to ``[lo, hi]``."""
    d = x if space == "depth" else to_input_space(x, "inverse")  # 1/x where x > 0, else 0
    if lo is None and hi is None:
        return d
    return torch.where(d > 0, d.clamp(min=lo, max=hi), d)


def inverse_of(x: Tensor, space: str, lo: Optional[float] = None, hi: Optional[float] = None) -> Tensor:
    """Inverse depth from ``space``; the depth range ``[lo, hi]`` clamps inverse depth to ``[1/hi, 1/lo]``."""
    if space == "inverse":
        if lo is None and hi is None:
            return x
        return torch.where(x > 0, x.clamp(min=None if hi is None else 1.0 / hi, max=None if not lo else 1.0 / lo), x)
    d = x if lo is None and hi is None else torch.where(x > 0, x.clamp(min=lo, max=hi), x)
    return to_input_space(d, "inverse")


# ---------------------------------------------------------------------------------------------
# smoke
# ---------------------------------------------------------------------------------------------
def check_smoke(name: str, **kwargs: Any) -> None:
    """Both spaces, 4-D and 3-D maps, every reduction: finite values of the right shape and a gradient."""
    for space in SPACES:
        for shape in ((2, 1, 10, 12), (3, 9, 7)):
            inputs = loss_inputs(name, space, shape=shape, density=0.6, seed=1)
            for reduction in REDUCTIONS:
                module = build(name, space, reduction=reduction, **kwargs)
                pred = inputs.leaf()
                loss = inputs.call(module, pred)
                assert loss.shape == ((shape[0],) if reduction == "none" else ()), (space, shape, reduction)
                assert loss.dtype == torch.float32 and torch.isfinite(loss).all()
                loss.sum().backward()
                assert pred.grad is not None and torch.isfinite(pred.grad).all()
                assert pred.grad.abs().sum() > 0, "the valid pixels get a gradient"
                assert isinstance(module.metrics["loss"], Tensor) and module.metrics["loss"].dim() == 0
        assert space in repr(build(name, space, **kwargs))


# ---------------------------------------------------------------------------------------------
# exceptions
# ---------------------------------------------------------------------------------------------
def check_bad_hyperparameters(
    name: str, cases: Iterable[Tuple[Dict[str, Any], type, str]], functional: Optional[Kernel] = None
) -> None:
    """Every ``(kwargs, exception, argument)``: the module class, ``get_loss`` and (optionally) the
    functional kernel raise ``exception`` with a message naming ``argument``."""
    cls = depthloss.loss_info(name).cls
    p = torch.rand(2, 1, 8, 8) + 0.5
    for kwargs, exc, argument in cases:
        pattern = re.escape(argument)
        with pytest.raises(exc, match=pattern):
            cls(input_space="inverse", **kwargs)
        with pytest.raises(exc, match=pattern):
            depthloss.get_loss(name, input_space="depth", **kwargs)
        if functional is not None:
            with pytest.raises(exc, match=pattern):
                functional(p, p + 0.1, **kwargs)


def check_bad_inputs(name: str, **kwargs: Any) -> None:
    """Bad tensors and bad arguments of the module: the error names the argument."""
    module = build(name, "inverse", **kwargs)
    inputs = loss_inputs(name, shape=(2, 1, 6, 7))
    p, t = inputs.pred, inputs.target
    extra = {k: v for k, v in inputs.kwargs.items() if k != "progress"}
    cases = [
        ((p.tolist(), t), {}, TypeError, r"pred must be a torch\.Tensor"),
        ((p, t.numpy()), {}, TypeError, r"target must be a torch\.Tensor"),
        ((p.long(), t), {}, TypeError, r"pred must be a floating-point tensor"),
        ((p, t.int()), {}, TypeError, r"target must be a floating-point tensor"),
        ((p[:, :, :3], t), {}, ValueError, r"target must have the same shape as pred"),
        (
            (p.expand(2, 3, 6, 7), t.expand(2, 3, 6, 7)),
            {},
            ValueError,
            r"pred must have shape \(B, 1, H, W\) or \(B, H, W\)",
        ),
        ((p[0, 0], t[0, 0]), {}, ValueError, r"pred must have shape"),
        ((p, t, (t > 0).float()), {}, TypeError, r"mask must be a bool tensor"),
        ((p, t, (t > 0)[:, :, :3]), {}, ValueError, r"mask must have the same shape as pred"),
        ((p, t), {"progress": "half"}, TypeError, r"progress must be"),
        ((p, t), {"progress": float("nan")}, ValueError, r"progress must be finite"),
        ((p, t), {"progress": torch.tensor([0.5])}, ValueError, r"progress must be"),
        ((p, t), {"progress": torch.tensor(1)}, TypeError, r"progress must be a floating-point tensor"),
        ((p, t), {"progress": True}, TypeError, r"progress must be"),
        ((p, t), {"not_an_input": p}, TypeError, r"not_an_input"),
    ]
    for args, kw, exc, pattern in cases:
        with pytest.raises(exc, match=pattern):
            module(*args, **{**extra, **kw})
    for key, value in extra.items():  # keyword inputs are checked like maps
        if value.shape != p.shape:  # not a map (intrinsics K): checked in the loss's own file
            continue
        with pytest.raises(ValueError, match=re.escape(key)):
            module(p, t, **{**extra, key: value[:, :, :3]})


# ---------------------------------------------------------------------------------------------
# oracle comparisons
# ---------------------------------------------------------------------------------------------
def check_values(
    kernel: Kernel,
    oracle: Kernel,
    variants: Sequence[Dict[str, Any]],
    mask_kind: str,
    dtype: torch.dtype,
    accel: Optional[bool] = None,
    scope_reductions: Sequence[Tuple[str, str]] = SCOPE_REDUCTIONS,
    shapes: Sequence[Tuple[int, ...]] = ORACLE_SHAPES,
    low: float = 0.3,
    high: float = 3.0,
    seed: int = 0,
    tolerance: Optional[Callable[[Dict[str, Any], Tensor], Dict[str, float]]] = None,
) -> None:
    """The kernel equals its oracle for every shape x variant x (scope, reduction)."""
    with accel_mode(accel):
        for i, shape in enumerate(shapes):
            pred, target, mask = oracle_pair(shape, mask_kind, seed + i, dtype, low, high)
            weights = poison(
                (0.1 + 2.0 * torch.rand(shape, generator=gen(seed + 50 + i), dtype=torch.float64)).to(dtype), mask
            )
            for variant in variants:
                kw = {k: (weights if v is WEIGHTS else v) for k, v in variant.items()}
                for scope, reduction in scope_reductions:
                    args = dict(kw, reduction=reduction, scope=scope)
                    got = kernel(pred, target, mask, **args)
                    expected = oracle(pred, target, mask, **args)
                    tol = tolerance(kw, expected) if tolerance else {}
                    try:
                        assert_matches(got, expected, dtype, **tol)
                    except AssertionError as err:
                        shown = {
                            k: (f"<{tuple(v.shape)} tensor>" if isinstance(v, Tensor) else v) for k, v in args.items()
                        }
                        raise AssertionError(f"shape {shape}, mask {mask_kind}, {shown}: {err}") from None


def check_gradient(
    kernel: Kernel,
    oracle: Kernel,
    kwargs: Dict[str, Any],
    mask_kind: str = "random",
    shape: Tuple[int, ...] = (2, 1, 5, 6),
    seed: int = 3,
    wrt: str = "pred",
    accel: Optional[bool] = None,
    low: float = 0.3,
    high: float = 3.0,
    rtol: float = 1e-5,
) -> None:
    """Autograd gradient of the kernel == finite differences of the oracle (float64), w.r.t. ``wrt``."""
    pred, target, mask = oracle_pair(shape, mask_kind, seed, torch.float64, low, high)
    valid = valid_of(mask, pred)
    weights = poison(0.1 + 2.0 * torch.rand(shape, generator=gen(seed + 50), dtype=torch.float64), mask)
    kwargs = {k: (weights if v is WEIGHTS else v) for k, v in kwargs.items()}
    with accel_mode(accel):
        if wrt == "pred":
            assert_grad_matches_oracle(
                lambda x: kernel(x, target, mask, **kwargs),
                lambda x: oracle(x, target, mask, **kwargs),
                pred,
                valid,
                rtol,
            )
        else:
            assert_grad_matches_oracle(
                lambda x: kernel(pred, x, mask, **kwargs),
                lambda x: oracle(pred, x, mask, **kwargs),
                target,
                valid,
                rtol,
            )


def gradcheck_inputs(space: str, shape: Tuple[int, ...] = (2, 1, 6, 6), seed: int = 7) -> Tuple[Tensor, Tensor]:
    """Dense float64 inputs with distinct values; every ``|pred - target|`` is 5-30 % of the target."""
    g = gen(seed)
    depth_t = 0.5 + 4.0 * torch.rand(shape, generator=g, dtype=torch.float64)
    rel = 0.05 + 0.25 * torch.rand(shape, generator=g, dtype=torch.float64)
    sign = torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0).to(torch.float64)
    return to_input_space(depth_t * (1.0 + sign * rel), space), to_input_space(depth_t, space)


def check_gradcheck(
    name: str, progress: float = 0.3, shape: Tuple[int, ...] = (2, 1, 6, 6), fast: bool = True, **kwargs: Any
) -> None:
    """``gradcheck`` of the module in float64, both spaces (w.r.t. the prediction)."""
    for space in SPACES:
        pred, target = gradcheck_inputs(space, shape)
        module = build(name, space, **kwargs)
        extra = {k: v.double() for k, v in loss_inputs(name, shape=shape).kwargs.items() if isinstance(v, Tensor)}
        assert module(pred, target, progress=progress, **extra).dtype == torch.float64
        x = pred.clone().requires_grad_(True)
        assert torch.autograd.gradcheck(
            lambda p: module(p, target, progress=progress, **extra),
            (x,),
            eps=1e-6,
            atol=1e-5,
            rtol=1e-4,
            fast_mode=fast,
        )


def check_module_equals_functional(
    name: str,
    kwargs: Dict[str, Any],
    expected: Callable[[Tensor, Tensor, Tensor, str, float], Tensor],
    progress: float = 0.4,
) -> None:
    """``module(pred, target)`` (``reduction="none"``) == ``expected(pred, target, valid, space, progress)``.

    ``expected`` calls the functional kernel on the inputs moved to the loss's space by hand.
    """
    for space in SPACES:
        pred_d, target_d, _ = depth_case((2, 1, 12, 12), density=0.6, seed=12)
        pred, target = to_input_space(pred_d, space).float(), to_input_space(target_d, space).float()
        valid = target > 0  # written out: the module adds isfinite & > 0
        module = build(name, space, reduction="none", **kwargs)
        got = module(pred, target, progress=progress)
        want = expected(pred, target, valid, space, progress)
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
        assert got.abs().min() > 0


def check_metrics(name: str, expected_keys: Iterable[str], **kwargs: Any) -> None:
    """``module.metrics``: the documented keys, detached finite 0-dim tensors, updated every call."""
    module = build(name, **kwargs)
    assert dict(module.metrics) == {}
    snapshots = []
    for seed, progress in ((15, 0.2), (16, 0.9)):
        inputs = loss_inputs(name, density=0.4, seed=seed, progress=progress)
        loss = inputs.call(module, inputs.leaf())
        metrics = dict(module.metrics)
        assert set(metrics) == set(expected_keys)
        for key, value in metrics.items():
            assert isinstance(value, Tensor) and not value.requires_grad and value.grad_fn is None, key
            assert value.dim() == 0 and torch.isfinite(value), key
        torch.testing.assert_close(metrics["loss"], loss.detach())
        snapshots.append(metrics)
    assert snapshots[0]["loss"] != snapshots[1]["loss"]
    per_image = build(name, reduction="none", **kwargs)
    inputs = loss_inputs(name, density=0.4, seed=17)
    values = inputs.call(per_image)
    torch.testing.assert_close(per_image.metrics["loss"], values.mean())


def as_batch(oracle: Kernel) -> Kernel:
    """The oracle with ``scope="global"`` read as ``"batch"`` (no process group: the same thing)."""

    def call(*args: Any, scope: str = "image", **kwargs: Any) -> Tensor:
        return oracle(*args, scope="batch" if scope == "global" else scope, **kwargs)

    return call


#: the scope/reduction pairs of the losses that also take scope="global"
GLOBAL_SCOPE_REDUCTIONS = SCOPE_REDUCTIONS + (("global", "mean"),)
