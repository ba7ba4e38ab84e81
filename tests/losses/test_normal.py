"""``normal``: angular error between surface normals of predicted and target depth (:func:`depthloss.functional.normal`)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import depthloss.functional as DF
import reference as R
from helpers import MASKS, assert_matches, build, depth_case, gen, oracle_pair, pinhole_k, to_input_space
from loss_testing import (
    check_bad_hyperparameters,
    check_bad_inputs,
    check_gradcheck,
    check_gradient,
    check_metrics,
    check_smoke,
    check_values,
    depth_of,
)

NAME = "normal"
K_TUPLE = (7.0, 6.0, 4.5, 3.5)  # (fx, fy, cx, cy): the same for every batch size


def smooth_pair(shape=(2, 1, 12, 12), seed=0, dtype=torch.float64):
    """Smooth depth surfaces (normals vary slowly) and a perturbed prediction."""
    g = gen(seed)
    b, h, w = shape[0], shape[-2], shape[-1]
    v = torch.arange(h, dtype=torch.float64).reshape(1, h, 1)
    u = torch.arange(w, dtype=torch.float64).reshape(1, 1, w)
    a = torch.rand(b, 1, 1, generator=g, dtype=torch.float64)
    target = 2.0 + 0.2 * a * u + 0.1 * torch.sin(0.5 * v + a)
    pred = target * (1.0 + 0.05 * torch.rand(target.shape, generator=g, dtype=torch.float64))
    return pred.reshape(shape).to(dtype), target.reshape(shape).to(dtype)


class TestNormal:
    def test_smoke(self) -> None:
        check_smoke(NAME)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME,
            [({"kind": "degrees"}, ValueError, "kind"), ({"stencil": "sobel"}, ValueError, "stencil"),
             ({"eps": 0.0}, ValueError, "eps"), ({"eps": "x"}, TypeError, "eps")],
        )  # fmt: skip
        module = build(NAME, "depth")
        p = torch.rand(2, 1, 6, 7) + 0.5
        with pytest.raises(TypeError, match=r"K \(camera intrinsics\) is required: a \(B, 3, 3\) tensor"):
            module(p, p)
        for bad, exc in (
            (torch.ones(2, 3, 4), ValueError),
            (torch.ones(3, 3, 3), ValueError),
            (torch.ones(2, 5), ValueError),
            (torch.ones(2, 3, 3, dtype=torch.long), TypeError),
            ((1.0, 2.0, 3.0), ValueError),
            ("K", TypeError),
        ):
            with pytest.raises(exc, match="K"):
                module(p, p, K=bad)
            with pytest.raises(exc, match="K"):
                DF.normal(p, p, K=bad)
        with pytest.raises(ValueError, match=r"target_normals must have shape \(B, 3, H, W\)"):
            module(p, p, K=K_TUPLE, target_normals=torch.ones(2, 1, 6, 7))
        with pytest.raises(TypeError, match="target_normals"):
            module(p, p, K=K_TUPLE, target_normals=torch.ones(2, 3, 6, 7, dtype=torch.int32))

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        variants = [
            {"K": K_TUPLE},
            {"K": K_TUPLE, "kind": "angle"},
            {"K": K_TUPLE, "stencil": "forward"},
            {"K": K_TUPLE, "kind": "angle", "stencil": "forward", "eps": 1e-3},
        ]
        # random depths: rough surfaces, cross products of differences in float32
        tol = (lambda kw, e: {"rtol": 2e-4, "atol": 2e-5}) if dtype == torch.float32 else None
        check_values(DF.normal, R.normal, variants, mask_kind, dtype, tolerance=tol)

    @pytest.mark.parametrize("layout", ["tensor33", "tensor4"])
    def test_oracle_per_image_intrinsics(self, layout: str) -> None:
        pred, target, mask = oracle_pair((3, 1, 8, 9), "random", 4, torch.float64)
        mask = mask | (torch.arange(72).reshape(1, 1, 8, 9) % 4 != 0)  # denser: many valid stencils
        fresh = 0.5 + torch.rand((2, 3, 1, 8, 9), generator=gen(8), dtype=torch.float64)
        pred = torch.where(torch.isfinite(pred) & (pred > 0), pred, fresh[0])  # junk only off the mask
        target = torch.where(torch.isfinite(target) & (target > 0), target, fresh[1])
        pred, target = torch.where(mask, pred, float("nan")), torch.where(mask, target, -1.0)
        k4 = torch.tensor([[7.0, 6.0, 4.0, 3.0], [5.0, 9.0, 4.5, 3.5], [12.0, 12.0, 1.0, 6.0]], dtype=torch.float64)
        K = (
            k4
            if layout == "tensor4"
            else torch.stack(
                [torch.tensor([[f, 0.0, cx], [0.0, g, cy], [0.0, 0.0, 1.0]]) for f, g, cx, cy in k4.tolist()]
            ).double()
        )
        for reduction in ("mean", "none", "pixel-mean"):
            got = DF.normal(pred, target, mask, K, reduction=reduction)
            assert_matches(got, R.normal(pred, target, mask, k4, reduction=reduction), torch.float64)

    def test_target_normals_oracle(self) -> None:
        pred, target, mask = oracle_pair((2, 1, 7, 8), "random", 5, torch.float64)
        gt = torch.randn(2, 3, 7, 8, generator=gen(9), dtype=torch.float64)
        gt[0, :, 2, 3] = 0.0  # a zero normal does not count
        gt[1, 1, 4, 4] = float("nan")
        for kind in ("cosine", "angle"):
            got = DF.normal(pred, target, mask, K_TUPLE, kind, target_normals=gt, reduction="none")
            assert_matches(
                got, R.normal(pred, target, mask, K_TUPLE, kind, target_normals=gt, reduction="none"), torch.float64
            )
        # the normals of the target itself give the loss derived from the target depth
        p, t = smooth_pair()
        n_t = DF.depth_to_normals(t, K_TUPLE).normals
        torch.testing.assert_close(DF.normal(p, t, K=K_TUPLE, target_normals=3.0 * n_t), DF.normal(p, t, K=K_TUPLE))

    def test_gradient_oracle(self) -> None:
        check_gradient(DF.normal, R.normal, {"K": K_TUPLE}, mask_kind="none")
        check_gradient(DF.normal, R.normal, {"K": K_TUPLE, "kind": "angle", "stencil": "forward"}, mask_kind="random")
        check_gradient(DF.normal, R.normal, {"K": K_TUPLE, "scope": "batch"}, mask_kind="none", wrt="target")

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME)
        check_gradcheck(NAME, kind="angle")

    def test_module_equals_functional(self) -> None:
        """The module is the kernel on depths moved to metric depth (clamped), K passed through."""
        for space in ("inverse", "depth"):
            pred_d, target_d, _ = depth_case((2, 1, 12, 12), density=0.8, seed=12)
            pred, target = to_input_space(pred_d, space).float(), to_input_space(target_d, space).float()
            K = pinhole_k(pred)
            module = build(NAME, space, kind="angle", min_depth=0.8, max_depth=4.0, reduction="none")
            got = module(pred, target, K=K)
            want = DF.normal(
                depth_of(pred, space, 0.8, 4.0),
                depth_of(target, space, 0.8, 4.0),
                target > 0,
                K,
                "angle",
                reduction="none",
            )
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
            assert got.min() > 0

    def test_metrics(self) -> None:
        check_metrics(NAME, {"loss"})

    def test_normals_of_a_plane(self) -> None:
        """A tilted 3D plane n.P = d, rendered with K: every normal equals -n (facing the camera)."""
        fx, fy, cx, cy = K_TUPLE
        n = torch.tensor([0.3, -0.2, -1.0], dtype=torch.float64)
        n = n / n.norm()
        v, u = torch.meshgrid(
            torch.arange(9.0, dtype=torch.float64), torch.arange(10.0, dtype=torch.float64), indexing="ij"
        )
        ray = torch.stack(((u - cx) / fx, (v - cy) / fy, torch.ones_like(u)))
        depth = (-3.0 / (n.reshape(3, 1, 1) * ray).sum(0)).reshape(1, 1, 9, 10)
        assert (depth > 0).all()
        for stencil in ("central", "forward"):
            out = DF.depth_to_normals(depth, K_TUPLE, stencil=stencil)
            got = out.normals[0][:, out.valid[0, 0]]
            assert got.shape[1] == (7 * 8 if stencil == "central" else 8 * 9)
            torch.testing.assert_close(got, n.reshape(3, 1).expand_as(got), rtol=1e-9, atol=1e-9)
            pts = DF.backproject(depth, K_TUPLE)
            torch.testing.assert_close(
                (pts * n.reshape(1, 3, 1, 1)).sum(1), torch.full((1, 9, 10), -3.0, dtype=torch.float64)
            )
        assert float(DF.normal(depth * 1.7, depth, K=K_TUPLE)) < 1e-12

    def test_hand_computed_angle(self) -> None:
        """Two planes whose normals differ by a known angle."""
        fx, fy, cx, cy = K_TUPLE
        v, u = torch.meshgrid(
            torch.arange(6.0, dtype=torch.float64), torch.arange(6.0, dtype=torch.float64), indexing="ij"
        )
        ray = torch.stack(((u - cx) / fx, (v - cy) / fy, torch.ones_like(u)))

        def plane(theta: float) -> torch.Tensor:
            n = torch.tensor([math.sin(theta), 0.0, -math.cos(theta)], dtype=torch.float64)
            return (-2.0 / (n.reshape(3, 1, 1) * ray).sum(0)).reshape(1, 1, 6, 6)

        got = DF.normal(plane(0.3), plane(0.1), K=K_TUPLE, kind="angle")
        assert float(got) == pytest.approx(0.2, rel=1e-9)
        assert float(DF.normal(plane(0.3), plane(0.1), K=K_TUPLE)) == pytest.approx(1.0 - math.cos(0.2), rel=1e-9)

    @settings(max_examples=15, deadline=None)
    @given(
        a=st.floats(0.05, 20.0),
        b=st.floats(0.05, 20.0),
        seed=st.integers(0, 50),
        kind=st.sampled_from(["cosine", "angle"]),
    )
    def test_scale_invariance(self, a: float, b: float, seed: int, kind: str) -> None:
        """A common global scale of both depths (and a scale of either alone) leaves the loss unchanged."""
        pred_d, target_d, valid = depth_case((2, 1, 9, 9), density=0.9, seed=seed)
        base = DF.normal(pred_d, target_d, valid, K_TUPLE, kind, reduction="none")
        torch.testing.assert_close(
            DF.normal(a * pred_d, a * target_d, valid, K_TUPLE, kind, reduction="none"), base, rtol=1e-7, atol=1e-9
        )
        torch.testing.assert_close(
            DF.normal(a * pred_d, b * target_d, valid, K_TUPLE, kind, reduction="none"), base, rtol=1e-7, atol=1e-9
        )

    def test_module_inverse_space_and_invariance(self) -> None:
        pred_d, target_d, _ = depth_case((2, 1, 10, 10), density=1.0, seed=3)
        K = pinhole_k(pred_d)
        module = build(NAME, "inverse", reduction="none")
        base = module(to_input_space(pred_d, "inverse"), to_input_space(target_d, "inverse"), K=K)
        assert (base > 0).all()
        torch.testing.assert_close(
            module(0.3 * to_input_space(pred_d, "inverse"), to_input_space(target_d, "inverse"), K=K), base
        )
        torch.testing.assert_close(build(NAME, "depth", reduction="none")(pred_d, target_d, K=K), base)

    def test_compile_with_tuple_intrinsics(self) -> None:
        module = build(NAME, "depth")
        compiled = torch.compile(module, fullgraph=True, backend="eager", dynamic=True)
        for hw in ((8, 9), (10, 7)):
            p, t = smooth_pair((2, 1, *hw), dtype=torch.float32)
            torch.testing.assert_close(compiled(p, t, K=K_TUPLE), module(p, t, K=K_TUPLE))

    def test_intrinsics_forms_agree(self) -> None:
        """A tuple of numbers, of 0-dim or (B,) tensors, a (B, 4) and a (B, 3, 3) tensor: the same points."""
        depth = 0.5 + torch.rand(2, 1, 5, 6, generator=gen(2), dtype=torch.float64)
        fx, fy, cx, cy = K_TUPLE
        forms = [
            K_TUPLE,
            tuple(torch.tensor(v, dtype=torch.float64) for v in K_TUPLE),
            tuple(torch.full((2,), v, dtype=torch.float64) for v in K_TUPLE),
            torch.tensor([K_TUPLE, K_TUPLE], dtype=torch.float64),
            torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float64).expand(2, 3, 3),
        ]
        want = DF.backproject(depth, K_TUPLE)
        for K in forms:
            torch.testing.assert_close(DF.backproject(depth, K), want)
        with pytest.raises(ValueError, match="K entries"):
            DF.backproject(depth, (torch.ones(3), 1.0, 1.0, 1.0))
        with pytest.raises(TypeError, match="K entries"):
            DF.backproject(depth, (True, 1.0, 1.0, 1.0))
        # depth_to_normals leaves invalid pixels' junk out of values and gradients
        mask = torch.ones_like(depth, dtype=torch.bool)
        mask[0, 0, 2, 2] = False
        x = torch.where(mask, depth, float("nan")).requires_grad_(True)
        out = DF.depth_to_normals(x, K_TUPLE, mask)
        assert not out.valid[0, 0, 2, 2] and not out.valid[0, 0, 1, 2] and out.valid[0, 0, 1, 1]
        out.normals.sum().backward()
        assert torch.isfinite(x.grad).all() and x.grad[0, 0, 2, 2] == 0
