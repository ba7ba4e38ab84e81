"""Every public kernel of ``depthloss.functional`` against the float64 oracles in ``reference.py``.

Random inputs (several seeds, random masks, NaN/inf garbage at invalid pixels, optional
weights, 3-D and 4-D layouts, both scopes, all reductions, float32 and float64) and
adversarial edge cases: empty masks, a single valid pixel, constant images, odd and even
valid counts, heavy ties, depths spanning 1e-3..1e3, images smaller than the 3x3 Sobel
stencil or the pyramid. Per-pixel outputs are checked for shape and for exact zeros at
invalid pixels; the loss kernels must give exactly zero (and finite) gradient to invalid
pixels even when those hold NaN or inf.

Expected values always come from ``reference.py`` (which does not import depthloss) or from
hand-derived numbers, never from the code under test.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

import pytest
import torch

import depthloss.functional as DF
import reference as R

DTYPES = (torch.float32, torch.float64)
DTYPE_IDS = ("f32", "f64")
SEEDS = (0, 1, 2)
SCOPE_REDUCTIONS = (("image", "mean"), ("image", "sum"), ("image", "none"), ("batch", "mean"), ("batch", "sum"))
# edge cases are about per-image values and which images count: "sum" is covered by the random tests
EDGE_SCOPE_REDUCTIONS = (("image", "mean"), ("image", "none"), ("batch", "mean"))
NAN, INF = float("nan"), float("inf")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Run this module's tiny-tensor tests on one intra-op thread (restored afterwards).

    Every tensor here is a few hundred elements: intra-op threads only add synchronization,
    and on a loaded 2-core machine they made the module several times slower.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


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


def log_uniform(shape: Tuple[int, ...], low: float, high: float, gen: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
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


class LossSpec(NamedTuple):
    kernel: Callable[..., torch.Tensor]
    oracle: Callable[..., torch.Tensor]
    kwargs: Dict[str, Any]
    weighted: bool


LOSSES: Dict[str, LossSpec] = {
    "ssi": LossSpec(DF.ssi, R.ssi, {}, True),
    "ssi_alpha0": LossSpec(DF.ssi, R.ssi, {"alpha": 0.0}, True),
    "ssi_alpha1": LossSpec(DF.ssi, R.ssi, {"alpha": 1.0}, True),
    "ssi_mae": LossSpec(DF.ssi_mae, R.ssi_mae, {}, False),
    "ssi_mae_trim0": LossSpec(DF.ssi_mae, R.ssi_mae, {"trim": 0.0}, False),
    "ssi_mae_trim_0.29": LossSpec(DF.ssi_mae, R.ssi_mae, {"trim": 0.29, "eps": 1e-3}, False),
    "ssi_mae_trim_max": LossSpec(DF.ssi_mae, R.ssi_mae, {"trim": 0.9999999}, False),
    "ssi_lsq": LossSpec(DF.ssi_lsq, R.ssi_lsq, {}, True),
    "silog": LossSpec(DF.silog, R.silog, {}, True),
    "silog_lambd1": LossSpec(DF.silog, R.silog, {"lambd": 1.0, "ratio": 1.0, "eps": 0.0}, True),
    "silog_lambd0": LossSpec(DF.silog, R.silog, {"lambd": 0.0, "ratio": 2.5, "eps": 1e-4}, True),
    "l1": LossSpec(DF.l1, R.l1, {}, True),
    "mse": LossSpec(DF.mse, R.mse, {}, True),
    "berhu": LossSpec(DF.berhu, R.berhu, {}, True),
    "berhu_0.5": LossSpec(DF.berhu, R.berhu, {"threshold": 0.5}, True),
    "berhu_1.5": LossSpec(DF.berhu, R.berhu, {"threshold": 1.5}, True),
    "abs_rel": LossSpec(DF.abs_rel, R.abs_rel, {}, True),
}


def loss_tolerance(name: str, case: Case, dtype: torch.dtype) -> Dict[str, float]:
    """Extra absolute tolerance for SILog.

    SILog is ``ratio * sqrt(E[g^2] - lambd E[g]^2 + eps)`` from sufficient statistics (sums,
    by design, so they can be all-reduced): the radicand carries an absolute rounding error
    of a few ``eps_dtype * E[g^2]``, which the square root amplifies to
    ``ratio * sqrt(few * eps_dtype * E[g^2])`` when the radicand is near 0 (a constant
    log-ratio with ``lambd = 1``, eps = 0). Bound it from the inputs.
    """
    if not name.startswith("silog"):
        return {}
    mask = case.mask if case.mask is not None else torch.ones_like(case.pred, dtype=torch.bool)
    g = torch.log(case.pred.double()) - torch.log(case.target.double())
    e_g2 = float(torch.where(mask, g * g, 0.0).max())
    ratio = LOSSES[name].kwargs.get("ratio", 10.0)
    return {"atol": ratio * math.sqrt(64 * torch.finfo(dtype).eps * e_g2) + tolerances(dtype)["atol"]}


def run_loss(name: str, case: Case, reduction: str, scope: str, use_weights: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    spec = LOSSES[name]
    kw = dict(spec.kwargs, reduction=reduction, scope=scope)
    if spec.weighted:
        kw["weights"] = case.weights if use_weights else None
    return spec.kernel(case.pred, case.target, case.mask, **kw), spec.oracle(case.pred, case.target, case.mask, **kw)


def weight_options(name: str) -> Tuple[bool, ...]:
    return (False, True) if LOSSES[name].weighted else (False,)


@pytest.mark.parametrize("scope,reduction", SCOPE_REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_random(name: str, seed: int, dtype: torch.dtype, scope: str, reduction: str) -> None:
    case = random_case(seed, dtype)
    for use_weights in weight_options(name):
        actual, expected = run_loss(name, case, reduction, scope, use_weights)
        assert_matches(actual, expected, dtype, **loss_tolerance(name, case, dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("edge", EDGE_CASES)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_edge_cases(name: str, edge: str, dtype: torch.dtype) -> None:
    case = edge_case(edge, dtype)
    for scope, reduction in EDGE_SCOPE_REDUCTIONS:
        for use_weights in weight_options(name):
            actual, expected = run_loss(name, case, reduction, scope, use_weights)
            assert_matches(actual, expected, dtype, **loss_tolerance(name, case, dtype))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_empty_mask_is_exactly_zero(name: str) -> None:
    case = edge_case("empty_all", torch.float32)
    for scope, reduction in SCOPE_REDUCTIONS:
        for use_weights in weight_options(name):
            actual, _ = run_loss(name, case, reduction, scope, use_weights)
            expected_shape = (3,) if reduction == "none" else ()
            assert actual.shape == expected_shape
            assert torch.equal(actual, torch.zeros(expected_shape)), actual


def test_loss_mean_skips_empty_images() -> None:
    """Hand-computed: image losses 1 (1 px), 0 (empty), 3 (2 px) -> mean over non-empty = 2."""
    pred = torch.tensor([[[1.0, 9.0]], [[5.0, 5.0]], [[2.0, 6.0]]])
    target = torch.tensor([[[0.0, NAN]], [[NAN, INF]], [[-1.0, 3.0]]])
    mask = torch.tensor([[[True, False]], [[False, False]], [[True, True]]])
    assert torch.equal(DF.l1(pred, target, mask, reduction="none"), torch.tensor([1.0, 0.0, 3.0]))
    assert torch.equal(DF.l1(pred, target, mask, reduction="sum"), torch.tensor(4.0))
    assert torch.equal(DF.l1(pred, target, mask), torch.tensor(2.0))
    # pooled: (1 + 3 + 3) / 3 valid pixels
    torch.testing.assert_close(DF.l1(pred, target, mask, scope="batch"), torch.tensor(7.0 / 3.0))


def test_ssi_mae_trim_close_to_one_keeps_the_smallest_residual() -> None:
    """trim < 1 always keeps k = n - floor(trim n) >= 1 residuals (a trim rounded up to 1 kept none)."""
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0]]], dtype=torch.float64)
    y = torch.tensor([[[3.0, 2.0, 1.0, 4.0, 50.0]]], dtype=torch.float64)
    # x_hat = (x - 3) / 1.2 = [-5/3, -5/6, 0, 5/6, 5/3]; y_hat = (y - 3) / 10.2 = [0, -1, -2, 1, 47] / 10.2
    # residuals [5/3, 5/6 - 1/10.2, 2/10.2, 5/6 - 1/10.2, 47/10.2 - 5/3]; the smallest is 2/10.2
    for trim in (0.8, 0.9999999):  # k = 5 - floor(4.0) = 1 and 5 - floor(4.9999995) = 1
        torch.testing.assert_close(DF.ssi_mae(x, y, trim=trim), torch.tensor(2 / 10.2, dtype=torch.float64))


# ---------------------------------------------------------------------------------------------
# gradients at invalid pixels
# ---------------------------------------------------------------------------------------------


def leaf(x: torch.Tensor) -> torch.Tensor:
    return x.detach().clone().requires_grad_(True)


def assert_invalid_grad_zero(grad: Optional[torch.Tensor], mask: torch.Tensor) -> None:
    assert grad is not None
    assert torch.isfinite(grad).all(), grad
    assert torch.equal(grad[~mask], torch.zeros_like(grad[~mask])), grad[~mask]


@pytest.mark.parametrize("scope", ("image", "batch"))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_invalid_pixels_get_zero_gradient(name: str, dtype: torch.dtype, scope: str) -> None:
    case = edge_case("one_empty_image", dtype)  # NaN/inf/-inf/0/-1 at invalid pixels, image 1 empty
    assert case.mask is not None
    assert not torch.isfinite(case.pred[~case.mask]).all()
    spec = LOSSES[name]
    pred, target, weights = leaf(case.pred), leaf(case.target), leaf(case.weights)
    kw = dict(spec.kwargs, scope=scope)
    if spec.weighted:
        kw["weights"] = weights
    loss = spec.kernel(pred, target, case.mask, **kw)
    assert torch.isfinite(loss)
    loss.backward()
    assert_invalid_grad_zero(pred.grad, case.mask)
    assert_invalid_grad_zero(target.grad, case.mask)
    if spec.weighted:
        assert_invalid_grad_zero(weights.grad, case.mask)
    if scope == "image":
        assert pred.grad is not None and torch.equal(pred.grad[1], torch.zeros_like(pred.grad[1]))
    # the valid pixels do receive a gradient somewhere (the test above cannot pass vacuously)
    assert pred.grad is not None and (pred.grad[case.mask] != 0).any()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_all_invalid_gives_zero_gradient(name: str) -> None:
    case = edge_case("empty_all", torch.float64)
    spec = LOSSES[name]
    pred, target = leaf(case.pred), leaf(case.target)
    loss = spec.kernel(pred, target, case.mask, **spec.kwargs)
    assert torch.equal(loss.detach(), torch.tensor(0.0, dtype=torch.float64))
    loss.backward()
    assert pred.grad is not None and torch.equal(pred.grad, torch.zeros_like(pred))
    assert target.grad is not None and torch.equal(target.grad, torch.zeros_like(target))


def _stat_outputs(kernel: str, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    if kernel == "masked_mean":
        return DF.masked_mean(x, mask, w).sum()
    if kernel == "masked_var":
        return DF.masked_var(x, mask, w).sum()
    if kernel == "masked_median":
        return DF.masked_median(x, mask).sum()
    if kernel == "mad_normalize":
        x_hat, shift, scale = DF.mad_normalize(x, mask)
        return (x_hat * torch.arange(x_hat.numel()).reshape(x_hat.shape)).sum() + shift.sum() + scale.sum()
    if kernel == "lsq_scale_shift":
        s, t = DF.lsq_scale_shift(x, y, mask, w)
        return s.sum() + t.sum()
    if kernel == "gradient_matching":
        return DF.gradient_matching(x - y, mask, scales=2, operator="sobel") + DF.gradient_matching(
            x - y, mask, scales=3, operator="diff"
        )
    raise KeyError(kernel)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(
    "kernel", ("masked_mean", "masked_var", "masked_median", "mad_normalize", "lsq_scale_shift", "gradient_matching")
)
def test_statistics_invalid_pixels_get_zero_gradient(kernel: str, dtype: torch.dtype) -> None:
    case = random_case(0, dtype, shape=(2, 1, 9, 9), density=0.85)
    assert case.mask is not None
    x, y, w = leaf(case.pred), leaf(case.target), leaf(case.weights)
    out = _stat_outputs(kernel, x, y, case.mask, w)
    assert torch.isfinite(out)
    out.backward()
    assert_invalid_grad_zero(x.grad, case.mask)
    assert x.grad is not None and (x.grad[case.mask] != 0).any()
    if kernel in ("lsq_scale_shift", "gradient_matching"):
        assert_invalid_grad_zero(y.grad, case.mask)
    if kernel in ("masked_mean", "masked_var", "lsq_scale_shift"):
        assert_invalid_grad_zero(w.grad, case.mask)


# ---------------------------------------------------------------------------------------------
# moments, medians, MAD normalization, least squares
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_weights", (False, True))
@pytest.mark.parametrize("scope", ("image", "batch"))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_moments_random(seed: int, dtype: torch.dtype, scope: str, use_weights: bool) -> None:
    case = random_case(seed, dtype)
    x = case.pred - 1.0  # signed values (junk stays junk)
    w = case.weights if use_weights else None
    assert_matches(DF.masked_mean(x, case.mask, w, scope=scope), R.masked_mean(x, case.mask, w, scope=scope), dtype)
    assert_matches(DF.masked_var(x, case.mask, w, scope=scope), R.masked_var(x, case.mask, w, scope=scope), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("edge", EDGE_CASES)
def test_moments_edge_cases(edge: str, dtype: torch.dtype) -> None:
    case = edge_case(edge, dtype)
    for scope in ("image", "batch"):
        for w in (None, case.weights):
            for x in (case.pred, case.target):
                assert_matches(DF.masked_mean(x, case.mask, w, scope=scope), R.masked_mean(x, case.mask, w, scope=scope), dtype)
                assert_matches(DF.masked_var(x, case.mask, w, scope=scope), R.masked_var(x, case.mask, w, scope=scope), dtype)


def test_masked_var_large_offset_is_stable() -> None:
    """Var of 1e4 + {0, 1, 2} is 2/3 exactly; the centred form keeps it in float32."""
    x = torch.tensor([[[1e4, 1e4 + 1, 1e4 + 2]]])
    torch.testing.assert_close(DF.masked_var(x), torch.tensor([2.0 / 3.0]), rtol=1e-5, atol=0.0)


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
    wide = log_uniform((3, 1, 6, 7), 1e-3, 1e3, gen, dtype) * torch.where(torch.rand(3, 1, 6, 7, generator=gen) < 0.5, -1.0, 1.0).to(dtype)
    wide_mask = torch.rand(3, 1, 6, 7, generator=gen) < 0.5
    out["wide_signed_4d"] = (poison(wide, wide_mask), wide_mask)
    out["single_pixel"] = (x, mask_with_counts(shape, (1, 1, 1, 1, 1), seed=5))
    out["all_empty"] = (poison(x, torch.zeros(shape, dtype=torch.bool)), torch.zeros(shape, dtype=torch.bool))
    constant = torch.full(shape, 0.3, dtype=dtype)
    out["constant"] = (constant, counts_mask)
    return out


MEDIAN_CASES = tuple(median_inputs(torch.float64))


@pytest.mark.parametrize("scope", ("image", "batch"))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", MEDIAN_CASES)
def test_masked_median_is_exact_lower_median(case: str, dtype: torch.dtype, scope: str) -> None:
    x, mask = median_inputs(dtype)[case]
    actual = DF.masked_median(x, mask, scope=scope)
    assert actual.dtype == dtype
    assert_exact(actual, R.masked_median(x, mask, scope=scope))
    if mask is None and scope == "image":  # torch's own convention, for the record
        assert_exact(actual, torch.median(x.reshape(x.shape[0], -1), dim=1).values.double())


def _kth_oracle(rows: torch.Tensor, valid: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The k-th smallest valid value of each row by sorting (0 where k = 0)."""
    out = []
    for x, v, kk in zip(rows.double(), valid, k.tolist()):
        out.append(torch.sort(x[v]).values[kk - 1] if kk > 0 else torch.tensor(0.0, dtype=torch.float64))
    return torch.stack(out)


