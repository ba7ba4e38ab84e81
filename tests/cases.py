"""Inputs shared by the building-block and edge-case tests: random cases with junk at invalid
pixels, adversarial edge cases, exact-median stress inputs, and the comparison helpers."""

from __future__ import annotations

import math
from typing import Any, Dict, NamedTuple, Optional, Tuple

import torch

DTYPES = (torch.float32, torch.float64)
DTYPE_IDS = ("f32", "f64")
SEEDS = (0, 1, 2)
SCOPE_REDUCTIONS = (("image", "mean"), ("image", "sum"), ("image", "none"), ("batch", "mean"), ("batch", "sum"))
# edge cases are about per-image values and which images count: "sum" is covered by the random tests
EDGE_SCOPE_REDUCTIONS = (("image", "mean"), ("image", "none"), ("batch", "mean"))
NAN, INF = float("nan"), float("inf")


def tolerances(dtype: torch.dtype) -> Dict[str, float]:
    """Comparison tolerances against a float64 oracle: float32 kernels compute in float32."""
    if dtype == torch.float32:
        return {"rtol": 2e-5, "atol": 2e-6}
    return {"rtol": 1e-10, "atol": 1e-12}


def assert_matches(actual: Any, expected: torch.Tensor, dtype: torch.dtype, **override: float) -> None:
    """``actual`` has the compute dtype and ``expected``'s shape, and is close to it."""
    assert isinstance(actual, torch.Tensor)
    assert actual.dtype == dtype, f"result dtype {actual.dtype}, expected {dtype}"
    assert actual.shape == expected.shape, f"result shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
    tol = tolerances(dtype)
    tol.update(override)
    torch.testing.assert_close(actual.detach().double(), expected, **tol)


