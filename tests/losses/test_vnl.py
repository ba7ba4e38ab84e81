"""``vnl``: virtual normal loss, L1 between the normals of sampled point triplets (:func:`depthloss.functional.vnl`)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import depthloss.functional as DF
import reference as R
from depthloss.functional.sampling import hashed_uniform
from depthloss.functional.vnl import vnl_num_samples, vnl_terms
from helpers import MASKS, ORACLE_SHAPES, assert_matches, build, depth_case, gen, oracle_pair, pinhole_k, to_input_space
from loss_testing import (
    check_bad_hyperparameters,
    check_bad_inputs,
    check_gradcheck,
    check_metrics,
    check_smoke,
    depth_of,
)

NAME = "vnl"
K_TUPLE = (5.0, 4.0, 4.5, 3.5)
SCOPE_REDUCTIONS = (("image", "mean"), ("image", "sum"), ("image", "none"), ("image", "pixel-mean"), ("batch", "mean"))


def valid_of(mask, like):
    return torch.ones_like(like, dtype=torch.bool) if mask is None else mask


class TestVNL:
    def test_smoke(self) -> None:
        check_smoke(NAME)
        check_smoke(NAME, seed=3, trim=0.25)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME,
            [({"num_samples": -1}, ValueError, "num_samples"), ({"num_samples": 2.5}, TypeError, "num_samples"),
             ({"delta_cos": 1.5}, ValueError, "delta_cos"), ({"delta_diff": -1.0}, ValueError, "delta_diff"),
             ({"delta_z": -1e-4}, ValueError, "delta_z"), ({"trim": 1.0}, ValueError, "trim"),
             ({"seed": -1}, ValueError, "seed"), ({"sample_ratio": -0.1}, ValueError, "sample_ratio")],
        )  # fmt: skip
        module = build(NAME, "depth")
        p = torch.rand(2, 1, 6, 7) + 0.5
        with pytest.raises(TypeError, match=r"K \(camera intrinsics\) is required"):
            module(p, p)
        with pytest.raises(ValueError, match=r"K must be .* with B = 2, got a tensor of shape \(3, 3, 3\)"):
            module(p, p, K=torch.ones(3, 3, 3))
        with pytest.raises(ValueError, match="K"):
            DF.vnl(p, p, K=torch.ones(2, 3))
        with pytest.raises(TypeError, match="generator"):
            module(p, p, K=K_TUPLE, generator=0)
        with pytest.raises(ValueError, match="generator or seed"):
            build(NAME, "depth", seed=1)(p, p, K=K_TUPLE, generator=torch.Generator())
        with pytest.raises(ValueError, match=r"samples must have shape \(B, S, 3\)"):
            DF.vnl(p, p, K=K_TUPLE, samples=torch.zeros(2, 5, 2, dtype=torch.long))
        with pytest.raises(TypeError, match="samples"):
            DF.vnl(p, p, K=K_TUPLE, samples=torch.zeros(2, 5, 3))

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        """The kernel on the triplets the oracle loops over (drawn by ``vnl_samples``, passed to both)."""
        variants = [{}, {"trim": 0.25}, {"delta_diff": 0.3, "delta_cos": 0.5}, {"delta_z": 1.0}]
        for i, shape in enumerate(ORACLE_SHAPES + ((2, 1, 12, 12),)):
            pred, target, mask = oracle_pair(shape, mask_kind, 40 + i, dtype)
            samples = DF.vnl_samples(valid_of(mask, pred), 30, torch.Generator().manual_seed(i))
            for kw in variants:
                for scope, reduction in SCOPE_REDUCTIONS:
                    args = dict(kw, reduction=reduction, scope=scope)
                    got = DF.vnl(pred, target, mask, K_TUPLE, samples=samples, **args)
                    want = R.vnl(pred, target, mask, K_TUPLE, samples=samples, **args)
                    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {}
                    assert_matches(got, want, dtype, **tol)

    def test_oracle_authors_form(self) -> None:
        """``trim=0.25, scope="batch"``: the authors' batch-pooled mean without the smallest 25 %."""
        pred, target, mask = oracle_pair((2, 1, 12, 12), "random", 3, torch.float64)
        K = pinhole_k(pred)
        samples = DF.vnl_samples(mask, vnl_num_samples(12, 12, 0.15), seed=5)
        assert samples.shape == (2, 21, 3)
        got = DF.vnl(pred, target, mask, K, trim=0.25, scope="batch", samples=samples)
        want = R.vnl(pred, target, mask, K, samples=samples, trim=0.25, scope="batch")
        assert_matches(got, want, torch.float64)
        assert (got - DF.vnl(pred, target, mask, K, scope="batch", samples=samples)).abs() > 1e-3

    def test_triplets_touching_invalid_pixels_do_not_count(self) -> None:
        pred, target, mask = oracle_pair((2, 1, 8, 8), "random", 6, torch.float64)
        samples = torch.randint(0, 64, (2, 40, 3), generator=gen(1))  # any pixels
        got = DF.vnl(pred, target, mask, K_TUPLE, samples=samples, reduction="none")
        assert torch.isfinite(got).all()
        assert_matches(got, R.vnl(pred, target, mask, K_TUPLE, samples=samples, reduction="none"), torch.float64)

    def test_gradient_oracle(self) -> None:
        from helpers import assert_grad_matches_oracle

        pred, target, mask = oracle_pair((2, 1, 6, 7), "random", 3, torch.float64)
        samples = DF.vnl_samples(mask, 25, seed=2)
        for kw in ({}, {"trim": 0.25, "scope": "batch"}):
            assert_grad_matches_oracle(
                lambda x: DF.vnl(x, target, mask, K_TUPLE, samples=samples, **kw),
                lambda x: R.vnl(x, target, mask, K_TUPLE, samples=samples, **kw),
                pred,
                mask,
            )

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME, seed=0)

    def test_module_equals_functional(self) -> None:
        for space in ("inverse", "depth"):
            pred_d, target_d, _ = depth_case((2, 1, 12, 12), density=0.8, seed=12)
            pred, target = to_input_space(pred_d, space).float(), to_input_space(target_d, space).float()
            K = pinhole_k(pred)
            module = build(NAME, space, seed=4, trim=0.1, min_depth=0.8, max_depth=4.0, reduction="none")
            got = module(pred, target, K=K)
            want = DF.vnl(
                depth_of(pred, space, 0.8, 4.0), depth_of(target, space, 0.8, 4.0), target > 0, K,
                trim=0.1, seed=4, reduction="none",
            )  # fmt: skip
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
            assert got.min() > 0
            g = torch.Generator().manual_seed(3)
            free = build(NAME, space, reduction="none")
            a = free(pred, target, K=K, generator=torch.Generator().manual_seed(3))
            want = DF.vnl(depth_of(pred, space), depth_of(target, space), target > 0, K, generator=g, reduction="none")
            torch.testing.assert_close(a, want)

    def test_metrics(self) -> None:
        check_metrics(NAME, {"loss"})

    def test_sampling(self) -> None:
        """Fixed counts, only valid pixels, uniform over them; deterministic given a generator or a seed."""
        valid = torch.rand(3, 1, 9, 11, generator=gen(0)) < 0.3
        valid[2] = False
        s = DF.vnl_samples(valid, 2000, torch.Generator().manual_seed(1))
        assert s.shape == (3, 2000, 3) and s.dtype == torch.int64
        flat = valid.reshape(3, -1)
        assert flat[:2].gather(1, s[:2].reshape(2, -1)).all()
        counts = torch.bincount(s[0].reshape(-1), minlength=99)[flat[0]].double()
        assert counts.min() > 0 and (counts.max() / counts.mean()) < 1.6  # ~ 6000 / 30 per pixel
        assert torch.equal(s, DF.vnl_samples(valid, 2000, torch.Generator().manual_seed(1)))
        assert not torch.equal(s, DF.vnl_samples(valid, 2000))
        assert not torch.equal(DF.vnl_samples(valid, 50), DF.vnl_samples(valid, 50))  # global RNG
        seeded = DF.vnl_samples(valid, 50, seed=7)
        assert torch.equal(seeded, DF.vnl_samples(valid, 50, seed=7))
        assert torch.equal(DF.vnl_samples(valid[1:2], 50, seed=7), seeded[1:2])  # independent of the batch
        u = hashed_uniform((100_000,), valid, 0)
        assert float(u.min()) >= 0.0 and float(u.max()) < 1.0 and abs(float(u.mean()) - 0.5) < 0.01
        assert vnl_num_samples(480, 640, 0.15) == int(480 * 640 * 0.15)

    def test_loss_deterministic_given_a_generator(self) -> None:
        pred, target, mask = oracle_pair((2, 1, 10, 10), "random", 8, torch.float32)
        a = DF.vnl(pred, target, mask, K_TUPLE, generator=torch.Generator().manual_seed(5), reduction="none")
        b = DF.vnl(pred, target, mask, K_TUPLE, generator=torch.Generator().manual_seed(5), reduction="none")
        c = DF.vnl(pred, target, mask, K_TUPLE, reduction="none")
        assert torch.equal(a, b) and not torch.equal(a, c)

    def test_rejection_criteria(self) -> None:
        """Colinear, near and behind-the-camera triplets of the target carry zero weight."""
        z = torch.full((1, 1, 4, 8), 2.0, dtype=torch.float64)
        samples = torch.tensor(
            [[[0, 1, 2], [0, 15, 26], [0, 0, 5], [0, 12, 25]]]
        )  # colinear row, ok, a repeated corner, ok
        t = vnl_terms(z, z, K_TUPLE, torch.ones_like(z, dtype=torch.bool), samples, 0.867, 0.005, 1e-4)
        assert t.keep.tolist() == [[False, True, False, True]]
        t = vnl_terms(z, z * 0.0 + 1e-5, K_TUPLE, torch.ones_like(z, dtype=torch.bool), samples, 0.867, 0.005, 1e-4)
        assert not t.keep.any()  # every corner at depth <= delta_z

    @settings(max_examples=12, deadline=None)
    @given(a=st.floats(0.05, 20.0), seed=st.integers(0, 50), trim=st.sampled_from([0.0, 0.25]))
    def test_scale_invariance(self, a: float, seed: int, trim: float) -> None:
        """A common global scale of both depths, same draws: unchanged (thresholds in metres set to 0);
        scaling the prediction alone: unchanged with the authors' thresholds too."""
        pred_d, target_d, valid = depth_case((2, 1, 10, 10), density=0.7, seed=seed)
        kw = {"num_samples": 40, "trim": trim, "reduction": "none"}
        draw = lambda: torch.Generator().manual_seed(seed)  # noqa: E731
        base = DF.vnl(pred_d, target_d, valid, K_TUPLE, delta_diff=0.0, delta_z=0.0, generator=draw(), **kw)
        scaled = DF.vnl(a * pred_d, a * target_d, valid, K_TUPLE, delta_diff=0.0, delta_z=0.0, generator=draw(), **kw)
        torch.testing.assert_close(scaled, base, rtol=1e-7, atol=1e-9)
        default = DF.vnl(pred_d, target_d, valid, K_TUPLE, generator=draw(), **kw)
        torch.testing.assert_close(
            DF.vnl(a * pred_d, target_d, valid, K_TUPLE, generator=draw(), **kw), default, rtol=1e-7, atol=1e-9
        )

    def test_compile_without_generator(self) -> None:
        """fullgraph with the global RNG (no generator), and with seed: equal to eager."""
        p, t, m = oracle_pair((2, 1, 9, 10), "random", 2, torch.float32)
        fn = torch.compile(
            lambda p, t, m: DF.vnl(p, t, m, K_TUPLE, seed=1), fullgraph=True, backend="eager", dynamic=True
        )
        torch.testing.assert_close(fn(p, t, m), DF.vnl(p, t, m, K_TUPLE, seed=1))
        free = torch.compile(lambda p, t, m: DF.vnl(p, t, m, K_TUPLE), fullgraph=True, backend="eager")
        assert torch.isfinite(free(p, t, m))