@pytest.mark.parametrize("impl", ("cpu", "radix"))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", MEDIAN_CASES)
def test_kth_smallest_every_rank_both_implementations(case: str, dtype: torch.dtype, impl: str) -> None:
    """Both selection implementations (the CPU operator and the radix select CUDA runs) at every rank."""
    from depthloss.functional._select import kth_smallest, kth_smallest_index

    x, mask = median_inputs(dtype)[case]
    rows = x.reshape(x.shape[0], -1)
    valid = torch.ones_like(rows, dtype=torch.bool) if mask is None else mask.reshape(rows.shape)
    count = valid.sum(dim=1)
    for rank in range(int(count.max()) + 1):
        k = torch.minimum(count, torch.tensor(rank))
        got = kth_smallest(rows, valid, k, impl=impl)
        assert_exact(got, _kth_oracle(rows, valid, k))
        idx = kth_smallest_index(rows, valid, k, impl=impl)
        has = k > 0
        assert valid.gather(1, idx.unsqueeze(1)).squeeze(1)[has].all(), "the selected position must be valid"


@pytest.mark.parametrize("scope", ("image", "batch"))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_median_and_mad_random(seed: int, dtype: torch.dtype, scope: str) -> None:
    case = random_case(seed, dtype)
    x = case.pred - 1.0  # signed values, junk at invalid pixels
    assert_exact(DF.masked_median(x, case.mask, scope=scope), R.masked_median(x, case.mask, scope=scope))
    x_hat, shift, scale = DF.mad_normalize(x, case.mask, scope=scope)
    e_hat, e_shift, e_scale = R.mad_normalize(x, case.mask, scope=scope)
    assert_exact(shift, e_shift)
    assert_matches(scale, e_scale, dtype)
    assert_matches(x_hat, e_hat, dtype)
    assert torch.equal(x_hat[~case.mask], torch.zeros_like(x_hat[~case.mask]))


