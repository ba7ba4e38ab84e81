"""Image operators (Sobel, gradient matching, dense and sparse-aware pyramids) against the oracles."""

from __future__ import annotations

from typing import Optional, Tuple

import pytest
import torch

import depthloss.functional as DF
import reference as R
from cases import (
    DTYPE_IDS,
    DTYPES,
    SCOPE_REDUCTIONS,
    assert_exact,
    assert_matches,
    log_uniform,
    mask_with_counts,
    poison,
)

GRID_SHAPES = (
    (2, 1, 6, 7),
    (3, 5, 5),
    (1, 1, 3, 3),
    (2, 2, 9),
    (2, 9, 2),
    (2, 1, 9),
    (2, 9, 1),
    (1, 1, 1, 1),
    (1, 3, 4),
)


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
            assert_matches(DF.gradient_matching(residual, mask, **kw), R.gradient_matching(residual, mask, **kw), dtype)


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


def sparse_depth(
    shape: Tuple[int, ...], dtype: torch.dtype, density: float, seed: int = 17
) -> Tuple[torch.Tensor, torch.Tensor]:
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
