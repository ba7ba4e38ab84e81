"""``temporal-gradient-matching`` and ``video-depth``: Video Depth Anything's losses on ``(B, T, H, W)`` sequences.

(:func:`depthloss.functional.temporal_gradient_matching`, :func:`depthloss.functional.video_depth`.)
The oracles (``tests/reference.py``) loop over sequences, frame pairs and pixels with boolean
indexing; ``video_depth_authors`` transcribes the structure of the authors' ``VideoDepthLoss``.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Optional, Tuple

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import Tensor

import depthloss
import depthloss.functional as DF
import reference as R
from helpers import MASKS, SPACES, assert_grad_matches_oracle, assert_matches, build, gen, poison, to_input_space

TGM, VD = "temporal-gradient-matching", "video-depth"
SHAPES: Tuple[Tuple[int, ...], ...] = ((2, 3, 5, 6), (3, 4, 4, 3), (1, 1, 4, 4))
SCOPE_REDUCTIONS = (
    ("image", "mean"),
    ("image", "sum"),
    ("image", "none"),
    ("image", "pixel-mean"),
    ("batch", "mean"),
    ("batch", "sum"),
)
TGM_VARIANTS = [
    {},
    {"threshold": 0.2, "absolute": True},
    {"threshold": 0.04, "threshold_mode": "absolute", "align": "none"},
    {"threshold": 0.3, "temporal_scales": 3, "decay": 0.25},
]
VD_VARIANTS = [
    {"scales": 2},
    {"tgm_weight": 2.0, "alpha": 0.0, "scales": 1, "trim": 0.2, "threshold": 0.2},
    {"median_over": "all-pixels", "scales": 3, "align": "none", "absolute": True, "temporal_scales": 2},
]


def video_case(
    shape: Tuple[int, ...], seed: int, dtype: torch.dtype = torch.float64, motion: float = 0.3
) -> Tuple[Tensor, Tensor]:
    """Positive ``(pred, target)`` clips: a slowly drifting target with a ``motion`` fraction of moving pixels."""
    g = gen(seed)
    b, t, h, w = shape
    base = 0.3 + 2.7 * torch.rand((b, 1, h, w), generator=g, dtype=torch.float64)
    drift = 1.0 + 0.01 * torch.randn((b, t, h, w), generator=g, dtype=torch.float64)
    moving = torch.rand((b, t, h, w), generator=g) < motion
    target = torch.where(moving, 0.3 + 2.7 * torch.rand((b, t, h, w), generator=g, dtype=torch.float64), base * drift)
    pred = target * (1.0 + 0.3 * (2.0 * torch.rand(shape, generator=g, dtype=torch.float64) - 1.0))
    return pred.to(dtype), target.to(dtype)


def video_oracle_case(
    shape: Tuple[int, ...], mask_kind: str, seed: int, dtype: torch.dtype
) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    pred, target = video_case(shape, seed, dtype)
    mask = MASKS[mask_kind](shape, gen(seed + 7))
    return poison(pred, mask), poison(target, mask), mask


def static_fraction(target: Tensor) -> float:
    d = (target[:, 1:] - target[:, :-1]).abs()
    rng = target.flatten(2).amax(-1) - target.flatten(2).amin(-1)
    return float((d < 0.05 * rng[:, 1:, None, None]).double().mean())


def kernel_and_oracle(name: str) -> Tuple[Any, Any, Any]:
    if name == TGM:
        return DF.temporal_gradient_matching, R.temporal_gradient_matching, TGM_VARIANTS
    return DF.video_depth, R.video_depth, VD_VARIANTS


class VideoLossChecks:
    """The checks both video losses run; a ``Test<Loss>`` class sets :attr:`NAME`."""

    NAME = TGM

    def test_inputs_have_static_pixels(self) -> None:
        _, target = video_case((2, 4, 6, 6), 0)
        assert 0.3 < static_fraction(target) < 0.9  # the oracle cases exercise both sides of the mask

    def test_smoke(self) -> None:
        name = self.NAME
        for space in SPACES:
            pred_d, target_d = video_case((2, 3, 6, 7), 1)
            target_d = torch.where(torch.rand(target_d.shape, generator=gen(2)) < 0.8, target_d, 0.0)
            pred, target = to_input_space(pred_d, space).float(), to_input_space(target_d, space).float()
            for reduction in ("mean", "sum", "none", "pixel-mean"):
                module = build(name, space, reduction=reduction)
                x = pred.clone().requires_grad_(True)
                loss = module(x, target)
                assert loss.shape == ((2,) if reduction == "none" else ()) and loss.dtype == torch.float32
                assert torch.isfinite(loss).all() and (loss > 0).all()
                loss.sum().backward()
                assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
                assert torch.equal(x.grad[target == 0], torch.zeros_like(x.grad[target == 0]))
            assert space in repr(build(name, space))
            assert depthloss.loss_info(name).input_layout == "video"

    def test_exceptions(self) -> None:
        name = self.NAME
        module = build(name, "inverse")
        kernel = depthloss.loss_info(name).functional
        assert kernel is not None
        p = torch.rand(2, 3, 5, 5) + 0.5
        cases = [
            ((p.tolist(), p), TypeError, r"pred must be a torch\.Tensor"),
            ((p, p.numpy()), TypeError, r"target must be a torch\.Tensor"),
            ((p.long(), p), TypeError, r"pred must be a floating-point tensor"),
            ((p, p.int()), TypeError, r"target must be a floating-point tensor"),
            ((p[:, 0], p[:, 0]), ValueError, r"pred must have shape \(B, T, H, W\)"),
            ((p, p[:, :2]), ValueError, r"target must have the same shape as pred"),
            ((p, p, (p > 0).float()), TypeError, r"mask must be a bool tensor"),
            ((p, p, (p > 0)[:, :2]), ValueError, r"mask must have the same shape as pred"),
        ]
        for args, exc, pattern in cases:
            with pytest.raises(exc, match=pattern):
                module(*args)
            with pytest.raises(exc, match=pattern):
                kernel(*args)
        with pytest.raises(TypeError, match="not_an_input"):
            module(p, p, not_an_input=p)
        with pytest.raises(TypeError, match="progress must be"):
            module(p, p, progress="half")
        bad = [
            ({"threshold": 0.0}, ValueError, "threshold"),
            ({"threshold": "x"}, TypeError, "threshold"),
            ({"threshold_mode": "relative"}, ValueError, "threshold_mode"),
            ({"align": "median"}, ValueError, "align"),
            ({"temporal_scales": 0}, ValueError, "temporal_scales"),
            ({"decay": -1.0}, ValueError, "decay"),
            ({"scope": "global"}, ValueError, "scope"),
            ({"reduction": "max"}, ValueError, "reduction"),
        ]
        if name == VD:
            bad += [({"tgm_weight": -1.0}, ValueError, "tgm_weight"), ({"trim": 1.0}, ValueError, "trim"),
                    ({"scales": 0}, ValueError, "scales"), ({"median_over": "all"}, ValueError, "median_over")]  # fmt: skip
        cls = depthloss.loss_info(name).cls
        for kwargs, exc, argument in bad:
            with pytest.raises(exc, match=re.escape(argument)):
                cls(input_space="inverse", **kwargs)
            with pytest.raises(exc, match=re.escape(argument)):
                depthloss.get_loss(name, input_space="depth", **kwargs)
            with pytest.raises(exc, match=re.escape(argument)):
                kernel(p, p + 0.1, **kwargs)

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        kernel, oracle, variants = kernel_and_oracle(self.NAME)
        for i, shape in enumerate(SHAPES):
            pred, target, mask = video_oracle_case(shape, mask_kind, 10 * i, dtype)
            for variant in variants:
                for scope, reduction in SCOPE_REDUCTIONS:
                    kw: Dict[str, Any] = dict(variant, reduction=reduction, scope=scope)
                    got, want = kernel(pred, target, mask, **kw), oracle(pred, target, mask, **kw)
                    try:
                        assert_matches(got, want, dtype, **({"atol": 2e-5} if dtype == torch.float32 else {}))
                    except AssertionError as err:
                        raise AssertionError(f"{shape}, {mask_kind}, {kw}: {err}") from None

    def test_gradient_oracle(self) -> None:
        kernel, oracle, _ = kernel_and_oracle(self.NAME)
        for kw, mask_kind in (({}, "random"), ({"absolute": True, "threshold": 0.3, "scope": "batch"}, "one_empty")):
            pred, target, mask = video_oracle_case((2, 3, 4, 4), mask_kind, 3, torch.float64)
            valid = torch.ones_like(pred, dtype=torch.bool) if mask is None else mask
            assert_grad_matches_oracle(
                lambda x: kernel(x, target, mask, **kw), lambda x: oracle(x, target, mask, **kw), pred, valid
            )

    def test_gradcheck(self) -> None:
        name = self.NAME
        pred_d, target_d = video_case((2, 3, 4, 4), 4)
        for space in SPACES:
            pred, target = to_input_space(pred_d, space), to_input_space(target_d, space)
            module = build(name, space, scales=2) if name == VD else build(name, space)
            assert module(pred, target).dtype == torch.float64
            x = pred.clone().requires_grad_(True)
            assert torch.autograd.gradcheck(lambda p: module(p, target), (x,), eps=1e-6, atol=1e-5, rtol=1e-4)

    def test_single_frame_and_empty(self) -> None:
        for name in (self.NAME,):
            module = build(name, "inverse", reduction="none")
            for shape, mask in (((2, 1, 4, 4), None), ((2, 3, 4, 4), torch.zeros(2, 3, 4, 4, dtype=torch.bool)),
                                ((0, 3, 4, 4), None)):  # fmt: skip
                x = (torch.rand(shape) + 0.5).requires_grad_(True)
                loss = module(x, torch.rand(shape) + 0.5, mask)
                assert loss.shape == (shape[0],)
                if name == TGM or mask is not None or shape[0] == 0:
                    assert torch.equal(loss, torch.zeros(shape[0]))
                loss.sum().backward()
                assert x.grad is not None and torch.isfinite(x.grad).all()
                if mask is not None:
                    assert torch.equal(x.grad, torch.zeros(shape))

    def test_half_precision_and_no_mutation(self) -> None:
        pred, target = video_case((2, 3, 5, 5), 8, torch.float32)
        for name in (self.NAME,):
            module = build(name, "inverse")
            want = module(pred, target)
            p16, t16 = pred.half(), target.bfloat16().float().half()
            copies = (p16.clone(), t16.clone())
            got = module(p16, t16)
            assert got.dtype == torch.float32 and torch.isfinite(got)
            assert torch.equal(p16, copies[0]) and torch.equal(t16, copies[1])
            torch.testing.assert_close(got, module(p16.float(), t16.float()))
            assert torch.isfinite(want)

    @pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
    def test_compile_fullgraph(self, dynamic: bool) -> None:
        torch._dynamo.reset()
        for name in (self.NAME,):
            module = build(name, "inverse", reduction="none", **({"scales": 2} if name == VD else {}))
            compiled = torch.compile(module, fullgraph=True, dynamic=dynamic)
            for seed, shape in ((0, (2, 3, 5, 6)), (1, (3, 4, 6, 5))):
                pred, target = video_case(shape, seed, torch.float32)
                mask = torch.rand(shape, generator=gen(seed)) < 0.8
                torch.testing.assert_close(compiled(pred, target, mask), module(pred, target, mask))
            with pytest.raises(ValueError, match=r"pred must have shape \(B, T, H, W\)"):
                compiled(pred[:, 0], target[:, 0])

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.differing_executors])
    @given(
        a=st.floats(0.05, 20.0),
        b=st.floats(-5.0, 5.0),
        seed=st.integers(0, 1000),
    )
    def test_scale_shift_invariance(self, a: float, b: float, seed: int) -> None:
        """Declared invariances: ``pred -> a*pred + b`` (a > 0), one ``(a, b)`` per sequence."""
        name = self.NAME
        assert depthloss.loss_info(name).invariances == ("scale", "shift")
        kernel = DF.temporal_gradient_matching if name == TGM else DF.video_depth
        pred, target = video_case((2, 3, 5, 5), seed)
        mask = torch.rand(pred.shape, generator=gen(seed)) < 0.8
        per_seq_a = torch.tensor([a, 1.0 / a], dtype=torch.float64).reshape(2, 1, 1, 1)
        per_seq_b = torch.tensor([b, -b], dtype=torch.float64).reshape(2, 1, 1, 1)
        base = kernel(pred, target, mask, reduction="none")
        moved = kernel(per_seq_a * pred + per_seq_b, target, mask, reduction="none")
        torch.testing.assert_close(moved, base, rtol=1e-7, atol=1e-9)
        assert (base > 0).all()

    @settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.differing_executors])
    @given(seed=st.integers(0, 1000))
    def test_batch_permutation_equivariance(self, seed: int) -> None:
        kernel = DF.temporal_gradient_matching if self.NAME == TGM else DF.video_depth
        pred, target = video_case((3, 3, 4, 4), seed)
        perm = torch.tensor([2, 0, 1])
        torch.testing.assert_close(
            kernel(pred[perm], target[perm], reduction="none"), kernel(pred, target, reduction="none")[perm]
        )


class TestTemporalGradientMatching(VideoLossChecks):
    NAME = TGM

    def test_hand_computed(self) -> None:
        frame = 1 + torch.arange(4.0, dtype=torch.float64).reshape(1, 1, 2, 2) / 4
        target = frame + 0.01 * torch.arange(4.0, dtype=torch.float64).reshape(1, 4, 1, 1)
        flicker = target.clone()
        flicker[:, 1] += 0.02
        # signed: |+0.02| at pair 0 and |-0.02| at pair 1, 0 at pair 2 -> 0.04 / 3 per pixel
        assert float(DF.temporal_gradient_matching(flicker, target, align="none")) == pytest.approx(0.04 / 3)
        # the paper's |Δd| - |Δg|: pair 0 |0.03 - 0.01|, pair 1 |0.01 - 0.01|, pair 2 0
        assert float(DF.temporal_gradient_matching(flicker, target, align="none", absolute=True)) == pytest.approx(
            0.02 / 3
        )
        moved = target.clone()
        moved[:, 2:, 0, 0] += 1.0  # a pixel that changes a lot between frames 1 and 2 is not static
        still = frame.expand(1, 4, 2, 2)  # a prediction that does not change: |0 - 0.01| at static pixels
        assert float(DF.temporal_gradient_matching(still, moved, align="none")) == pytest.approx(0.01)
        assert float(DF.temporal_gradient_matching(still, moved, align="none", threshold=10.0)) > 0.05  # includes it

    @settings(max_examples=10, deadline=None)
    @given(b=st.floats(-5.0, 5.0), seed=st.integers(0, 1000))
    def test_unaligned_tgm_is_shift_invariant_only(self, b: float, seed: int) -> None:
        pred, target = video_case((2, 3, 5, 5), seed)
        base = DF.temporal_gradient_matching(pred, target, align="none", reduction="none")
        torch.testing.assert_close(
            DF.temporal_gradient_matching(pred + b, target, align="none", reduction="none"), base, rtol=1e-8, atol=1e-10
        )
        scaled = DF.temporal_gradient_matching(3.0 * pred, target, align="none", reduction="none")
        assert ((scaled - base).abs() > 1e-4).all()

    def test_module_equals_functional(self) -> None:
        pred_d, target_d = video_case((2, 3, 6, 6), 5)
        target_d = torch.where(torch.rand(target_d.shape, generator=gen(6)) < 0.7, target_d, 0.0)
        for space in SPACES:
            pred, target = to_input_space(pred_d, space).float(), to_input_space(target_d, space).float()
            # the module's conversion written out: inverse depth is 1 / depth where positive
            inv_p, inv_t = (
                (pred, target)
                if space == "inverse"
                else (to_input_space(pred, "inverse"), to_input_space(target, "inverse"))
            )
            got = build(TGM, space, reduction="none", threshold=0.1)(pred, target)
            want = DF.temporal_gradient_matching(inv_p, inv_t, target > 0, 0.1, reduction="none")
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
            assert got.abs().min() > 0