def test_masked_median_hand_computed() -> None:
    x = torch.tensor([[[5.0, 1.0, 4.0, 2.0, NAN, 3.0]], [[8.0, 6.0, 7.0, 9.0, 0.0, 0.0]]])
    mask = torch.tensor([[[True, True, True, True, False, True]], [[True, True, True, True, False, False]]])
    # image 0: {1,2,3,4,5} -> 3; image 1: {6,7,8,9} -> lower median 7; pooled 9 values -> 5
    assert torch.equal(DF.masked_median(x, mask), torch.tensor([3.0, 7.0]))
    assert torch.equal(DF.masked_median(x, mask, scope="batch"), torch.tensor([5.0, 5.0]))


@pytest.mark.parametrize("scope", ("image", "batch"))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", MEDIAN_CASES)
def test_mad_normalize(case: str, dtype: torch.dtype, scope: str) -> None:
    x, mask = median_inputs(dtype)[case]
    valid = mask if mask is not None else torch.ones_like(x, dtype=torch.bool)
    if not torch.isfinite(torch.where(valid, x, 0.0)).all():
        x = torch.nan_to_num(x, posinf=7.0, neginf=-7.0)  # infinite valid values have no MAD
    for eps in (1e-6, 0.5):
        x_hat, shift, scale = DF.mad_normalize(x, mask, eps, scope=scope)
        e_hat, e_shift, e_scale = R.mad_normalize(x, mask, eps, scope=scope)
        assert x_hat.shape == x.shape and shift.shape == scale.shape == (x.shape[0],)
        assert_exact(shift, e_shift)
        assert_matches(scale, e_scale, dtype, atol=0.0)
        # x_hat is a ratio of an exact difference and the scale: relative tolerance only
        assert_matches(x_hat, e_hat, dtype, atol=torch.finfo(dtype).tiny)  # float32 underflow of 1e-40 / 1e30
        if mask is not None:
            assert torch.equal(x_hat[~mask], torch.zeros_like(x_hat[~mask]))


