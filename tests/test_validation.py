"""Input validation of ``depthloss.functional``: one test per check, and no input mutation.

Every check must raise the documented exception type (``TypeError`` for wrong types and
dtypes, ``ValueError`` for wrong shapes, devices, choices and ranges) with a message that
names the offending argument. The "meta" device stands in for a second device. The last
tests check that no kernel modifies its inputs in place, including when invalid pixels hold
NaN/inf and when the loss is back-propagated.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any, Callable, Dict, NamedTuple, Tuple

import pytest
import torch

import depthloss.functional as DF

SHAPE = (2, 4, 5)
NAN = float("nan")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors only: run this module on one intra-op thread (restored afterwards)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def depth(shape: Tuple[int, ...] = SHAPE, dtype: torch.dtype = torch.float32, device: str = "cpu") -> torch.Tensor:
    return (torch.rand(shape, generator=torch.Generator().manual_seed(0)) + 0.5).to(dtype=dtype, device=device)


def bool_mask(shape: Tuple[int, ...] = SHAPE, device: str = "cpu") -> torch.Tensor:
    return (torch.rand(shape, generator=torch.Generator().manual_seed(1)) < 0.7).to(device)


# ---------------------------------------------------------------------------------------------
# kernels grouped by signature
# ---------------------------------------------------------------------------------------------


class Pair(NamedTuple):
    """A kernel ``fn(pred, target, mask=None, weights=None, **kw)`` and its argument names."""

    fn: Callable[..., Any]
    pred: str
    target: str
    weighted: bool
    reduces: bool  # takes reduction= and scope=


PAIRS: Dict[str, Pair] = {
    "ssi": Pair(DF.ssi, "pred", "target", True, True),
    "ssi_mae": Pair(DF.ssi_mae, "pred", "target", False, True),
    "ssi_lsq": Pair(DF.ssi_lsq, "pred", "target", True, True),
    "silog": Pair(DF.silog, "pred_depth", "target_depth", True, True),
    "l1": Pair(DF.l1, "pred", "target", True, True),
    "mse": Pair(DF.mse, "pred", "target", True, True),
    "berhu": Pair(DF.berhu, "pred", "target", True, True),
    "abs_rel": Pair(DF.abs_rel, "pred", "target", True, True),
    "lsq_scale_shift": Pair(DF.lsq_scale_shift, "pred", "target", True, False),
    # the composite losses
    "ssi_silog": Pair(DF.ssi_silog, "pred_inv", "target_inv", True, True),
    "enhanced_ssi": Pair(DF.enhanced_ssi, "pred", "target", False, True),
    "progressive_ssi": Pair(DF.progressive_ssi, "pred", "target", False, True),
    "midas": Pair(DF.midas, "pred", "target", False, True),
    "ssi_trim": Pair(DF.ssi_trim, "pred", "target", False, True),
    "scale_adaptive": Pair(DF.scale_adaptive, "pred", "target", False, True),
    "near_field_ssi_silog": Pair(DF.near_field_ssi_silog, "pred_inv", "target_inv", True, True),
    "local_ssi": Pair(DF.local_ssi, "pred", "target", False, True),
    # the geometry losses (camera intrinsics K bound)
    "normal": Pair(functools.partial(DF.normal, K=(4.0, 4.0, 3.0, 3.0)), "pred", "target", False, True),
    "vnl": Pair(functools.partial(DF.vnl, K=(4.0, 4.0, 3.0, 3.0), seed=0), "pred", "target", False, True),
}


def call_pair(name: str, pred: Any, target: Any, mask: Any = None, weights: Any = None, **kw: Any) -> Any:
    spec = PAIRS[name]
    if spec.weighted:
        kw["weights"] = weights
    return spec.fn(pred, target, mask, **kw)


class Single(NamedTuple):
    """A kernel on one map: ``call(x, mask, weights)`` and the name of its map argument."""

    call: Callable[[Any, Any, Any], Any]
    arg: str
    masked: bool
    weighted: bool


SINGLES: Dict[str, Single] = {
    "masked_mean": Single(lambda x, m, w: DF.masked_mean(x, m, w), "x", True, True),
    "masked_var": Single(lambda x, m, w: DF.masked_var(x, m, w), "x", True, True),
    "masked_median": Single(lambda x, m, w: DF.masked_median(x, m), "x", True, False),
    "mad_normalize": Single(lambda x, m, w: DF.mad_normalize(x, m), "x", True, False),
    "gradient_matching": Single(lambda x, m, w: DF.gradient_matching(x, m), "residual", True, False),
    "downsample_sparse": Single(
        lambda x, m, w: DF.downsample_sparse(x, bool_mask() if m is None else m, 2), "depth", True, False
    ),
    "sobel": Single(lambda x, m, w: DF.sobel(x), "x", False, False),
    "near_field_weights": Single(lambda x, m, w: DF.near_field_weights(x), "depth", False, False),
    "downsample": Single(lambda x, m, w: DF.downsample(x, 2), "x", False, False),
    "depth_to_inv": Single(lambda x, m, w: DF.depth_to_inv(x), "depth", False, False),
    "inv_to_depth": Single(lambda x, m, w: DF.inv_to_depth(x), "inv_depth", False, False),
}

REDUCING = sorted(n for n, p in PAIRS.items() if p.reduces)
WEIGHTED_PAIRS = sorted(n for n, p in PAIRS.items() if p.weighted)
MASKED_SINGLES = sorted(n for n, s in SINGLES.items() if s.masked)
WEIGHTED_SINGLES = sorted(n for n, s in SINGLES.items() if s.weighted)


# ---------------------------------------------------------------------------------------------
# pred / target: type, dtype, shape, device
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ([[1.0, 2.0]], 3.0, None), ids=("list", "float", "none"))
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_pred_not_a_tensor(name: str, bad: Any) -> None:
    with pytest.raises(TypeError, match=rf"^{PAIRS[name].pred} must be a torch\.Tensor"):
        call_pair(name, bad, depth())


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_target_not_a_tensor(name: str) -> None:
    with pytest.raises(TypeError, match=rf"^{PAIRS[name].target} must be a torch\.Tensor"):
        call_pair(name, depth(), depth().numpy())


@pytest.mark.parametrize("dtype", (torch.int64, torch.int32, torch.uint8, torch.bool))
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_pred_integer_dtype(name: str, dtype: torch.dtype) -> None:
    with pytest.raises(TypeError, match=rf"^{PAIRS[name].pred} must be a floating-point tensor, got dtype {dtype}"):
        call_pair(name, torch.ones(SHAPE, dtype=dtype), depth())


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_target_integer_dtype(name: str) -> None:
    with pytest.raises(TypeError, match=rf"^{PAIRS[name].target} must be a floating-point tensor"):
        call_pair(name, depth(), torch.ones(SHAPE, dtype=torch.int64))


@pytest.mark.parametrize("shape", ((4, 5), (5,), (2, 1, 1, 4, 5), ()), ids=str)
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_pred_wrong_ndim(name: str, shape: Tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=rf"^{PAIRS[name].pred} must have shape \(B, 1, H, W\) or \(B, H, W\)"):
        call_pair(name, depth(shape), depth(shape))


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_pred_three_channels(name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{PAIRS[name].pred} must have shape .*\(2, 3, 4, 5\).*channel"):
        call_pair(name, depth((2, 3, 4, 5)), depth((2, 3, 4, 5)))


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_target_wrong_ndim(name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{PAIRS[name].target} must have shape \(B, 1, H, W\) or \(B, H, W\)"):
        call_pair(name, depth(), depth((4, 5)))


@pytest.mark.parametrize("target_shape", ((2, 4, 6), (3, 4, 5), (2, 1, 4, 5)), ids=("width", "batch", "layout"))
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_target_shape_mismatch(name: str, target_shape: Tuple[int, ...]) -> None:
    spec = PAIRS[name]
    pattern = (
        rf"^{spec.target} must have the same shape as {spec.pred}: "
        rf"expected {re.escape(str(SHAPE))}, got {re.escape(str(target_shape))}"
    )
    with pytest.raises(ValueError, match=pattern):
        call_pair(name, depth(), depth(target_shape))


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_target_device_mismatch(name: str) -> None:
    spec = PAIRS[name]
    with pytest.raises(
        ValueError, match=rf"^{spec.target} must be on the same device as {spec.pred}: expected cpu, got meta"
    ):
        call_pair(name, depth(), depth(device="meta"))


# ---------------------------------------------------------------------------------------------
# mask
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", (torch.float32, torch.uint8, torch.int64))
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_mask_not_bool(name: str, dtype: torch.dtype) -> None:
    with pytest.raises(TypeError, match=rf"^mask must be a bool tensor, got dtype {dtype}"):
        call_pair(name, depth(), depth(), bool_mask().to(dtype))


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_mask_not_a_tensor(name: str) -> None:
    with pytest.raises(TypeError, match=r"^mask must be a torch\.Tensor or None, got list"):
        call_pair(name, depth(), depth(), bool_mask().tolist())


@pytest.mark.parametrize("mask_shape", ((2, 4, 6), (2, 1, 4, 5), (4, 5)), ids=str)
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_mask_shape_mismatch(name: str, mask_shape: Tuple[int, ...]) -> None:
    spec = PAIRS[name]
    pattern = rf"^mask must have the same shape as {spec.pred}: expected {re.escape(str(SHAPE))}, got {re.escape(str(mask_shape))}"
    with pytest.raises(ValueError, match=pattern):
        call_pair(name, depth(), depth(), bool_mask(mask_shape))


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_mask_device_mismatch(name: str) -> None:
    with pytest.raises(ValueError, match=r"^mask must be on the same device as .*: expected cpu, got meta"):
        call_pair(name, depth(), depth(), bool_mask(device="meta"))


@pytest.mark.parametrize("name", MASKED_SINGLES)
def test_single_map_mask_checks(name: str) -> None:
    spec = SINGLES[name]
    x = depth()
    with pytest.raises(TypeError, match=r"^mask must be a bool tensor"):
        spec.call(x, bool_mask().float(), None)
    with pytest.raises(ValueError, match=rf"^mask must have the same shape as {spec.arg}"):
        spec.call(x, bool_mask((2, 4, 6)), None)
    with pytest.raises(ValueError, match=rf"^mask must be on the same device as {spec.arg}"):
        spec.call(x, bool_mask(device="meta"), None)


def test_downsample_sparse_mask_required() -> None:
    with pytest.raises(TypeError, match=r"^mask must be a bool tensor .*got None"):
        DF.downsample_sparse(depth(), None, 2)  # type: ignore[arg-type]


def test_sobel_mask_not_bool() -> None:
    with pytest.raises(TypeError, match=r"^mask must be a bool tensor"):
        DF.sobel_mask(bool_mask().float())
    with pytest.raises(TypeError, match=r"^mask must be a bool tensor"):
        DF.sobel_mask(bool_mask().tolist())  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", ((4, 5), (2, 3, 4, 5)), ids=str)
def test_sobel_mask_wrong_shape(shape: Tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"^mask must have shape \(B, 1, H, W\) or \(B, H, W\)"):
        DF.sobel_mask(bool_mask(shape))


# ---------------------------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WEIGHTED_PAIRS)
def test_weights_shape_mismatch(name: str) -> None:
    with pytest.raises(
        ValueError, match=r"^weights must have the same shape as .*expected \(2, 4, 5\), got \(2, 5, 4\)"
    ):
        call_pair(name, depth(), depth(), None, depth((2, 5, 4)))


@pytest.mark.parametrize("dtype", (torch.int64, torch.bool))
@pytest.mark.parametrize("name", WEIGHTED_PAIRS)
def test_weights_integer_dtype(name: str, dtype: torch.dtype) -> None:
    with pytest.raises(TypeError, match=r"^weights must be a floating-point tensor"):
        call_pair(name, depth(), depth(), None, torch.ones(SHAPE, dtype=dtype))


@pytest.mark.parametrize("name", WEIGHTED_PAIRS)
def test_weights_not_a_tensor(name: str) -> None:
    with pytest.raises(TypeError, match=r"^weights must be a torch\.Tensor"):
        call_pair(name, depth(), depth(), None, 1.0)


@pytest.mark.parametrize("name", WEIGHTED_PAIRS)
def test_weights_device_mismatch(name: str) -> None:
    with pytest.raises(ValueError, match=r"^weights must be on the same device as .*: expected cpu, got meta"):
        call_pair(name, depth(), depth(), None, depth(device="meta"))


@pytest.mark.parametrize("name", WEIGHTED_SINGLES)
def test_single_map_weights_checks(name: str) -> None:
    spec = SINGLES[name]
    with pytest.raises(ValueError, match=rf"^weights must have the same shape as {spec.arg}"):
        spec.call(depth(), None, depth((2, 4, 6)))
    with pytest.raises(TypeError, match=r"^weights must be a floating-point tensor"):
        spec.call(depth(), None, torch.ones(SHAPE, dtype=torch.int32))
    with pytest.raises(ValueError, match=rf"^weights must be on the same device as {spec.arg}"):
        spec.call(depth(), None, depth(device="meta"))


# ---------------------------------------------------------------------------------------------
# single-map kernels: type, dtype, shape
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SINGLES))
def test_single_map_not_a_tensor(name: str) -> None:
    spec = SINGLES[name]
    with pytest.raises(TypeError, match=rf"^{spec.arg} must be a torch\.Tensor"):
        spec.call(depth().tolist(), None, None)


@pytest.mark.parametrize("name", sorted(SINGLES))
def test_single_map_integer_dtype(name: str) -> None:
    spec = SINGLES[name]
    with pytest.raises(TypeError, match=rf"^{spec.arg} must be a floating-point tensor"):
        spec.call(torch.ones(SHAPE, dtype=torch.int64), None, None)


@pytest.mark.parametrize("shape", ((4, 5), (2, 3, 4, 5), (1, 2, 1, 4, 5)), ids=str)
@pytest.mark.parametrize("name", sorted(SINGLES))
def test_single_map_wrong_shape(name: str, shape: Tuple[int, ...]) -> None:
    spec = SINGLES[name]
    with pytest.raises(ValueError, match=rf"^{spec.arg} must have shape \(B, 1, H, W\) or \(B, H, W\)"):
        spec.call(depth(shape), None, None)


# ---------------------------------------------------------------------------------------------
# reduction and scope
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ("avg", "Mean", "", None, 1))
@pytest.mark.parametrize("name", REDUCING)
def test_bad_reduction(name: str, bad: Any) -> None:
    with pytest.raises(ValueError, match=r"^reduction must be one of 'mean', 'sum', 'none'"):
        call_pair(name, depth(), depth(), reduction=bad)


# kernels whose statistics are sums and counts take scope="global" (all-reduced batch statistics)
GLOBAL_PAIRS = ("ssi", "silog", "ssi_silog", "near_field_ssi_silog")


@pytest.mark.parametrize("bad", ("images", "Batch", None))
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_bad_scope(name: str, bad: Any) -> None:
    options = "'image', 'batch', 'global'" if name in GLOBAL_PAIRS else "'image', 'batch'"
    if PAIRS[name].reduces:  # the loss kernels name themselves (issue 12 item 6)
        pattern = rf"^scope: {name.replace('_', '[-_]')} accepts {options}; got {re.escape(repr(bad))}"
    else:
        pattern = rf"^scope must be one of {options}, got"
    with pytest.raises(ValueError, match=pattern):
        call_pair(name, depth(), depth(), scope=bad)


@pytest.mark.parametrize(
    "call",
    (
        lambda scope: DF.ssi_silog(depth(), depth(), scope=scope),
        lambda scope: DF.near_field_ssi_silog(depth(), depth(), scope=scope),
        lambda scope: DF.masked_mean(depth(), scope=scope),
        lambda scope: DF.masked_var(depth(), scope=scope),
    ),
    ids=("ssi_silog", "near_field_ssi_silog", "masked_mean", "masked_var"),
)
def test_bad_scope_global_kernels(call: Callable[[str], Any]) -> None:
    with pytest.raises(ValueError, match=r"^scope(: \S+ accepts| must be one of) 'image', 'batch', 'global'"):
        call("pixels")


@pytest.mark.parametrize("name", sorted(set(PAIRS) - set(GLOBAL_PAIRS)))
def test_scope_global_rejected_where_statistics_are_not_sums(name: str) -> None:
    pattern = (
        rf"^scope: {name.replace('_', '[-_]')} accepts 'image', 'batch'; got 'global'"
        if PAIRS[name].reduces
        else r"^scope must be one of 'image', 'batch', got 'global'"
    )
    with pytest.raises(ValueError, match=pattern):
        call_pair(name, depth(), depth(), scope="global")


@pytest.mark.parametrize(
    "call",
    (
        lambda: DF.masked_median(depth(), scope="pixels"),
        lambda: DF.mad_normalize(depth(), scope="pixels"),
        lambda: DF.gradient_matching(depth(), scope="pixels"),
    ),
    ids=("masked_median", "mad_normalize", "gradient_matching"),
)
def test_bad_scope_statistics(call: Callable[[], Any]) -> None:
    with pytest.raises(ValueError, match=r"^scope(: gradient_matching accepts| must be one of) 'image', 'batch'"):
        call()


def test_gradient_matching_bad_reduction() -> None:
    with pytest.raises(ValueError, match=r"^reduction must be one of"):
        DF.gradient_matching(depth(), reduction="avg")


@pytest.mark.parametrize("name", REDUCING + ["gradient_matching"])
def test_batch_scope_with_reduction_none(name: str) -> None:
    with pytest.raises(ValueError, match=r"reduction='none'.*scope='image'"):
        if name == "gradient_matching":
            DF.gradient_matching(depth(), reduction="none", scope="batch")
        else:
            call_pair(name, depth(), depth(), reduction="none", scope="batch")


# ---------------------------------------------------------------------------------------------
# hyper-parameters
# ---------------------------------------------------------------------------------------------

P, T = depth(), depth()

HYPER: Dict[str, Tuple[Callable[[], Any], type, str]] = {
    # name: (call, exception, message regex)
    "ssi alpha < 0": (lambda: DF.ssi(P, T, alpha=-0.1), ValueError, r"^alpha must be in \[0\.0, inf\)"),
    "ssi alpha nan": (lambda: DF.ssi(P, T, alpha=NAN), ValueError, r"^alpha must be finite"),
    "ssi alpha str": (lambda: DF.ssi(P, T, alpha="0.5"), TypeError, r"^alpha must be a real number"),
    "ssi alpha bool": (lambda: DF.ssi(P, T, alpha=True), TypeError, r"^alpha must be a real number"),
    "ssi alpha tensor": (lambda: DF.ssi(P, T, alpha=torch.tensor(0.5)), TypeError, r"^alpha must be a real number"),
    "ssi_mae trim < 0": (lambda: DF.ssi_mae(P, T, trim=-0.01), ValueError, r"^trim must be in \[0\.0, 1\.0\)"),
    "ssi_mae trim = 1": (lambda: DF.ssi_mae(P, T, trim=1.0), ValueError, r"^trim must be in \[0\.0, 1\.0\)"),
    "ssi_mae trim > 1": (lambda: DF.ssi_mae(P, T, trim=1.5), ValueError, r"^trim must be in \[0\.0, 1\.0\)"),
    "ssi_mae eps = 0": (lambda: DF.ssi_mae(P, T, eps=0.0), ValueError, r"^eps must be in \(0\.0, inf\)"),
    "ssi_mae eps < 0": (lambda: DF.ssi_mae(P, T, eps=-1e-6), ValueError, r"^eps must be in \(0\.0, inf\)"),
    "silog lambd < 0": (lambda: DF.silog(P, T, lambd=-0.1), ValueError, r"^lambd must be in \[0\.0, 1\.0\]"),
    "silog lambd > 1": (lambda: DF.silog(P, T, lambd=1.01), ValueError, r"^lambd must be in \[0\.0, 1\.0\]"),
    "silog ratio = 0": (lambda: DF.silog(P, T, ratio=0.0), ValueError, r"^ratio must be in \(0\.0, inf\)"),
    "silog ratio < 0": (lambda: DF.silog(P, T, ratio=-10.0), ValueError, r"^ratio must be in \(0\.0, inf\)"),
    "silog eps < 0": (lambda: DF.silog(P, T, eps=-1e-8), ValueError, r"^eps must be in \[0\.0, inf\)"),
    "silog eps inf": (lambda: DF.silog(P, T, eps=math.inf), ValueError, r"^eps must be finite"),
    "berhu threshold = 0": (lambda: DF.berhu(P, T, threshold=0.0), ValueError, r"^threshold must be in \(0\.0, inf\)"),
    "berhu threshold < 0": (lambda: DF.berhu(P, T, threshold=-0.2), ValueError, r"^threshold must be in \(0\.0, inf\)"),
    "mad_normalize eps = 0": (lambda: DF.mad_normalize(P, eps=0.0), ValueError, r"^eps must be in \(0\.0, inf\)"),
    "mad_normalize eps < 0": (lambda: DF.mad_normalize(P, eps=-1.0), ValueError, r"^eps must be in \(0\.0, inf\)"),
    "near threshold = 0": (
        lambda: DF.near_field_weights(P, threshold=0.0),
        ValueError,
        r"^threshold must be in \(0\.0, inf\)",
    ),
    "near threshold 1-d tensor": (
        lambda: DF.near_field_weights(P, threshold=torch.tensor([1.0])),
        TypeError,
        r"^threshold must be a real number or a 0-dim tensor",
    ),
    "near near_weight < 1": (
        lambda: DF.near_field_weights(P, near_weight=0.5),
        ValueError,
        r"^near_weight must be in \[1\.0, inf\)",
    ),
    "near transition = 0": (
        lambda: DF.near_field_weights(P, transition=0.0),
        ValueError,
        r"^transition must be in \(0\.0, inf\)",
    ),
    "near transition < 0": (
        lambda: DF.near_field_weights(P, transition=-0.3),
        ValueError,
        r"^transition must be in \(0\.0, inf\)",
    ),
    "near mode": (
        lambda: DF.near_field_weights(P, mode="tanh"),
        ValueError,
        r"^mode must be one of 'smooth', 'linear', 'step', got 'tanh'",
    ),
    "gradient operator": (
        lambda: DF.gradient_matching(P, operator="scharr"),
        ValueError,
        r"^operator must be one of 'sobel', 'diff', got 'scharr'",
    ),
    "gradient scales = 0": (lambda: DF.gradient_matching(P, scales=0), ValueError, r"^scales must be >= 1, got 0"),
    "gradient scales < 0": (lambda: DF.gradient_matching(P, scales=-2), ValueError, r"^scales must be >= 1"),
    "gradient scales float": (
        lambda: DF.gradient_matching(P, scales=2.0),
        TypeError,
        r"^scales must be an int, got float",
    ),
    "gradient scales bool": (
        lambda: DF.gradient_matching(P, scales=True),
        TypeError,
        r"^scales must be an int, got bool",
    ),
    "downsample factor = 0": (lambda: DF.downsample(P, 0), ValueError, r"^factor must be >= 1, got 0"),
    "downsample factor float": (lambda: DF.downsample(P, 2.0), TypeError, r"^factor must be an int"),
    "downsample factor bool": (lambda: DF.downsample(P, True), TypeError, r"^factor must be an int, got bool"),
    "downsample mode": (lambda: DF.downsample(P, 2, "nearest"), ValueError, r"^mode must be one of 'area', 'bilinear'"),
    "sparse factor = 0": (lambda: DF.downsample_sparse(P, bool_mask(), 0), ValueError, r"^factor must be >= 1"),
    "sparse factor float": (lambda: DF.downsample_sparse(P, bool_mask(), 1.5), TypeError, r"^factor must be an int"),
    "sparse mode": (
        lambda: DF.downsample_sparse(P, bool_mask(), 2, "max"),
        ValueError,
        r"^mode must be one of 'mean', 'min', 'nearest'",
    ),
    "depth_to_inv eps = 0": (lambda: DF.depth_to_inv(P, eps=0.0), ValueError, r"^eps must be in \(0\.0, inf\)"),
    "inv_to_depth eps < 0": (lambda: DF.inv_to_depth(P, eps=-1.0), ValueError, r"^eps must be in \(0\.0, inf\)"),
    "depth_to_inv min >= max": (
        lambda: DF.depth_to_inv(P, min_depth=10.0, max_depth=10.0),
        ValueError,
        r"^min_depth must be < max_depth, got min_depth=10\.0, max_depth=10\.0",
    ),
    "inv_to_depth min > max": (
        lambda: DF.inv_to_depth(P, min_depth=80.0, max_depth=1.0),
        ValueError,
        r"^min_depth must be < max_depth",
    ),
    "depth_to_inv min < 0": (
        lambda: DF.depth_to_inv(P, min_depth=-1.0),
        ValueError,
        r"^min_depth must be in \[0\.0, inf\)",
    ),
    "inv_to_depth max = 0": (
        lambda: DF.inv_to_depth(P, max_depth=0.0),
        ValueError,
        r"^max_depth must be in \(0\.0, inf\)",
    ),
    "schedule kind": (
        lambda: DF.schedule(0.5, "exponential"),
        ValueError,
        r"^kind must be one of 'constant', 'linear', 'cosine', 'step'",
    ),
    "schedule milestone > 1": (
        lambda: DF.schedule(0.5, "step", milestone=1.5),
        ValueError,
        r"^milestone must be in \[0\.0, 1\.0\]",
    ),
    "schedule start nan": (lambda: DF.schedule(0.5, start=NAN), ValueError, r"^start must be finite"),
    "schedule end str": (lambda: DF.schedule(0.5, end="0"), TypeError, r"^end must be a real number"),
    "scale_weights kind": (lambda: DF.scale_weights(0.5, 3, "exponential"), ValueError, r"^kind must be one of"),
    "scale_weights num_scales = 0": (lambda: DF.scale_weights(0.5, 0), ValueError, r"^num_scales must be >= 1"),
    "scale_weights num_scales float": (lambda: DF.scale_weights(0.5, 3.0), TypeError, r"^num_scales must be an int"),
    "scale_weights num_scales bool": (
        lambda: DF.scale_weights(0.5, True),
        TypeError,
        r"^num_scales must be an int, got bool",
    ),
}


@pytest.mark.parametrize("case", sorted(HYPER))
def test_bad_hyper_parameter(case: str) -> None:
    call, exc, pattern = HYPER[case]
    with pytest.raises(exc, match=pattern):
        call()


PROGRESS_FUNCS = {
    "schedule": lambda p: DF.schedule(p, "linear"),
    "scale_weights": lambda p: DF.scale_weights(p, 3),
}

BAD_PROGRESS = {
    "1-d tensor": (
        torch.tensor([0.5]),
        ValueError,
        r"^progress must be a float in \[0, 1\] or a 0-dim tensor, got a tensor of shape \(1,\)",
    ),
    "2-d tensor": (
        torch.zeros(2, 2),
        ValueError,
        r"^progress must be a float in \[0, 1\] or a 0-dim tensor, got a tensor of shape \(2, 2\)",
    ),
    "integer tensor": (torch.tensor(1), TypeError, r"^progress must be a floating-point tensor"),
    "string": ("0.5", TypeError, r"^progress must be a float in \[0, 1\] or a 0-dim tensor, got str"),
    "none": (None, TypeError, r"^progress must be a float"),
    "bool": (True, TypeError, r"^progress must be a float .*got bool"),
    "nan": (NAN, ValueError, r"^progress must be finite, got nan"),
    "inf": (math.inf, ValueError, r"^progress must be finite, got inf"),
}


@pytest.mark.parametrize("bad", sorted(BAD_PROGRESS))
@pytest.mark.parametrize("func", sorted(PROGRESS_FUNCS))
def test_bad_progress(func: str, bad: str) -> None:
    value, exc, pattern = BAD_PROGRESS[bad]
    with pytest.raises(exc, match=pattern):
        PROGRESS_FUNCS[func](value)


def test_valid_edge_hyper_parameters_are_accepted() -> None:
    """The boundaries that are allowed really are: the checks above are not over-eager."""
    assert torch.isfinite(DF.ssi(P, T, alpha=0.0))
    assert torch.isfinite(DF.ssi_mae(P, T, trim=0.0))
    assert torch.isfinite(DF.silog(P, T, lambd=0.0, eps=0.0))
    assert torch.isfinite(DF.silog(P, T, lambd=1.0))
    assert torch.isfinite(DF.near_field_weights(P, threshold=torch.tensor(1.0), near_weight=1.0)).all()
    assert DF.gradient_matching(P, scales=1).shape == ()
    assert DF.downsample(P, 1).shape == P.shape
    assert DF.depth_to_inv(P, min_depth=0.0, max_depth=1.0).shape == P.shape
    assert DF.schedule(0.5, "step", milestone=0.0) == 0.0
    assert DF.schedule(0, "linear") == 1.0  # an int progress is a real number
    assert DF.scale_weights(torch.tensor(0.5), 1).shape == (1,)


# ---------------------------------------------------------------------------------------------
# no input mutation
# ---------------------------------------------------------------------------------------------


def bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bits of ``t``, so that NaN compares equal to the same NaN."""
    if t.dtype == torch.bool:
        return t
    return t.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


