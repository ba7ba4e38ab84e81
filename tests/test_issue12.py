"""Issue 12 ("Keep every promise under torch.compile, odd batches and misuse"): every case of
items 4, 5, 6 and 7, each a test that fails on the seed code (items 1-3: see ``test_compile.py``
and ``test_conventions.py``).

=====  ==========================================================================  ==================================================================================
item   case                                                                        test
=====  ==========================================================================  ==================================================================================
1      float ``progress`` under compile: no recompile per value, no guard failure   ``test_compile.py::test_compile_dynamic_none``, ``::test_compile_supervised_loss``
2      ``torch.compile(dynamic=True)``: one graph, every loss and the driver        ``test_compile.py::test_compile_dynamic_true``, ``::test_compile_supervised_loss``
3      ``input_space`` required, explained; ``from_config`` defaults to inverse     ``test_conventions.py::test_input_space_is_required_and_explained``,
                                                                                    ``test_registry.py::test_get_loss_requires_input_space``,
                                                                                    ``::test_from_config_defaults_to_inverse_depth_and_says_so``,
                                                                                    ``::test_listing_shows_each_loss_space``,
                                                                                    ``test_supervised.py::test_input_space_is_required``
4      ``B = 0`` in every loss: 0, connected zero gradient, ``"none"`` -> ``(0,)``  ``test_conventions.py::test_empty_batch``
4      ``B = 0`` in ``SupervisedLoss``                                              ``test_supervised.py::test_empty_batch``
4      ``B = 0`` in the kernels (every public kernel)                               ``test_empty_batch_in_every_kernel`` (here)
5      scale-adaptive: exactly zero gradient where the target is 0                  ``losses/test_scale_adaptive.py::TestScaleAdaptive::test_invalid_pixels_get_exactly_zero_gradient``
5      scale-adaptive: NaN (inf, -1, 0) prediction at invalid pixels changes nothing ``losses/test_scale_adaptive.py::TestScaleAdaptive::test_junk_prediction_at_invalid_pixels``
5      ... for every loss, both spaces                                              ``test_conventions.py::test_invalid_values_do_not_leak``
5      docstring and README say so                                                  ``losses/test_scale_adaptive.py::TestScaleAdaptive::test_docstring_states_the_invalid_pixel_guarantee``,
                                                                                    ``test_readme_states_the_scale_adaptive_invalid_pixel_guarantee`` (here)
6      ``SupervisedLoss([rand(3,1,16,16)], rand(2,1,16,16))`` names the mismatch     ``test_supervised.py::test_batch_mismatch_names_both_shapes``, ``test_compile.py::test_compile_supervised_loss``
6      ``SupervisedLoss`` promotes float32 pred + float64 target to float64         ``test_supervised.py::test_dtype_promotion`` (modules: ``test_conventions.py::test_dtype_promotion``)
6      ``module.half()`` / ``.to(bfloat16)`` keeps ``progress`` 0.3 exact           ``test_conventions.py::test_module_cast_keeps_progress_exact``, ``test_supervised.py::test_cast_keeps_progress``
6      ``from_config({"model": None})`` -> ``ValueError`` naming the key            ``test_registry.py::test_from_config_empty_or_bad_sections_name_the_key``
6      ``get_loss("midas", scales=64)``: a defined result; images below the pyramid  ``losses/test_midas.py::TestMiDaS::test_scales_beyond_the_image``, ``::test_images_smaller_than_the_pyramid``,
                                                                                    ``test_pyramid_deeper_than_the_image`` (here), ``losses/test_scale_adaptive.py::TestScaleAdaptive::test_num_scales_beyond_31``
6      ``DF.near_field_ssi_silog`` checks ``progress`` without a schedule           ``losses/test_near_field_ssi_silog.py::TestNearFieldSSISilog::test_progress_checked_without_a_schedule``,
                                                                                    ``test_progress_is_checked_everywhere`` (here)
6      ``abs_rel`` on a subnormal target (1e-42) is finite                          ``losses/test_abs_rel.py::TestAbsRel::test_subnormal_target_is_finite``
6      inverse depths >= 1e20: no inf in ``ssi`` / ``mse`` (clamp or documented)   ``test_large_inverse_depths_in_the_tested_range_are_finite``, ``test_readme_states_the_valid_range``
6      ``list_losses(None)`` names ``pattern``                                      ``test_registry.py::test_list_losses_names_its_argument``
6      ``progress=np.float32(.5)`` accepted like ``np.float64``                     ``test_conventions.py::test_every_progress_form_gives_the_same_value``, ``blocks/test_schedules.py::test_schedule``
6      scope errors name the loss (``midas accepts 'image', 'batch'; got 'global'``) ``test_conventions.py::test_base_arguments_validated_in_init``, ``test_validation.py::test_bad_scope``,
                                                                                    ``losses/test_midas.py::TestMiDaS::test_exceptions``
6      ``DF.midas`` docstring says what ``scope="batch"`` is                        ``losses/test_midas.py::TestMiDaS::test_docstring_says_what_batch_scope_is``
7      compiled losses raise the eager ``ValueError`` / ``TypeError``               ``test_compile.py::test_compile_dynamic_none``, ``::test_compile_supervised_loss``, ``test_compiled_errors_are_not_dynamo_errors`` (here)
=====  ==========================================================================  ==================================================================================
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import numpy as np
import pytest
import torch
from torch import Tensor

import depthloss.functional as DF
from helpers import NAMES, build, small_kwargs

README = Path(__file__).resolve().parents[1] / "README.md"


# ---------------------------------------------------------------------------------------------
# item 4: B = 0 in the kernels
# ---------------------------------------------------------------------------------------------
def _empty(*shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.rand(shape, dtype=dtype)


def _clips(*maps: Tensor) -> Tuple[Tensor, ...]:
    return tuple(x.reshape(x.shape[0], 1, x.shape[-2], x.shape[-1]) for x in maps)


B0_CALLS: Dict[str, Callable[[Tensor, Tensor, Tensor, Tensor], Any]] = {
    "abs_rel": lambda p, t, m, w: DF.abs_rel(p, t, m, w),
    "berhu": lambda p, t, m, w: DF.berhu(p, t, m, w),
    "l1": lambda p, t, m, w: DF.l1(p, t, m, w),
    "mse": lambda p, t, m, w: DF.mse(p, t, m, w),
    "silog": lambda p, t, m, w: DF.silog(p, t, m, weights=w),
    "ssi": lambda p, t, m, w: DF.ssi(p, t, m, weights=w),
    "ssi_lsq": lambda p, t, m, w: DF.ssi_lsq(p, t, m, w),
    "ssi_mae": lambda p, t, m, w: DF.ssi_mae(p, t, m),
    "ssi_silog": lambda p, t, m, w: DF.ssi_silog(p, t, m, weights=w),
    "ssi_trim": lambda p, t, m, w: DF.ssi_trim(p, t, m),
    "midas": lambda p, t, m, w: DF.midas(p, t, m),
    "enhanced_ssi": lambda p, t, m, w: DF.enhanced_ssi(p, t, m, 0.3),
    "progressive_ssi": lambda p, t, m, w: DF.progressive_ssi(p, t, m, 0.3),
    "scale_adaptive": lambda p, t, m, w: DF.scale_adaptive(p, t, m, 0.3),
    "near_field_ssi_silog": lambda p, t, m, w: DF.near_field_ssi_silog(p, t, m, 0.3, weights=w),
    "masked_mean": lambda p, t, m, w: DF.masked_mean(p, m, w),
    "masked_var": lambda p, t, m, w: DF.masked_var(p, m, w),
    "masked_median": lambda p, t, m, w: DF.masked_median(p, m),
    "mad_normalize": lambda p, t, m, w: DF.mad_normalize(p, m),
    "lsq_scale_shift": lambda p, t, m, w: DF.lsq_scale_shift(p, t, m, w),
    "sobel": lambda p, t, m, w: DF.sobel(p),
    "sobel_mask": lambda p, t, m, w: DF.sobel_mask(m),
    "gradient_matching": lambda p, t, m, w: DF.gradient_matching(p - t, m),
    "downsample": lambda p, t, m, w: DF.downsample(p, 2),
    "downsample_sparse": lambda p, t, m, w: DF.downsample_sparse(p, m, 2),
    "depth_to_inv": lambda p, t, m, w: DF.depth_to_inv(p),
    "inv_to_depth": lambda p, t, m, w: DF.inv_to_depth(p),
    "near_field_weights": lambda p, t, m, w: DF.near_field_weights(p),
    "clamp_grad": lambda p, t, m, w: DF.clamp_grad(p, 1.0).sum(),
    "ranking": lambda p, t, m, w: DF.ranking(p, t, m, num_pairs=30, seed=0),
    "ranking_pairs": lambda p, t, m, w: DF.ranking_pairs(t, m, num_pairs=30, seed=0),
    "gaussian_nll": lambda p, t, m, w: DF.gaussian_nll(p, t, w, m),
    "laplace_nll": lambda p, t, m, w: DF.laplace_nll(p, t, w, m),
    "confidence_loss": lambda p, t, m, w: DF.confidence_loss(p, t, w, m, form="unidepth"),
    "local_ssi": lambda p, t, m, w: DF.local_ssi(p, t, m, num_windows=4),
    "depth_pro": lambda p, t, m, w: DF.depth_pro(p, t, m, num_scales=2),
    "mage": lambda p, t, m, w: DF.mage(p, t, m, 2),
    "male": lambda p, t, m, w: DF.male(p, t, m, 2),
    "msge": lambda p, t, m, w: DF.msge(p, t, m, 2),
    "grad_l1": lambda p, t, m, w: DF.grad_l1(p, t, m),
    "hdn": lambda p, t, m, w: DF.hdn(p, t, m),
    "hdn_random": lambda p, t, m, w: DF.hdn_random(p, t, m),
    # video kernels: the empty batch as (0, T=1, H, W) clips
    "temporal_gradient_matching": lambda p, t, m, w: DF.temporal_gradient_matching(*_clips(p, t, m)),
    "video_depth": lambda p, t, m, w: DF.video_depth(*_clips(p, t, m), scales=2),
    "backproject": lambda p, t, m, w: DF.backproject(p, (2.0, 2.0, 3.0, 3.0)),
    "depth_to_normals": lambda p, t, m, w: DF.depth_to_normals(p, (2.0, 2.0, 3.0, 3.0), m).normals,
    "normal": lambda p, t, m, w: DF.normal(p, t, m, (2.0, 2.0, 3.0, 3.0)),
    "vnl": lambda p, t, m, w: DF.vnl(p, t, m, (2.0, 2.0, 3.0, 3.0)),
    "vnl_samples": lambda p, t, m, w: DF.vnl_samples(m, 4, seed=0),
}


def test_every_map_kernel_has_an_empty_batch_case() -> None:
    public = {n for n in DF.__all__ if inspect.isfunction(getattr(DF, n))} - {"schedule", "scale_weights"}
    assert public <= set(B0_CALLS), sorted(public - set(B0_CALLS))


@pytest.mark.parametrize("layout", [(0, 1, 8, 8), (0, 8, 8)], ids=["4d", "3d"])
@pytest.mark.parametrize("name", sorted(B0_CALLS))
def test_empty_batch_in_every_kernel(name: str, layout: tuple) -> None:
    """Issue 12 item 4: 5 kernels failed with 'cannot reshape tensor of 0 elements'."""
    pred = _empty(*layout).requires_grad_(True)
    out = B0_CALLS[name](pred, _empty(*layout), _empty(*layout) > 0.5, _empty(*layout))
    tensors = [o for o in (out if isinstance(out, tuple) else (out,)) if isinstance(o, Tensor)]
    for t in tensors:
        if t.dim() == 0:  # a reduced loss: 0
            assert float(t.detach()) == 0.0
        else:
            assert t.shape[0] == 0
    loss = sum(t.float().sum() for t in tensors if t.requires_grad)
    if isinstance(loss, Tensor):
        loss.backward()
        assert pred.grad is None or pred.grad.shape == layout


# ---------------------------------------------------------------------------------------------
# item 5: README
# ---------------------------------------------------------------------------------------------
def test_readme_states_the_scale_adaptive_invalid_pixel_guarantee() -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert "valid pixels of each block" in text or "mean of the valid pixels" in text


# ---------------------------------------------------------------------------------------------
# item 6
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel", ["midas", "ssi_trim", "gradient_matching", "scale_adaptive"])
def test_pyramid_deeper_than_the_image(kernel: str) -> None:
    """Impossible depths are either rejected by name or give the result of the deepest real level."""
    pred, target = torch.rand(2, 1, 16, 16) + 0.5, torch.rand(2, 1, 16, 16) + 0.5
    calls = {
        "midas": lambda s: DF.midas(pred, target, scales=s),
        "ssi_trim": lambda s: DF.ssi_trim(pred, target, scales=s),
        "gradient_matching": lambda s: DF.gradient_matching(pred - target, scales=s),
        "scale_adaptive": lambda s: DF.scale_adaptive(pred, target, None, 0.5, num_scales=s, scale_schedule="constant"),
    }
    deep = calls[kernel](64)
    assert torch.isfinite(deep)
    if kernel != "scale_adaptive":  # its level weights depend on the number of levels
        torch.testing.assert_close(deep, calls[kernel](5))
    for tiny in ((2, 1, 1, 1), (2, 1, 1, 3), (1, 2, 2)):
        p, t = torch.rand(tiny) + 0.5, torch.rand(tiny) + 0.5
        assert (
            torch.isfinite(DF.midas(p, t))
            and torch.isfinite(DF.ssi_trim(p, t))
            and torch.isfinite(DF.scale_adaptive(p, t))
        )


PROGRESS_KERNELS = {
    "near_field_ssi_silog": DF.near_field_ssi_silog,
    "scale_adaptive": DF.scale_adaptive,
    "enhanced_ssi": DF.enhanced_ssi,
    "progressive_ssi": DF.progressive_ssi,
}


@pytest.mark.parametrize(
    "bad,exc",
    [
        ("half", TypeError),
        (True, TypeError),
        ([0.5], TypeError),
        (None, TypeError),
        (float("nan"), ValueError),
        (torch.ones(2), ValueError),
    ],
)
@pytest.mark.parametrize("kernel", sorted(PROGRESS_KERNELS))
def test_progress_is_checked_everywhere(kernel: str, bad: Any, exc: type) -> None:
    p = torch.rand(2, 1, 8, 8) + 0.1
    with pytest.raises(exc, match="progress"):
        PROGRESS_KERNELS[kernel](p, p + 0.1, None, bad)
    for good in (0.5, np.float32(0.5), np.float64(0.5), torch.tensor(0.5), 1):
        assert torch.isfinite(PROGRESS_KERNELS[kernel](p, p + 0.1, None, good))


BIG_LOSSES = ["ssi", "mse", "berhu", "midas", "enhanced-ssi", "progressive-ssi", "ssi-silog", "near-field-ssi-silog"]


def test_readme_states_the_valid_range() -> None:
    """Finding #7: inverse depths >= 1e19 overflow float32 squares; the README states the range."""
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert "1e15" in text


def test_large_inverse_depths_in_the_tested_range_are_finite() -> None:
    """Inverse depths up to 1e15 (depths down to 1e-15 m) stay finite in float32."""
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]) * 1e15
    for name in BIG_LOSSES:
        assert torch.isfinite(build(name, "inverse")(x, 0.5 * x)), name


# ---------------------------------------------------------------------------------------------
# item 7
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_compiled_errors_are_not_dynamo_errors(name: str) -> None:
    """Before any graph exists too: the first compiled call with a bad input raises the eager error."""
    torch._dynamo.reset()
    try:
        compiled = torch.compile(build(name, **small_kwargs(name)), fullgraph=True, backend="eager")
        p = torch.rand(2, 1, 6, 6) + 0.5
        with pytest.raises(ValueError, match="target must have the same shape as pred"):
            compiled(p, p[..., :3])
        with pytest.raises(TypeError, match="mask must be a bool tensor"):
            compiled(p, p, p)
        with pytest.raises(ValueError, match="progress must be finite"):
            compiled(p, p, progress=float("inf"))
    finally:
        torch._dynamo.reset()