def assert_exact(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Bit-exact equality of values (after the exact float32 -> float64 widening) and shape."""
    assert actual.shape == expected.shape, f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    a = actual.detach()
    a = a if a.dtype == torch.bool else a.double()
    assert torch.equal(a, expected), f"\nactual:   {a}\nexpected: {expected}"


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------


class Case(NamedTuple):
    pred: torch.Tensor
    target: torch.Tensor
    mask: Optional[torch.Tensor]
    weights: torch.Tensor


def log_uniform(
    shape: Tuple[int, ...], low: float, high: float, gen: torch.Generator, dtype: torch.dtype
) -> torch.Tensor:
    u = torch.rand(shape, generator=gen, dtype=torch.float64)
    return torch.exp(math.log(low) + (math.log(high) - math.log(low)) * u).to(dtype)


def junk_like(x: torch.Tensor) -> torch.Tensor:
    """NaN, inf, -inf, 0, -1 cycling over the pixels: what invalid pixels may hold."""
    values = torch.tensor([NAN, INF, -INF, 0.0, -1.0], dtype=x.dtype)
    return values[torch.arange(x.numel()) % 5].reshape(x.shape)


def poison(x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """``x`` with junk at the invalid pixels."""
    if mask is None:
        return x
    return torch.where(mask, x, junk_like(x))


RANDOM_SHAPES = {0: ((3, 1, 8, 10), 0.7), 1: ((2, 9, 7), 0.5), 2: ((3, 6, 6), 0.35)}


def random_case(
    seed: int,
    dtype: torch.dtype,
    shape: Optional[Tuple[int, ...]] = None,
    density: Optional[float] = None,
    low: float = 0.2,
    high: float = 5.0,
    junk: bool = True,
) -> Case:
    """Positive log-uniform pred/target, a random mask, weights in [0, 2), junk where invalid."""
    default_shape, default_density = RANDOM_SHAPES[seed % 3]
    shape = shape or default_shape
    density = default_density if density is None else density
    gen = torch.Generator().manual_seed(1000 + seed)
    pred = log_uniform(shape, low, high, gen, dtype)
    target = log_uniform(shape, low, high, gen, dtype)
    mask = torch.rand(shape, generator=gen) < density
    weights = (2.0 * torch.rand(shape, generator=gen, dtype=torch.float64)).to(dtype)
    if not junk:
        return Case(pred, target, mask, weights)
    return Case(poison(pred, mask), poison(target, mask), mask, poison(weights, mask))


def mask_with_counts(shape: Tuple[int, ...], counts: Tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """A mask whose image ``b`` has exactly ``counts[b]`` valid pixels at random positions."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.zeros(shape, dtype=torch.bool)
    n = math.prod(shape[1:])
    for b, c in enumerate(counts):
        mask[b].view(-1)[torch.randperm(n, generator=gen)[:c]] = True
    return mask


EDGE_CASES = (
    "empty_all",
    "one_empty_image",
    "single_pixel",
    "constant_pred",
    "constant_both",
    "integer_ties",
    "wide_range",
    "odd_even_counts",
    "zero_weights_image",
    "no_mask",
)


def edge_case(name: str, dtype: torch.dtype) -> Case:
    """Adversarial inputs; pred/target are positive wherever valid (silog, abs_rel need it)."""
    shape = (3, 1, 5, 6)
    gen = torch.Generator().manual_seed(7)
    base = random_case(0, dtype, shape=shape, density=0.6, junk=False)
    pred, target, mask, weights = base
    if name == "empty_all":
        mask = torch.zeros(shape, dtype=torch.bool)
    elif name == "one_empty_image":
        mask = mask.clone()
        mask[1] = False
        mask[0, 0, 0, 0] = True
    elif name == "single_pixel":
        mask = torch.zeros(shape, dtype=torch.bool)
        mask[0, 0, 0, 0] = mask[1, 0, 2, 3] = mask[2, 0, 4, 5] = True
    elif name == "constant_pred":
        pred = torch.full(shape, 2.5, dtype=dtype)
    elif name == "constant_both":
        pred = torch.full(shape, 2.0, dtype=dtype)
        target = torch.full(shape, 0.5, dtype=dtype)
    elif name == "integer_ties":
        pred = torch.randint(1, 4, shape, generator=gen).to(dtype)
        target = torch.randint(1, 4, shape, generator=gen).to(dtype)
    elif name == "wide_range":
        pred = log_uniform(shape, 1e-3, 1e3, gen, dtype)
        target = log_uniform(shape, 1e-3, 1e3, gen, dtype)
    elif name == "odd_even_counts":
        shape = (4, 4, 5)
        mask = mask_with_counts(shape, (1, 2, 7, 8))
        pred = log_uniform(shape, 0.5, 4.0, gen, dtype)
        target = log_uniform(shape, 0.5, 4.0, gen, dtype)
        weights = torch.rand(shape, generator=gen, dtype=torch.float64).to(dtype)
    elif name == "zero_weights_image":
        weights = weights.clone()
        weights[0] = 0.0
        mask = mask.clone()
        mask[0, 0, 0, :] = True
    elif name == "no_mask":
        shape = (2, 4, 5)
        pred = log_uniform(shape, 0.5, 4.0, gen, dtype)
        target = log_uniform(shape, 0.5, 4.0, gen, dtype)
        return Case(pred, target, None, torch.rand(shape, generator=gen, dtype=torch.float64).to(dtype))
    else:  # pragma: no cover
        raise KeyError(name)
    return Case(poison(pred, mask), poison(target, mask), mask, poison(weights, mask))


# ---------------------------------------------------------------------------------------------
# loss kernels
# ---------------------------------------------------------------------------------------------


def leaf(x: torch.Tensor) -> torch.Tensor:
    return x.detach().clone().requires_grad_(True)


def assert_invalid_grad_zero(grad: Optional[torch.Tensor], mask: torch.Tensor) -> None:
    assert grad is not None
    assert torch.isfinite(grad).all(), grad
    assert torch.equal(grad[~mask], torch.zeros_like(grad[~mask])), grad[~mask]


def median_inputs(dtype: torch.dtype) -> Dict[str, Tuple[torch.Tensor, Optional[torch.Tensor]]]:
    """Named ``(x, mask)`` pairs that stress the exact lower median."""
    gen = torch.Generator().manual_seed(3)
    out: Dict[str, Tuple[torch.Tensor, Optional[torch.Tensor]]] = {}
    shape = (5, 4, 5)
    x = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
    # every image a different count (odd and even), one empty image
    counts_mask = mask_with_counts(shape, (1, 2, 7, 8, 0), seed=4)
    out["odd_even_counts"] = (poison(x, counts_mask), counts_mask)
    out["ties_integer"] = (torch.randint(0, 3, shape, generator=gen).to(dtype), torch.rand(shape, generator=gen) < 0.6)
    out["ties_even_split"] = (  # two middle values differ: 1 and 2 -> lower median 1
        torch.tensor([[[1.0, 1.0, 2.0, 2.0]], [[2.0, 1.0, 2.0, 1.0]]], dtype=dtype),
        None,
    )
    special = torch.tensor(
        [
            [-INF, -1e30, -3.5, -0.0, 0.0, 1e-40, 5e-324, 2.0, 1e30, INF],
            [-0.0, 0.0, -0.0, 0.0, -0.0, -1e-300, 1e-300, -2.0, 3.0, -5.0],
        ],
        dtype=torch.float64,
    ).to(dtype)
    out["special_values"] = (special.reshape(2, 2, 5), torch.rand(2, 2, 5, generator=gen) < 0.8)
    # values sharing all high bits: only the last radix digit tells them apart
    base = torch.tensor(1.0, dtype=dtype)
    ulps = torch.nextafter(base, torch.tensor(2.0, dtype=dtype)) - base
    close_values = base + ulps * torch.randperm(12, generator=gen).to(dtype)
    out["one_ulp_apart"] = (close_values.reshape(1, 3, 4), None)
    out["negative_one_ulp_apart"] = ((-close_values).reshape(1, 1, 3, 4), None)
    wide = log_uniform((3, 1, 6, 7), 1e-3, 1e3, gen, dtype) * torch.where(
        torch.rand(3, 1, 6, 7, generator=gen) < 0.5, -1.0, 1.0
    ).to(dtype)
    wide_mask = torch.rand(3, 1, 6, 7, generator=gen) < 0.5
    out["wide_signed_4d"] = (poison(wide, wide_mask), wide_mask)
    out["single_pixel"] = (x, mask_with_counts(shape, (1, 1, 1, 1, 1), seed=5))
    out["all_empty"] = (poison(x, torch.zeros(shape, dtype=torch.bool)), torch.zeros(shape, dtype=torch.bool))
    constant = torch.full(shape, 0.3, dtype=dtype)
    out["constant"] = (constant, counts_mask)
    return out


MEDIAN_CASES = tuple(median_inputs(torch.float64))
