"""Masked statistics (moments, exact medians, k-th smallest, MAD normalization, least squares)
against the float64 oracles of ``reference.py``, random and adversarial inputs."""

from __future__ import annotations

import pytest
import torch

import depthloss.functional as DF
import reference as R
from cases import (
    DTYPE_IDS,
    DTYPES,
    EDGE_CASES,
    MEDIAN_CASES,
    NAN,
    SEEDS,
    assert_exact,
    assert_invalid_grad_zero,
    assert_matches,
    edge_case,
    leaf,
    median_inputs,
    random_case,
)


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
                assert_matches(
                    DF.masked_mean(x, case.mask, w, scope=scope), R.masked_mean(x, case.mask, w, scope=scope), dtype
                )
                assert_matches(
                    DF.masked_var(x, case.mask, w, scope=scope), R.masked_var(x, case.mask, w, scope=scope), dtype
                )


def test_masked_var_large_offset_is_stable() -> None:
    """Var of 1e4 + {0, 1, 2} is 2/3 exactly; the centred form keeps it in float32."""
    x = torch.tensor([[[1e4, 1e4 + 1, 1e4 + 2]]])
    torch.testing.assert_close(DF.masked_var(x), torch.tensor([2.0 / 3.0]), rtol=1e-5, atol=0.0)


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


@pytest.mark.parametrize("accel", (True, False), ids=("accel", "reference"))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", MEDIAN_CASES)
def test_kth_smallest_every_rank(case: str, dtype: torch.dtype, accel: bool) -> None:
    """``statistics.kth_smallest`` at every rank, accelerated (CPU selection) and reference (sort)."""
    import depthloss
    from depthloss.functional.statistics import kth_smallest

    x, mask = median_inputs(dtype)[case]
    rows = x.reshape(x.shape[0], -1)
    valid = torch.ones_like(rows, dtype=torch.bool) if mask is None else mask.reshape(rows.shape)
    count = valid.sum(dim=1)
    with depthloss.accelerations(accel):
        for rank in range(int(count.max()) + 1):
            k = torch.minimum(count, torch.tensor(rank))
            assert_exact(kth_smallest(rows, valid, k), _kth_oracle(rows, valid, k))


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
    target = torch.tensor(
        [[[-1.0, -4.0, -7.0, -10.0]], [[1.0, 2.0, 3.0, 6.0]], [[0.0, 0.0, 0.0, 0.0]]], dtype=torch.float64
    )
    mask = torch.tensor([[[True] * 4], [[True] * 4], [[False] * 4]])
    s, t = DF.lsq_scale_shift(pred, target, mask)
    # image 0: target = -3 pred + 2; image 1: constant pred -> (0, mean target = 3); image 2: empty -> (0, 0)
    torch.testing.assert_close(s, torch.tensor([-3.0, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(t, torch.tensor([2.0, 3.0, 0.0], dtype=torch.float64))


# ---------------------------------------------------------------------------------------------
# image gradients
# ---------------------------------------------------------------------------------------------
