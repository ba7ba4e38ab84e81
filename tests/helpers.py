"""Shared test helpers: inputs for any registered loss, conversions, oracle comparisons.

Everything that is parametrized over the registry builds its inputs with
:func:`loss_inputs`, which reads :func:`depthloss.loss_info`: the input space, whether the
loss uses ``progress``, and the keyword inputs of ``forward`` beyond ``pred, target, mask,
progress`` (``info.inputs``; a new input name gets a builder in :data:`INPUT_BUILDERS`, or a
positive map shaped like ``pred`` by default). A newly registered loss therefore joins every
cross-cutting test without editing them.

Conversions between depth and inverse depth are written out here, independently of
``depthloss`` (the tests must not trust the code under test to prepare their inputs).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import pytest
import torch
from torch import Tensor

import depthloss
from depthloss import _accel

NAMES: List[str] = depthloss.list_losses()
SPACES = ("inverse", "depth")
NAN, INF = float("nan"), float("inf")
#: losses defined only on full stencils of valid pixels (surface normals, derivative-only losses):
#: sparse targets may give them no valid stencil at all, hence a zero loss and gradient
STENCIL_LOSSES = frozenset({"normal", "grad-l1", "mage", "male", "msge"})


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# conversions and inputs
# ---------------------------------------------------------------------------------------------
def to_input_space(depth: Tensor, space: str) -> Tensor:
    """Depth (0 = invalid) -> ``space``: a copy, or ``1 / depth`` where positive and 0 elsewhere."""
    if space == "depth":
        return depth.clone()
    safe = torch.where(depth > 0, depth, torch.ones_like(depth))
    return torch.where(depth > 0, 1.0 / safe, torch.zeros_like(depth))


def log_uniform(
    shape: Sequence[int], low: float, high: float, g: torch.Generator, dtype: torch.dtype = torch.float64
) -> Tensor:
    u = torch.rand(tuple(shape), generator=g, dtype=torch.float64)
    return torch.exp(math.log(low) + (math.log(high) - math.log(low)) * u).to(dtype)


def depth_case(
    shape: Tuple[int, ...] = (2, 1, 12, 12),
    density: float = 1.0,
    seed: int = 0,
    low: float = 0.5,
    high: float = 5.0,
    noise: float = 0.3,
) -> Tuple[Tensor, Tensor, Tensor]:
    """float64 ``(pred_depth, target_depth, valid)``: target in ``[low, high]`` where valid, 0 elsewhere.

    ``pred = target * (1 + noise * u)``, ``u`` uniform in [-1, 1] (dense: a network's output).
    """
    g = gen(seed)
    target = low + (high - low) * torch.rand(shape, generator=g, dtype=torch.float64)
    pred = target * (1.0 + noise * (2.0 * torch.rand(shape, generator=g, dtype=torch.float64) - 1.0))
    valid = torch.rand(shape, generator=g) < density if density < 1.0 else torch.ones(shape, dtype=torch.bool)
    return pred, torch.where(valid, target, torch.zeros_like(target)), valid


def junk_like(x: Tensor) -> Tensor:
    """NaN, inf, -inf, 0, -1 cycling over the pixels: what invalid pixels may hold."""
    values = torch.tensor([NAN, INF, -INF, 0.0, -1.0], dtype=x.dtype)
    return values[torch.arange(x.numel()) % 5].reshape(x.shape)


def poison(x: Tensor, mask: Optional[Tensor]) -> Tensor:
    """``x`` with junk at the pixels where ``mask`` is false."""
    return x if mask is None else torch.where(mask, x, junk_like(x))


#: how to build each keyword input of ``forward`` (``LossInfo.inputs``) for a prediction
INPUT_BUILDERS: Dict[str, Callable[[Tensor, torch.Generator], Tensor]] = {
    "weights": lambda pred, g: (0.5 + torch.rand(pred.shape, generator=g, dtype=torch.float64)).to(pred.dtype),
    # hdn-random: pre-drawn uniforms, 4 windows and 4 depth ranges per image (the same contexts every call)
    "samples": lambda pred, g: torch.rand((pred.shape[0], 4, 6), generator=g, dtype=torch.float64).to(pred.dtype),
    # a guiding RGB image (B, 3, H, W): ranking's edge-guided pairs, local-ssi's windows
    "image": lambda pred, g: torch.rand(
        (pred.shape[0], 3, pred.shape[-2], pred.shape[-1]), generator=g, dtype=torch.float64
    ).to(pred.dtype),
    # gaussian-nll / laplace-nll: a predicted log-scale of either sign; confidence: a confidence in (0, 1)
    "log_scale": lambda pred, g: (torch.rand(pred.shape, generator=g, dtype=torch.float64) * 2.0 - 1.5).to(pred.dtype),
    "confidence": lambda pred, g: (0.05 + 0.9 * torch.rand(pred.shape, generator=g, dtype=torch.float64)).to(
        pred.dtype
    ),
    "K": lambda pred, g: pinhole_k(pred),
}


def pinhole_k(pred: Tensor) -> Tensor:
    """``(B, 3, 3)`` intrinsics for ``pred``'s size: focal ``max(H, W)`` pixels, principal point at the centre."""
    b, h, w = pred.shape[0], pred.shape[-2], pred.shape[-1]
    f = float(max(h, w))
    k = torch.tensor([[f, 0.0, (w - 1) / 2.0], [0.0, f, (h - 1) / 2.0], [0.0, 0.0, 1.0]], dtype=pred.dtype)
    return k.expand(b, 3, 3).clone()


def extra_input(name: str, pred: Tensor, g: torch.Generator) -> Tensor:
    """A valid value of the keyword input ``name`` (default: a positive map like ``pred``)."""
    builder = INPUT_BUILDERS.get(name)
    if builder is None:
        return (0.5 + torch.rand(pred.shape, generator=g, dtype=torch.float64)).to(pred.dtype)
    return builder(pred, g)


def small_kwargs(name: str) -> Dict[str, Any]:
    """Cheap hyper-parameters for a loss (shallow pyramids), read from its constructor defaults."""
    defaults = depthloss.loss_info(name).defaults
    out: Dict[str, Any] = {}
    for key in ("num_scales", "scales"):
        if key in defaults:
            out[key] = 2
    if "seed" in defaults:  # losses that sample (ranking): the same samples on every call
        out["seed"] = 0
    if defaults.get("detach_pred") is True:  # confidence: exercise the gradient path into pred
        out["detach_pred"] = False
    return out


def build(name: str, space: str = "inverse", **kwargs: Any) -> torch.nn.Module:
    return depthloss.get_loss(name, input_space=space, **kwargs)


class LossInputs(NamedTuple):
    """Arguments of a module call: ``module(pred, target, mask, **kwargs)``."""

    pred: Tensor
    target: Tensor
    mask: Optional[Tensor]
    kwargs: Dict[str, Any]
    valid: Tensor  # the pixels the module counts (target > 0 and the mask)

    def call(self, module: Callable[..., Tensor], pred: Optional[Tensor] = None, **override: Any) -> Tensor:
        kwargs = {**self.kwargs, **override}
        return module(self.pred if pred is None else pred, self.target, self.mask, **kwargs)

    def leaf(self) -> Tensor:
        return self.pred.detach().clone().requires_grad_(True)


#: frames of the ``(B, T, H, W)`` clips built for ``input_layout="video"`` losses
VIDEO_FRAMES = 3


def layout_shape(shape: Tuple[int, ...], layout: str) -> Tuple[int, ...]:
    """An image shape ``(B, 1, H, W)`` / ``(B, H, W)`` as the loss's layout: ``(B, T, H, W)`` for video."""
    if layout != "video":
        return shape
    return (shape[0], VIDEO_FRAMES, shape[-2], shape[-1])


def loss_inputs(
    name: str,
    space: str = "inverse",
    shape: Tuple[int, ...] = (2, 1, 12, 12),
    density: float = 0.5,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    progress: Optional[float] = 0.3,
    mask: bool = False,
    low: float = 0.5,
    high: float = 5.0,
    extra: bool = True,
) -> LossInputs:
    """Valid inputs of the registered loss ``name`` in ``space`` (0 marks invalid target pixels).

    ``mask=True`` adds a user mask that drops a few more pixels. The keyword inputs listed in
    ``loss_info(name).inputs`` are filled in (unless ``extra=False``: then the loss computes
    them itself, e.g. near-field weights), and ``progress`` when given.
    """
    info = depthloss.loss_info(name)
    shape = layout_shape(shape, info.input_layout)
    pred_d, target_d, valid = depth_case(shape, density, seed, low, high)
    if info.input_layout == "video":  # a slowly drifting scene, the same pixels valid in every frame; pred flickers
        drift = 1.0 + 0.01 * torch.arange(shape[1], dtype=torch.float64).reshape(1, -1, 1, 1)
        flicker = 1.0 + 0.1 * torch.rand(shape, generator=gen(seed + 200), dtype=torch.float64)
        pred_d, target_d, valid = pred_d[:, :1] * drift * flicker, target_d[:, :1] * drift, valid[:, :1].expand(shape)
    pred, target = to_input_space(pred_d, space).to(dtype), to_input_space(target_d, space).to(dtype)
    g = gen(seed + 100)
    user = None
    if mask:
        user = torch.rand(shape, generator=g) < 0.8
        valid = valid & user
    kwargs: Dict[str, Any] = {}
    if progress is not None:
        kwargs["progress"] = progress
    for key in info.inputs if extra else ():
        kwargs[key] = extra_input(key, pred, g)
    return LossInputs(pred, target, user, kwargs, valid)


# ---------------------------------------------------------------------------------------------
# accelerations
# ---------------------------------------------------------------------------------------------
def reaches_acceleration(name: str) -> bool:
    """Whether a forward of loss ``name`` asks the acceleration seam for an accelerated block."""
    asked: List[str] = []
    original = _accel.lookup

    def spy(block: str, x: Tensor) -> Any:
        asked.append(block)
        return original(block, x)

    _accel.lookup = spy  # type: ignore[assignment]
    try:
        inputs = loss_inputs(name, shape=(1, 1, 6, 6), density=0.8)
        inputs.call(build(name, **small_kwargs(name)))
    finally:
        _accel.lookup = original  # type: ignore[assignment]
    return bool(asked)


def accel_modes(name: str) -> List[Any]:
    """``[True, False]`` (as pytest params) for losses that reach an acceleration, else ``[None]``.

    ``None`` runs in the ambient mode (``DEPTHLOSS_ACCEL``), the others force it with
    :func:`depthloss.accelerations`.
    """
    if reaches_acceleration(name):
        return [pytest.param(True, id="accel"), pytest.param(False, id="reference")]
    return [pytest.param(None, id="ambient")]


@contextlib.contextmanager
def accel_mode(enabled: Optional[bool]) -> Iterator[None]:
    """``depthloss.accelerations(enabled)``, or nothing for ``None``."""
    if enabled is None:
        yield
    else:
        with depthloss.accelerations(enabled):
            yield


# ---------------------------------------------------------------------------------------------
# comparisons
# ---------------------------------------------------------------------------------------------
def tolerances(dtype: torch.dtype) -> Dict[str, float]:
    """Against a float64 oracle: float32 computes in float32."""
    if dtype == torch.float32:
        return {"rtol": 2e-5, "atol": 2e-6}
    return {"rtol": 1e-10, "atol": 1e-12}


def assert_matches(actual: Tensor, expected: Tensor, dtype: torch.dtype, **override: float) -> None:
    """``actual`` has the compute ``dtype`` and ``expected``'s shape, and is close to it."""
    assert isinstance(actual, Tensor)
    assert actual.dtype == dtype, f"result dtype {actual.dtype}, expected {dtype}"
    assert actual.shape == expected.shape, f"result shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
    tol = tolerances(dtype)
    tol.update(override)
    torch.testing.assert_close(actual.detach().double(), expected.double(), **tol)


def assert_equal(a: Tensor, b: Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=0.0, atol=0.0, equal_nan=True)


def fd_grad(fn: Callable[[Tensor], Tensor], x: Tensor, where: Tensor, h: float = 1e-6) -> Tensor:
    """Central finite differences of the scalar ``fn`` (float64) w.r.t. ``x`` at the pixels ``where``.

    Entries outside ``where`` are 0. Used on the float64 loop oracles, which have no autograd.
    """
    x = x.detach().to(torch.float64)
    out = torch.zeros_like(x)
    flat, flat_out, flat_where = x.reshape(-1), out.reshape(-1), where.reshape(-1)
    for i in torch.nonzero(flat_where).flatten().tolist():
        old = float(flat[i])
        flat[i] = old + h
        up = float(fn(x))
        flat[i] = old - h
        down = float(fn(x))
        flat[i] = old
        flat_out[i] = (up - down) / (2.0 * h)
    return out


def autograd_grad(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    leaf = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(leaf), leaf)
    return g


def assert_grad_matches_oracle(
    kernel: Callable[[Tensor], Tensor], oracle: Callable[[Tensor], Tensor], x: Tensor, valid: Tensor, rtol: float = 1e-5
) -> None:
    """The library's autograd gradient equals the oracle's finite-difference gradient (float64).

    Invalid pixels: exactly 0 (and finite) in the library, whatever ``x`` holds there.
    """
    got = autograd_grad(kernel, x)
    assert torch.isfinite(got).all(), got
    assert torch.equal(got[~valid], torch.zeros_like(got[~valid]))
    expected = fd_grad(oracle, torch.where(valid, x, 1.0), valid)
    scale = float(expected.abs().max()) + 1e-12
    torch.testing.assert_close(got, expected, rtol=rtol, atol=rtol * scale)
    assert float(got.abs().max()) > 0, "a test of a zero gradient proves nothing"


#: masks the oracle comparisons run on, by name: ``fn(shape, generator) -> mask or None``
def _mask_random(shape: Tuple[int, ...], g: torch.Generator) -> Tensor:
    return torch.rand(shape, generator=g) < 0.65


def _mask_sparse_rows(shape: Tuple[int, ...], g: torch.Generator) -> Tensor:
    """LiDAR-like: every third row, 60 % of its pixels."""
    m = torch.rand(shape, generator=g) < 0.6
    rows = torch.zeros(shape, dtype=torch.bool)
    rows[..., ::3, :] = True
    return m & rows


def _mask_one_empty(shape: Tuple[int, ...], g: torch.Generator) -> Tensor:
    m = torch.rand(shape, generator=g) < 0.8
    m[min(1, shape[0] - 1)] = False
    m[0].view(-1)[0] = True
    return m


def _mask_single(shape: Tuple[int, ...], g: torch.Generator) -> Tensor:
    m = torch.zeros(shape, dtype=torch.bool)
    for b in range(shape[0]):
        m[b].view(-1)[int(torch.randint(0, m[b].numel(), (1,), generator=g))] = True
    return m


MASKS: Dict[str, Callable[[Tuple[int, ...], torch.Generator], Optional[Tensor]]] = {
    "none": lambda shape, g: None,
    "random": _mask_random,
    "sparse_rows": _mask_sparse_rows,
    "one_empty": _mask_one_empty,
    "single": _mask_single,
}
#: 4-D, 3-D, odd sizes, a size below the Sobel stencil
ORACLE_SHAPES: Tuple[Tuple[int, ...], ...] = ((3, 1, 9, 10), (2, 7, 6), (2, 1, 2, 5))


def oracle_pair(
    shape: Tuple[int, ...], mask_kind: str, seed: int, dtype: torch.dtype, low: float = 0.3, high: float = 3.0
) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """Positive log-uniform ``(pred, target, mask)`` with junk (NaN/inf/0/-1) at invalid pixels."""
    g = gen(seed)
    pred = log_uniform(shape, low, high, g, dtype)
    target = log_uniform(shape, low, high, g, dtype)
    mask = MASKS[mask_kind](shape, g)
    return poison(pred, mask), poison(target, mask), mask


def valid_of(mask: Optional[Tensor], like: Tensor) -> Tensor:
    return torch.ones_like(like, dtype=torch.bool) if mask is None else mask
