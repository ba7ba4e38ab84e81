"""``near-field-ssi-silog``: near-field-weighted SSI (inverse depth) + SILog (depth), the seed's analysis fixed
(:func:`depthloss.functional.near_field_ssi_silog`)."""

from __future__ import annotations

import math
from typing import Any, Dict, Tuple

import pytest
import torch
from torch import Tensor

import depthloss.functional as DF
import reference as R
from helpers import MASKS, assert_equal, build, depth_case, gen, loss_inputs, to_input_space
from loss_testing import (
    GLOBAL_SCOPE_REDUCTIONS,
    PROGRESSES,
    WEIGHTS,
    as_batch,
    check_bad_hyperparameters,
    check_bad_inputs,
    check_gradcheck,
    check_gradient,
    check_metrics,
    check_module_equals_functional,
    check_smoke,
    check_values,
    inverse_of,
)

NAME = "near-field-ssi-silog"
METRICS = {
    "total",
    "ssi",
    "silog",
    "baseline",
    "total_over_baseline",
    "near_ratio",
    "near_mae",
    "far_mae",
    "threshold_t",
    "loss",
}


def near_case(seed: int = 22, shape: Tuple[int, ...] = (2, 1, 10, 10), low: float = 0.3, high: float = 4.0):
    """Inverse-depth ``(pred, target, valid)``: targets 0.3-4 m, so both near and far pixels."""
    pred_d, target_d, valid = depth_case(shape, density=0.6, seed=seed, low=low, high=high)
    return to_input_space(pred_d, "inverse").float(), to_input_space(target_d, "inverse").float(), valid


def grad_of(module: torch.nn.Module, pred: Tensor, target: Tensor, hook: bool = False) -> Tensor:
    p = pred.clone().requires_grad_(True)
    loss = module(p, target)
    if hook:  # the seed: ssi_loss.register_hook(lambda grad: torch.clamp(grad, -1.0, 1.0))
        loss.register_hook(lambda g: g.clamp(-1.0, 1.0))
    loss.backward()
    return p.grad


ORACLE_VARIANTS = [{"progress": p} for p in PROGRESSES] + [
    {"weights": WEIGHTS},
    {"progress": 0.6, "threshold_schedule": "linear", "weight_mode": "linear", "near_weight": 3.0},
    {
        "progress": 0.2,
        "threshold_schedule": "cosine",
        "threshold_start": 0.1,
        "threshold_end": 5.0,
        "weight_mode": "step",
    },
    {"combine": "split", "near_threshold": 1.2},
    {"combine": "split", "split_weights": (0.2, 0.8), "near_threshold": 0.5},
    {"ssi_weighting": "scaled-diff"},
    {"ssi_weighting": "scaled-diff", "ssi_weight_norm": "batch", "ssi_weight_clamp": (0.8, 1.5)},
    {"min_depth": 0.6, "max_depth": 2.0, "alpha": 0.6, "silog_weight_clamp": (0.9, 1.1), "grad_clip": 0.01},
]