@pytest.mark.parametrize("use_weights", (False, True))
@pytest.mark.parametrize("scope", ("image", "batch"))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_lsq_scale_shift_random(seed: int, dtype: torch.dtype, scope: str, use_weights: bool) -> None:
    case = random_case(seed, dtype)
    w = case.weights if use_weights else None
    s, t = DF.lsq_scale_shift(case.pred, case.target, case.mask, w, scope=scope)
    e_s, e_t = R.lsq_scale_shift(case.pred, case.target, case.mask, w, scope=scope)
    assert_matches(s, e_s, dtype, atol=1e-5 if dtype == torch.float32 else 1e-12)
    assert_matches(t, e_t, dtype, atol=1e-5 if dtype == torch.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("edge", EDGE_CASES)
def test_lsq_scale_shift_edge_cases(edge: str, dtype: torch.dtype) -> None:
    case = edge_case(edge, dtype)
    for scope in ("image", "batch"):
        for w in (None, case.weights):
            s, t = DF.lsq_scale_shift(case.pred, case.target, case.mask, w, scope=scope)
            e_s, e_t = R.lsq_scale_shift(case.pred, case.target, case.mask, w, scope=scope)
            # wide_range: t is a difference of terms up to 1e3, so float32 needs an absolute margin
            atol = 1e-3 if (dtype == torch.float32 and edge == "wide_range") else None
            assert_matches(s, e_s, dtype, **({"atol": atol} if atol else {}))
            assert_matches(t, e_t, dtype, **({"atol": atol} if atol else {}))


def test_lsq_scale_shift_exact_affine_and_degenerate() -> None:
    pred = torch.tensor([[[1.0, 2.0, 3.0, 4.0]], [[2.0, 2.0, 2.0, 2.0]], [[1.0, 5.0, 7.0, 9.0]]], dtype=torch.float64)
    target = torch.tensor([[[-1.0, -4.0, -7.0, -10.0]], [[1.0, 2.0, 3.0, 6.0]], [[0.0, 0.0, 0.0, 0.0]]], dtype=torch.float64)
    mask = torch.tensor([[[True] * 4], [[True] * 4], [[False] * 4]])
    s, t = DF.lsq_scale_shift(pred, target, mask)
    # image 0: target = -3 pred + 2; image 1: constant pred -> (0, mean target = 3); image 2: empty -> (0, 0)
    torch.testing.assert_close(s, torch.tensor([-3.0, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(t, torch.tensor([2.0, 3.0, 0.0], dtype=torch.float64))


# ---------------------------------------------------------------------------------------------
# image gradients
# ---------------------------------------------------------------------------------------------

GRID_SHAPES = ((2, 1, 6, 7), (3, 5, 5), (1, 1, 3, 3), (2, 2, 9), (2, 9, 2), (2, 1, 9), (2, 9, 1), (1, 1, 1, 1), (1, 3, 4))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", GRID_SHAPES, ids=str)
def test_sobel(shape: Tuple[int, ...], dtype: torch.dtype) -> None:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(11), dtype=torch.float64).to(dtype)
    gx, gy = DF.sobel(x)
    e_gx, e_gy = R.sobel(x)
    assert_matches(gx, e_gx, dtype)
    assert_matches(gy, e_gy, dtype)
    interior = R.sobel_mask(torch.ones(shape, dtype=torch.bool))
    assert torch.equal(gx[~interior], torch.zeros_like(gx[~interior]))
    assert torch.equal(gy[~interior], torch.zeros_like(gy[~interior]))


def test_sobel_orientation_hand_computed() -> None:
    x = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 8.0], [0.0, 0.0, 0.0]]])
    gx, gy = DF.sobel(x)
    # centre: gx = 2 * 8 / 8 = 2 (value grows to the right), gy = 0 (up/down symmetric)
    assert gx[0, 1, 1] == 2.0 and gy[0, 1, 1] == 0.0
    gx, gy = DF.sobel(x.transpose(-1, -2))
    assert gx[0, 1, 1] == 0.0 and gy[0, 1, 1] == 2.0


