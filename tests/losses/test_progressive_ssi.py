"""``progressive-ssi``: SSI + L1 with scheduled start -> end weights (:func:`depthloss.functional.progressive_ssi`)."""

from __future__ import annotations

from typing import Any, Dict, Tuple

import pytest
import torch

import depthloss.functional as DF
import reference as R
from helpers import MASKS, build, loss_inputs
from loss_testing import (
    PROGRESSES,
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

NAME = "progressive-ssi"
METRICS = {"dynamic_ssi_weight", "dynamic_l1_weight", "ssi_component", "l1_component", "loss"}

MIX_CASES = [
    ({}, 0.0, (0.9, 0.1)),
    ({}, 1.0, (0.7, 0.3)),
    ({}, 0.5, (0.8, 0.2)),
    ({"ssi_weight_start": 3.0, "l1_weight_start": 1.0}, 0.0, (0.75, 0.25)),
    ({"weight_schedule": "step"}, 0.4, (0.9, 0.1)),
    ({"weight_schedule": "step"}, 0.6, (0.7, 0.3)),
    ({"weight_schedule": "constant"}, 1.0, (0.9, 0.1)),
    ({"weight_schedule": "cosine"}, 0.5, (0.8, 0.2)),
]


class TestProgressiveSSI:
    def test_smoke(self) -> None:
        check_smoke(NAME)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME,
            [({"weight_schedule": "exp"}, ValueError, "weight_schedule"),
             ({"ssi_weight_start": 0.0, "l1_weight_start": 0.0}, ValueError, "ssi_weight_start"),
             ({"l1_weight_end": -0.1}, ValueError, "l1_weight_end"), ({"alpha": "x"}, TypeError, "alpha")],
            functional=DF.progressive_ssi,
        )  # fmt: skip

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        variants = [{"progress": p} for p in PROGRESSES] + [
            {"progress": 0.3, "weight_schedule": kind, "ssi_weight_start": 2.0, "l1_weight_end": 1.0, "alpha": 0.2}
            for kind in ("cosine", "constant")
        ]
        check_values(DF.progressive_ssi, R.progressive_ssi, variants, mask_kind, dtype)

    def test_step_schedule_float64_oracle(self) -> None:
        variants = [
            {"progress": p, "weight_schedule": "step", "ssi_weight_start": 2.0, "l1_weight_end": 1.0}
            for p in (0.3, 0.7)
        ]
        check_values(DF.progressive_ssi, R.progressive_ssi, variants, "random", torch.float64)

    def test_step_schedule_float32_oracle(self) -> None:
        variants = [
            {"progress": p, "weight_schedule": "step", "ssi_weight_start": 2.0, "l1_weight_end": 1.0}
            for p in (0.3, 0.7)
        ]
        check_values(DF.progressive_ssi, R.progressive_ssi, variants, "random", torch.float32)

    def test_gradient_oracle(self) -> None:
        check_gradient(DF.progressive_ssi, R.progressive_ssi, {"progress": 0.4, "weight_schedule": "cosine"})
        check_gradient(DF.progressive_ssi, R.progressive_ssi, {"progress": 0.9}, mask_kind="single", wrt="target")

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME)

    def test_module_equals_functional(self) -> None:
        kwargs = {"ssi_weight_start": 0.5, "l1_weight_end": 0.8, "weight_schedule": "cosine"}
        check_module_equals_functional(
            NAME,
            kwargs,
            lambda p, t, m, s, pr: DF.progressive_ssi(
                inverse_of(p, s), inverse_of(t, s), m, pr, **kwargs, reduction="none"
            ),
        )

    def test_metrics(self) -> None:
        check_metrics(NAME, METRICS)

    @pytest.mark.parametrize("kwargs,progress,expected", MIX_CASES)
    def test_dynamic_weights(self, kwargs: Dict[str, Any], progress: float, expected: Tuple[float, float]) -> None:
        inputs = loss_inputs(NAME, progress=None)
        module = build(NAME, **kwargs)
        loss = module(inputs.pred, inputs.target, progress=progress)
        w_ssi, w_l1 = expected
        assert float(module.metrics["dynamic_ssi_weight"]) == pytest.approx(w_ssi, abs=1e-6)
        assert float(module.metrics["dynamic_l1_weight"]) == pytest.approx(w_l1, abs=1e-6)
        ssi, l1 = DF.ssi(inputs.pred, inputs.target, inputs.valid), DF.l1(inputs.pred, inputs.target, inputs.valid)
        torch.testing.assert_close(loss, w_ssi * ssi + w_l1 * l1, rtol=1e-5, atol=1e-7)

    def test_equals_enhanced_ssi_terms(self) -> None:
        """The terms are enhanced-ssi's; with equal start and end weights only the weights differ."""
        inputs = loss_inputs(NAME, dtype=torch.float64)
        a = DF.progressive_ssi(
            inputs.pred,
            inputs.target,
            inputs.valid,
            0.7,
            ssi_weight_start=0.8,
            ssi_weight_end=0.8,
            l1_weight_start=0.2,
            l1_weight_end=0.2,
        )
        b = DF.enhanced_ssi(inputs.pred, inputs.target, inputs.valid, 0.7, adaptive_weighting=False)
        torch.testing.assert_close(a, b)