class TestNearFieldSSISilog:
    def test_smoke(self) -> None:
        check_smoke(NAME)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME,
            [({"near_weight": 0.5}, ValueError, "near_weight"), ({"weight_mode": "x"}, ValueError, "weight_mode"),
             ({"ssi_weighting": "median"}, ValueError, "ssi_weighting"), ({"ssi_weight_norm": "global"}, ValueError, "ssi_weight_norm"),
             ({"combine": "both"}, ValueError, "combine"), ({"near_threshold": 0.0}, ValueError, "near_threshold"),
             ({"transition": -0.1}, ValueError, "transition"), ({"silog_weight_clamp": (2.0, 0.7)}, ValueError, "silog_weight_clamp"),
             ({"ssi_weight_clamp": 3.0}, TypeError, "ssi_weight_clamp"), ({"threshold_schedule": "bogus"}, ValueError, "threshold_schedule"),
             ({"grad_clip": 0.0}, ValueError, "grad_clip"), ({"silog_ratio2": 1.5}, ValueError, "silog_ratio2"),
             ({"split_weights": (0.5,)}, TypeError, "split_weights"), ({"ssi_weight_mean": 0.0}, ValueError, "ssi_weight_mean")],
            functional=DF.near_field_ssi_silog,
        )  # fmt: skip

    @pytest.mark.parametrize(
        "bad,exc",
        [("half", TypeError), (True, TypeError), ([0.5], TypeError), (None, TypeError), (float("inf"), ValueError)],
    )
    def test_progress_checked_without_a_schedule(self, bad: Any, exc: type) -> None:
        """Issue 12 item 6: DF.near_field_ssi_silog accepted any progress when threshold_schedule was None."""
        p = torch.rand(2, 1, 8, 8) + 0.1
        with pytest.raises(exc, match="progress"):
            DF.near_field_ssi_silog(p, p + 0.1, progress=bad)
        with pytest.raises(exc, match="progress"):
            DF.near_field_ssi_silog(p, p + 0.1, progress=bad, threshold_schedule="linear")

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        check_values(
            DF.near_field_ssi_silog, as_batch(R.near_field_ssi_silog), ORACLE_VARIANTS, mask_kind, dtype,
            scope_reductions=GLOBAL_SCOPE_REDUCTIONS, low=0.2, high=5.0,
        )  # fmt: skip

    def test_gradient_oracle(self) -> None:
        # the pixel weights come from the target and are detached by design: pred only
        check_gradient(DF.near_field_ssi_silog, R.near_field_ssi_silog, {"progress": 0.3}, low=0.2, high=5.0)
        check_gradient(
            DF.near_field_ssi_silog, R.near_field_ssi_silog, {"weights": WEIGHTS, "scope": "batch"}, low=0.2, high=5.0
        )
        check_gradient(
            DF.near_field_ssi_silog, R.near_field_ssi_silog, {"combine": "split", "reduction": "sum"}, low=0.2, high=5.0
        )
        check_gradient(
            DF.near_field_ssi_silog, R.near_field_ssi_silog, {"ssi_weighting": "scaled-diff"}, low=0.2, high=5.0
        )

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME, threshold_schedule="linear")

    def test_module_equals_functional(self) -> None:
        kwargs: Dict[str, Any] = {
            "near_weight": 3.0,
            "weight_mode": "linear",
            "near_threshold": 2.0,
            "transition": 0.5,
            "alpha": 0.6,
        }
        check_module_equals_functional(
            NAME,
            dict(kwargs, min_depth=0.8, max_depth=4.0),
            lambda p, t, m, s, pr: DF.near_field_ssi_silog(
                inverse_of(p, s, 0.8, 4.0),
                inverse_of(t, s, 0.8, 4.0),
                m,
                pr,
                **kwargs,
                min_depth=0.8,
                max_depth=4.0,
                reduction="none",
            ),
        )
        for space in ("inverse", "depth"):  # explicit weights
            pred_d, target_d, _ = depth_case((2, 1, 10, 10), density=0.6, seed=14)
            pred, target = to_input_space(pred_d, space).float(), to_input_space(target_d, space).float()
            weights = 1.0 + 3.0 * torch.rand(pred.shape, generator=gen(2))
            got = build(NAME, space, reduction="none")(pred, target, weights=weights)
            want = DF.near_field_ssi_silog(
                inverse_of(pred, space), inverse_of(target, space), target > 0, 0.0, weights, reduction="none"
            )
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)

    def test_metrics(self) -> None:
        check_metrics(NAME, METRICS)

    def test_metrics_are_computed_only_when_read(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The diagnostics cost full-resolution passes: deferred until read, then cached."""
        import importlib

        from depthloss.nn.base import LazyMetrics

        near_field_module = importlib.import_module("depthloss.functional.near_field_ssi_silog")

        calls = []
        original = near_field_module._metrics

        def counting(*args: Any) -> Dict[str, Tensor]:
            calls.append(1)
            return original(*args)

        monkeypatch.setattr(near_field_module, "_metrics", counting)
        module = build(NAME)
        pred, target, _ = near_case(seed=21)
        p = pred.clone().requires_grad_(True)
        loss = module(p, target)
        loss.backward()
        assert isinstance(module.metrics, LazyMetrics) and not calls
        first = dict(module.metrics)
        assert len(calls) == 1 and set(first) == METRICS
        assert float(module.metrics["near_ratio"]) == float(first["near_ratio"]) and len(calls) == 1
        torch.testing.assert_close(first["loss"], loss.detach())

    @pytest.mark.parametrize("mode", ["smooth", "linear", "step"])
    def test_weights_never_increase_with_depth(self, mode: str) -> None:
        depth = torch.linspace(0.01, 10.0, 2000).reshape(1, 1, 40, 50)
        for space in ("inverse", "depth"):
            module = build(
                NAME,
                space,
                weight_mode=mode,
                near_weight=4.0,
                threshold_schedule="linear",
                threshold_start=0.5,
                threshold_end=2.5,
            )
            for progress in (0.0, 0.5, 1.0):
                w = module.full_resolution_weights(to_input_space(depth, space), progress=progress).flatten()
                assert (w[1:] <= w[:-1]).all()
                assert 3.5 < float(w[0]) <= 4.0 and abs(float(w[-1]) - 1.0) < 1e-6

    def test_regression_reversed_tanh_weights(self) -> None:
        """The seed's smooth weight 1 + 4 (1 + tanh((d - 1) / 0.3)) / 2 weighted *far* pixels x5."""
        depth = torch.tensor([[[0.2, 5.0]]])
        seed = 1.0 + 4.0 * (1.0 + torch.tanh((depth - 1.0) / 0.3)) / 2.0
        assert abs(float(seed[0, 0, 0]) - 1.0) < 0.05 and abs(float(seed[0, 0, 1]) - 5.0) < 1e-4
        expected = torch.tensor([[[1.0 + 4.0 * 0.5 * (1.0 - math.tanh((d - 1.0) / 0.3)) for d in (0.2, 5.0)]]])
        for ours in (
            DF.near_field_weights(depth),
            build(NAME, "depth").full_resolution_weights(depth),
            build(NAME).full_resolution_weights(1.0 / depth),
        ):
            torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(ours, 6.0 - seed, rtol=1e-5, atol=1e-5)  # the mirror image

    @pytest.mark.parametrize("space", ["inverse", "depth"])
    def test_regression_gradient_hook_on_scalar_clamps_nothing(self, space: str) -> None:
        depth_t = torch.tensor([[[[1.0, 0.5], [2.0, 0.25]]]])
        depth_p = torch.tensor([[[[0.2, 3.0], [0.3, 4.0]]]])  # large errors on a 4-pixel image
        pred, target = to_input_space(depth_p, space), to_input_space(depth_t, space)
        plain = grad_of(build(NAME, space), pred, target)
        assert plain.abs().max() > 1.0
        assert_equal(grad_of(build(NAME, space), pred, target, hook=True), plain)  # the hook sees d loss / d loss = 1
        clipped = grad_of(build(NAME, space, grad_clip=1.0), pred, target)
        assert_equal(clipped, plain.clamp(-1.0, 1.0))
        assert_equal(grad_of(build(NAME, space, grad_clip=1e6), pred, target), plain)

    def test_grad_clip_changes_gradients_only(self) -> None:
        pred, target, _ = near_case(seed=21)
        plain = grad_of(build(NAME), pred, target)
        c = float(plain.abs().max()) / 4.0
        assert_equal(grad_of(build(NAME, grad_clip=c), pred, target), plain.clamp(-c, c))
        assert_equal(build(NAME, grad_clip=c)(pred, target), build(NAME)(pred, target))

    def test_hand_formulas(self) -> None:
        """The SSI and SILog terms against DESIGN §4 (seed solution 2-1, issue 3), written out."""
        pred, target, valid = near_case(seed=24)
        pred, target = pred.double(), target.double()
        w_all = (1.0 + 4.0 * torch.rand(pred.shape, generator=gen(3))).double()
        ssi_only = build(NAME, ssi_weight=1.0, silog_weight=0.0, reduction="none")(pred, target, weights=w_all)
        silog_only = build(NAME, ssi_weight=0.0, silog_weight=1.0, reduction="none")(pred, target, weights=w_all)
        scaled = build(NAME, ssi_weight=1.0, silog_weight=0.0, ssi_weighting="scaled-diff", reduction="none")(
            pred, target, weights=w_all
        )

        def weighted_ssi(d: Tensor, w: Tensor) -> float:
            mean, second = float((w * d).sum() / w.sum()), float((w * d * d).sum() / w.sum())
            return second - mean * mean + 0.85 * mean * mean

        for b in range(pred.shape[0]):
            m = valid[b]
            p, t, w = pred[b][m], target[b][m], w_all[b][m]
            u = (w.sqrt() / w.sqrt().mean()).clamp(0.7, 2.0)
            ug = u * ((1.0 / p).log() - (1.0 / t).log())
            assert float(ssi_only[b]) == pytest.approx(weighted_ssi(p - t, w), abs=1e-9)
            assert float(silog_only[b]) == pytest.approx(
                10.0 * math.sqrt(float((ug * ug).mean() - 0.85 * ug.mean() ** 2) + 1e-8), abs=1e-9
            )
            ds = (p - t) * (w / 1.75).clamp(0.5, 5.0)  # the seed's d · w / w̄, fixed w̄ = 1.75
            assert float(scaled[b]) == pytest.approx(weighted_ssi(ds, torch.ones_like(ds)), abs=1e-9)

    def test_threshold_schedule_moves_and_clamps(self) -> None:
        pred, target, valid = near_case(seed=25)
        depth = 1.0 / target[valid]
        module = build(NAME, threshold_schedule="linear", threshold_start=0.1, threshold_end=5.0)
        for progress, expected in (
            (0.0, 0.3),
            (0.02, 0.3),
            (0.5, 2.55),
            (0.9, 3.0),
            (1.0, 3.0),
        ):  # 0.1 + 4.9 p in [0.3, 3]
            module(pred, target, progress=progress)
            assert float(module.metrics["threshold_t"]) == pytest.approx(expected, abs=1e-6)
            assert float(module.metrics["near_ratio"]) == pytest.approx(
                float((depth < expected).double().mean()), abs=1e-6
            )
        module.progress = 0.5
        module(pred, target)
        assert float(module.metrics["threshold_t"]) == pytest.approx(2.55, abs=1e-6)
        fixed = build(NAME, near_threshold=2.0)
        for progress in (0.0, 1.0):
            fixed(pred, target, progress=progress)
            assert float(fixed.metrics["threshold_t"]) == pytest.approx(2.0, abs=1e-6)

    def test_split_with_only_near_pixels_is_the_unweighted_loss(self) -> None:
        pred, target, valid = near_case(seed=26, low=0.2, high=0.9)  # every valid target closer than 1 m
        split = build(NAME, combine="split", reduction="none")(pred, target)
        torch.testing.assert_close(split, DF.ssi_silog(pred, target, valid, reduction="none"), rtol=1e-6, atol=1e-7)
        assert not torch.allclose(split, build(NAME, reduction="none")(pred, target))

    def test_explicit_weights(self) -> None:
        pred, target, valid = near_case(seed=28)
        module = build(NAME, reduction="none")
        weights = 1.0 + 4.0 * torch.rand(pred.shape, generator=gen(4))
        explicit = module(pred, target, weights=weights)
        assert ((explicit - module(pred, target)).abs() > 1e-5).all()
        for k in (0.01, 7.0):  # weighted-mean: the scale of w cancels
            torch.testing.assert_close(module(pred, target, weights=k * weights), explicit, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(
            module(pred, target, weights=torch.ones_like(pred)),
            DF.ssi_silog(pred, target, valid, reduction="none"),
            rtol=1e-6,
            atol=1e-7,
        )
        torch.testing.assert_close(
            module(pred, target, weights=torch.where(valid, weights, 1e3)), explicit
        )  # ignored off-mask

    def test_non_finite_weights_fall_back_to_the_baseline(self) -> None:
        pred, target, valid = near_case(seed=29, shape=(3, 1, 6, 6))
        assert valid[0, 0, 2, 3] and valid[1, 0, 4, 1]
        good = 1.0 + 4.0 * torch.rand(pred.shape, generator=gen(5))
        bad = good.clone()
        bad[0, 0, 2, 3] = float("inf")
        bad[1, 0, 4, 1] = float("nan")
        module = build(NAME, reduction="none")
        p = pred.clone().requires_grad_(True)
        out = module(p, target, weights=bad)
        baseline = DF.ssi_silog(pred, target, valid, reduction="none")
        weighted = module(pred, target, weights=good)
        torch.testing.assert_close(out[:2].detach(), baseline[:2], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(out[2].detach(), weighted[2], rtol=1e-6, atol=1e-7)
        out.sum().backward()
        assert torch.isfinite(p.grad).all()
        ref = pred.clone().requires_grad_(True)
        (DF.ssi_silog(ref, target, valid, reduction="none")[:2].sum() + module(ref, target, weights=good)[2]).backward()
        torch.testing.assert_close(p.grad, ref.grad, rtol=1e-5, atol=1e-7)

    def test_weight_modes_differ(self) -> None:
        inputs = loss_inputs(NAME, low=0.3, high=4.0, density=0.6, extra=False)
        assert len({float(inputs.call(build(NAME, weight_mode=mode))) for mode in ("step", "linear", "smooth")}) == 3