def assert_unchanged(before: Tuple[torch.Tensor, ...], after: Tuple[torch.Tensor, ...]) -> None:
    for b, a in zip(before, after):
        assert a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride()
        assert torch.equal(bits(a), bits(b)), "an input was modified in place"


def poisoned_inputs(dtype: torch.dtype, four_d: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    shape = (2, 1, 6, 7) if four_d else (2, 6, 7)
    gen = torch.Generator().manual_seed(5)
    mask = torch.rand(shape, generator=gen) < 0.7
    junk = torch.tensor([NAN, math.inf, -math.inf, 0.0, -1.0], dtype=dtype)[torch.arange(mask.numel()) % 5].reshape(
        shape
    )
    pred = torch.where(mask, (torch.rand(shape, generator=gen) + 0.5).to(dtype), junk)
    target = torch.where(mask, (torch.rand(shape, generator=gen) + 0.5).to(dtype), junk)
    weights = torch.where(mask, torch.rand(shape, generator=gen).to(dtype), junk)
    return pred, target, mask, weights


ALL_CALLS: Dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], Any]] = {
    "ssi": lambda p, t, m, w: DF.ssi(p, t, m, weights=w),
    "ssi_mae": lambda p, t, m, w: DF.ssi_mae(p, t, m),
    "ssi_lsq": lambda p, t, m, w: DF.ssi_lsq(p, t, m, w),
    "silog": lambda p, t, m, w: DF.silog(p, t, m, weights=w),
    "l1": lambda p, t, m, w: DF.l1(p, t, m, w, scope="batch"),
    "mse": lambda p, t, m, w: DF.mse(p, t, m, w, reduction="none"),
    "berhu": lambda p, t, m, w: DF.berhu(p, t, m, w),
    "abs_rel": lambda p, t, m, w: DF.abs_rel(p, t, m, w),
    "lsq_scale_shift": lambda p, t, m, w: sum(DF.lsq_scale_shift(p, t, m, w)),
    "masked_mean": lambda p, t, m, w: DF.masked_mean(p, m, w),
    "masked_var": lambda p, t, m, w: DF.masked_var(p, m, w),
    "masked_median": lambda p, t, m, w: DF.masked_median(p, m),
    "mad_normalize": lambda p, t, m, w: DF.mad_normalize(p, m).x_hat,
    "gradient_matching": lambda p, t, m, w: DF.gradient_matching(p, m, scales=2),
    "gradient_matching_diff": lambda p, t, m, w: DF.gradient_matching(p, m, operator="diff", scope="batch"),
    "sobel": lambda p, t, m, w: DF.sobel(p).gx,
    "sobel_mask": lambda p, t, m, w: DF.sobel_mask(m),
    "near_field_weights": lambda p, t, m, w: DF.near_field_weights(p),
    "downsample_area": lambda p, t, m, w: DF.downsample(p, 2),
    "downsample_bilinear": lambda p, t, m, w: DF.downsample(p, 3, "bilinear"),
    "downsample_sparse_mean": lambda p, t, m, w: DF.downsample_sparse(p, m, 2).depth,
    "downsample_sparse_min": lambda p, t, m, w: DF.downsample_sparse(p, m, 2, "min").depth,
    "downsample_sparse_nearest": lambda p, t, m, w: DF.downsample_sparse(p, m, 2, "nearest").depth,
    "depth_to_inv": lambda p, t, m, w: DF.depth_to_inv(p, min_depth=0.6, max_depth=1.2),
    "inv_to_depth": lambda p, t, m, w: DF.inv_to_depth(p, min_depth=0.6, max_depth=1.2),
}


@pytest.mark.parametrize("four_d", (False, True), ids=("3d", "4d"))
@pytest.mark.parametrize("dtype", (torch.float32, torch.float64, torch.float16), ids=("f32", "f64", "f16"))
@pytest.mark.parametrize("name", sorted(ALL_CALLS))
def test_no_input_mutation(name: str, dtype: torch.dtype, four_d: bool) -> None:
    inputs = poisoned_inputs(dtype, four_d)
    before = tuple(x.clone() for x in inputs)
    out = ALL_CALLS[name](*inputs)
    assert isinstance(out, torch.Tensor)
    assert_unchanged(before, inputs)


@pytest.mark.parametrize("name", sorted(ALL_CALLS))
def test_no_input_mutation_through_backward(name: str) -> None:
    leaves = [x.requires_grad_(True) if x.is_floating_point() else x for x in poisoned_inputs(torch.float64, True)]
    before = tuple(x.detach().clone() for x in leaves)
    out = ALL_CALLS[name](*leaves)
    if out.requires_grad:
        torch.where(torch.isfinite(out), out, 0.0).sum().backward()
    assert_unchanged(before, tuple(x.detach() for x in leaves))