@pytest.mark.parametrize("density", (1.0, 0.9, 0.5, 0.0))
@pytest.mark.parametrize("shape", GRID_SHAPES, ids=str)
def test_sobel_mask(shape: Tuple[int, ...], density: float) -> None:
    mask = torch.rand(shape, generator=torch.Generator().manual_seed(12)) < density
    out = DF.sobel_mask(mask)
    assert out.dtype == torch.bool
    assert_exact(out, R.sobel_mask(mask))


GM_SHAPES = ((3, 1, 13, 17), (2, 12, 12), (2, 3, 5), (2, 1, 9), (2, 2, 9), (2, 9, 1), (2, 1, 1, 1))
GM_MASKS = ("none", "random", "sparse", "empty_image", "single_pixel")


def gm_mask(kind: str, shape: Tuple[int, ...], seed: int = 13) -> Optional[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    if kind == "none":
        return None
    if kind == "random":
        return torch.rand(shape, generator=gen) < 0.85
    if kind == "sparse":
        return torch.rand(shape, generator=gen) < 0.4
    if kind == "empty_image":
        mask = torch.rand(shape, generator=gen) < 0.9
        mask[0] = False
        return mask
    return mask_with_counts(shape, (1,) * shape[0], seed=seed)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("mask_kind", GM_MASKS)
@pytest.mark.parametrize("shape", GM_SHAPES, ids=str)
@pytest.mark.parametrize("operator", ("sobel", "diff"))
def test_gradient_matching(operator: str, shape: Tuple[int, ...], mask_kind: str, dtype: torch.dtype) -> None:
    residual = torch.randn(shape, generator=torch.Generator().manual_seed(14), dtype=torch.float64).to(dtype)
    mask = gm_mask(mask_kind, shape)
    residual = poison(residual, mask)
    for scales in (1, 4):
        for scope, reduction in SCOPE_REDUCTIONS:
            kw = {"scales": scales, "operator": operator, "reduction": reduction, "scope": scope}
            assert_matches(
                DF.gradient_matching(residual, mask, **kw), R.gradient_matching(residual, mask, **kw), dtype
            )


def test_gradient_matching_hand_computed() -> None:
    """A 3x5 step edge with 4 scales, most of them smaller than the pyramid."""
    r = torch.tensor([[[0.0, 0.0, 1.0, 1.0, 1.0]] * 3])
    # diff, level 0: one unit jump per row (3) over 15 pixels; level 1 (rows 0, 2; cols 0, 2, 4):
    # a jump 0 -> 1 per row (2) over 6 pixels; level 2 (row 0; cols 0, 4): 1 over 2; level 3 (1x1): 0
    expected = 3 / 15 + 2 / 6 + 1 / 2
    torch.testing.assert_close(DF.gradient_matching(r, scales=4, operator="diff"), torch.tensor(expected))
    # sobel: interior (1, 1..3): gx = (4 * 1 - 0) / 8 = 0.5 at cols 1, 2; 0 at col 3
    torch.testing.assert_close(DF.gradient_matching(r, scales=4, operator="sobel"), torch.tensor(1.0 / 15))


# ---------------------------------------------------------------------------------------------
# near-field weights and schedules
# ---------------------------------------------------------------------------------------------


def depth_grid(dtype: torch.dtype, threshold: float, transition: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(15)
    t, tau = threshold, transition
    special = [NAN, INF, -INF, 0.0, -1.0, t, t - tau, t + tau, t - tau / 2, t + tau / 3, 1e-3, 1e3]
    values = torch.cat([torch.tensor(special, dtype=torch.float64), log_uniform((24,), 1e-3, 1e3, gen, torch.float64)])
    return values.to(dtype).reshape(2, 3, 6)


@pytest.mark.parametrize("threshold_kind", ("float", "tensor"))
@pytest.mark.parametrize("params", ((1.0, 5.0, 0.3), (2.5, 3.0, 0.5), (1.0, 1.0, 0.25)), ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("mode", ("smooth", "linear", "step"))
def test_near_field_weights(mode: str, dtype: torch.dtype, params: Tuple[float, float, float], threshold_kind: str) -> None:
    threshold, near_weight, transition = params
    depth = depth_grid(dtype, threshold, transition)
    t_arg = threshold if threshold_kind == "float" else torch.tensor(threshold, dtype=torch.float64)
    for d in (depth, depth.unsqueeze(1)):
        out = DF.near_field_weights(d, t_arg, near_weight, transition, mode)
        assert torch.isfinite(out).all()
        assert_matches(out, R.near_field_weights(d, threshold, near_weight, transition, mode), dtype)


def test_near_field_weights_hand_computed() -> None:
    d = torch.tensor([[[0.5, 1.0, 1.2, 1.5, NAN, -INF]]], dtype=torch.float64)
    # linear, t = 1, tau = 0.5, w_n = 3: 3 at d <= 0.5, 2 at 1.0, 1.6 at 1.2, 1 at >= 1.5; non-finite 1
    expected = torch.tensor([[[3.0, 2.0, 1.6, 1.0, 1.0, 1.0]]], dtype=torch.float64)
    torch.testing.assert_close(DF.near_field_weights(d, 1.0, 3.0, 0.5, "linear"), expected)
    step = DF.near_field_weights(d, 1.0, 3.0, 0.5, "step")
    assert torch.equal(step, torch.tensor([[[3.0, 1.0, 1.0, 1.0, 1.0, 1.0]]], dtype=torch.float64))


PROGRESSES = (-0.5, 0.0, 0.1, 0.25, 0.5, 0.7, 1.0, 1.5)
KINDS = ("constant", "linear", "cosine", "step")


@pytest.mark.parametrize("start_end_milestone", ((1.0, 0.0, 0.5), (0.2, 3.0, 0.3), (-1.0, 2.0, 0.0), (5.0, 5.0, 1.0)), ids=str)
@pytest.mark.parametrize("kind", KINDS)
def test_schedule(kind: str, start_end_milestone: Tuple[float, float, float]) -> None:
    start, end, milestone = start_end_milestone
    for p in PROGRESSES:
        expected = R.schedule(p, kind, start, end, milestone)
        out = DF.schedule(p, kind, start, end, milestone)
        assert isinstance(out, float), type(out)
        assert math.isclose(out, expected, rel_tol=1e-12, abs_tol=1e-12), (p, out, expected)
        for dtype in DTYPES:
            out_t = DF.schedule(torch.tensor(p, dtype=dtype), kind, start, end, milestone)
            assert isinstance(out_t, torch.Tensor) and out_t.shape == ()
            assert_matches(out_t, torch.tensor(expected, dtype=torch.float64), dtype)


def test_schedule_hand_computed() -> None:
    assert DF.schedule(0.25, "linear", 1.0, 0.0) == 0.75
    assert math.isclose(DF.schedule(0.5, "cosine", 1.0, 0.0), 0.5)
    assert DF.schedule(0.5, "step", 1.0, 0.0) == 0.0  # "from the milestone on"
    assert DF.schedule(0.49, "step", 1.0, 0.0) == 1.0
    assert DF.schedule(2.0, "linear", 1.0, 0.0) == 0.0  # clamped


@pytest.mark.parametrize("num_scales", (1, 2, 3, 5))
@pytest.mark.parametrize("kind", KINDS)
def test_scale_weights(kind: str, num_scales: int) -> None:
    for p in PROGRESSES:
        expected = R.scale_weights(p, num_scales, kind)
        assert math.isclose(float(expected.sum()), 1.0, rel_tol=1e-12)
        out = DF.scale_weights(p, num_scales, kind)
        assert out.shape == (num_scales,)
        assert_matches(out, expected, torch.float32)
        assert_matches(DF.scale_weights(p, num_scales, kind, dtype=torch.float64), expected, torch.float64)
        for dtype in DTYPES:
            assert_matches(DF.scale_weights(torch.tensor(p, dtype=dtype), num_scales, kind), expected, dtype)


def test_scale_weights_hand_computed() -> None:
    torch.testing.assert_close(DF.scale_weights(0.0, 3), torch.tensor([1.0, 2.0, 4.0]) / 7.0)
    torch.testing.assert_close(DF.scale_weights(1.0, 3), torch.tensor([4.0, 2.0, 1.0]) / 7.0)
    torch.testing.assert_close(DF.scale_weights(0.5, 2), torch.tensor([0.5, 0.5]))


# ---------------------------------------------------------------------------------------------
# pyramids
# ---------------------------------------------------------------------------------------------

PYRAMID_SHAPES = ((2, 1, 7, 9), (2, 8, 8), (1, 1, 3, 5), (2, 5, 3), (2, 1, 1, 1), (1, 1, 6))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("factor", (1, 2, 3, 4, 8))
@pytest.mark.parametrize("shape", PYRAMID_SHAPES, ids=str)
@pytest.mark.parametrize("mode", ("area", "bilinear"))
def test_downsample(mode: str, shape: Tuple[int, ...], factor: int, dtype: torch.dtype) -> None:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(16), dtype=torch.float64).to(dtype)
    out = DF.downsample(x, factor, mode)
    expected = R.downsample(x, factor, mode)
    assert out.shape == expected.shape
    assert out.shape[-2:] == (-(-shape[-2] // factor), -(-shape[-1] // factor))
    assert_matches(out, expected, dtype)
    if mode == "bilinear":
        assert_matches(out, R.downsample_bilinear_torch(x, factor), dtype)
    if factor == 1:
        assert_exact(out, x.double())


def sparse_depth(shape: Tuple[int, ...], dtype: torch.dtype, density: float, seed: int = 17) -> Tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    depth = log_uniform(shape, 1e-3, 1e3, gen, dtype)
    mask = torch.rand(shape, generator=gen) < density
    return poison(depth, mask), mask


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("density", (1.0, 0.3, 0.05, 0.0))
@pytest.mark.parametrize("factor", (1, 2, 3, 8))
@pytest.mark.parametrize("shape", PYRAMID_SHAPES, ids=str)
@pytest.mark.parametrize("mode", ("mean", "min", "nearest"))
def test_downsample_sparse(mode: str, shape: Tuple[int, ...], factor: int, density: float, dtype: torch.dtype) -> None:
    depth, mask = sparse_depth(shape, dtype, density)
    out_depth, out_mask = DF.downsample_sparse(depth, mask, factor, mode)
    e_depth, e_mask = R.downsample_sparse(depth, mask, factor, mode)
    assert out_mask.dtype == torch.bool
    assert_exact(out_mask, e_mask)
    assert out_depth.dtype == dtype
    if mode == "mean" and factor > 1:
        assert_matches(out_depth, e_depth, dtype)
    else:  # a selection: bit-exact
        assert_exact(out_depth, e_depth)
    assert torch.equal(out_depth[~out_mask], torch.zeros_like(out_depth[~out_mask]))


def test_downsample_sparse_hand_computed() -> None:
    d = torch.tensor([[[2.0, 0.0, 7.0], [4.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    m = d > 0
    depth, mask = DF.downsample_sparse(d, m, 2, "mean")
    assert torch.equal(mask, torch.tensor([[[True, True], [False, True]]]))
    assert torch.equal(depth, torch.tensor([[[3.0, 7.0], [0.0, 1.0]]]))
    depth, _ = DF.downsample_sparse(d, m, 2, "min")
    assert torch.equal(depth, torch.tensor([[[2.0, 7.0], [0.0, 1.0]]]))
    depth, mask = DF.downsample_sparse(d, m, 2, "nearest")
    assert torch.equal(mask, torch.tensor([[[True, True], [False, True]]]))
    assert torch.equal(depth, torch.tensor([[[2.0, 7.0], [0.0, 1.0]]]))


# ---------------------------------------------------------------------------------------------
# conversions
# ---------------------------------------------------------------------------------------------

CONVERSION_VALUES = [NAN, INF, -INF, 0.0, -0.0, -2.0, 1e-9, 1e-6, 1e-3, 0.05, 0.5, 1.0, 2.0, 7.5, 80.0, 1e3, 1e6]


@pytest.mark.parametrize("clamp", ((None, None), (0.1, None), (None, 50.0), (0.5, 10.0)), ids=str)
@pytest.mark.parametrize("eps", (1e-6, 1e-2))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("func", ("depth_to_inv", "inv_to_depth"))
def test_conversions(func: str, dtype: torch.dtype, eps: float, clamp: Tuple[Optional[float], Optional[float]]) -> None:
    min_depth, max_depth = clamp
    x = torch.tensor(CONVERSION_VALUES, dtype=dtype)
    x = torch.cat([x, x.flip(0)]).reshape(2, 1, 1, len(CONVERSION_VALUES))
    kernel, oracle = getattr(DF, func), getattr(R, func)
    for inp in (x, x[:, 0]):
        out = kernel(inp, eps, min_depth, max_depth)
        expected = oracle(inp, eps, min_depth, max_depth)
        assert_matches(out, expected, dtype, atol=0.0)
        invalid = ~(inp > 0)
        assert torch.equal(out[invalid], torch.zeros_like(out[invalid]))


def test_conversions_hand_computed() -> None:
    d = torch.tensor([[[0.5, 0.0, 4.0, -1.0, NAN, 1e-9]]], dtype=torch.float64)
    expected = torch.tensor([[[2.0, 0.0, 0.25, 0.0, 0.0, 1e6]]], dtype=torch.float64)
    torch.testing.assert_close(DF.depth_to_inv(d), expected)
    torch.testing.assert_close(
        DF.inv_to_depth(torch.tensor([[[2.0, 0.0, 0.25]]]), max_depth=3.0), torch.tensor([[[0.5, 0.0, 3.0]]])
    )
    torch.testing.assert_close(
        DF.depth_to_inv(torch.tensor([[[0.5, 100.0]]]), min_depth=1.0, max_depth=10.0), torch.tensor([[[1.0, 0.1]]])
    )
