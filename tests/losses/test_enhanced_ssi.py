"""``enhanced-ssi``: SSI + L1 on inverse depth, weights moving with progress (:func:`depthloss.functional.enhanced_ssi`)."""

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

NAME = "enhanced-ssi"
METRICS = {"dynamic_ssi_weight", "dynamic_l1_weight", "ssi_component", "l1_component", "loss"}

#: (kwargs, progress, (w_ssi, w_l1)) by hand from the documented formula
MIX_CASES = [
    ({}, 0.0, (0.9 / 1.1, 0.2 / 1.1)),  # 0.8 + 0.1, 0.2 + 0
    ({}, 1.0, (0.8 / 1.1, 0.3 / 1.1)),  # 0.8 + 0, 0.2 + 0.1
    ({}, 0.5, (0.85 / 1.1, 0.25 / 1.1)),
    ({}, 1.5, (0.8 / 1.1, 0.3 / 1.1)),  # progress clamped to [0, 1]
    ({"ssi_weight": 0.5, "l1_weight": 0.5}, 0.0, (0.6 / 1.1, 0.5 / 1.1)),
    ({"adaptive_weighting": False}, 0.0, (0.8, 0.2)),
    ({"adaptive_weighting": False}, 1.0, (0.8, 0.2)),
]


class TestEnhancedSSI:
    def test_smoke(self) -> None:
        check_smoke(NAME)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME,
            [({"adaptive_weighting": 1}, TypeError, "adaptive_weighting"), ({"l1_weight": -0.2}, ValueError, "l1_weight"),
             ({"ssi_weight": "big"}, TypeError, "ssi_weight"), ({"alpha": -1.0}, ValueError, "alpha")],
            functional=DF.enhanced_ssi,
        )  # fmt: skip
        for bad, exc in (("half", TypeError), (True, TypeError), ([0.5], TypeError), (float("inf"), ValueError)):
            with pytest.raises(exc, match="progress"):
                DF.enhanced_ssi(torch.ones(1, 2, 2), torch.ones(1, 2, 2), progress=bad)

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        variants = [{"progress": p} for p in PROGRESSES] + [
            {"progress": torch.tensor(0.6, dtype=dtype), "alpha": 0.3, "ssi_weight": 0.5, "l1_weight": 0.7},
            {"progress": 0.2, "adaptive_weighting": False},
        ]
        check_values(DF.enhanced_ssi, R.enhanced_ssi, variants, mask_kind, dtype)

    def test_gradient_oracle(self) -> None:
        check_gradient(DF.enhanced_ssi, R.enhanced_ssi, {"progress": 0.4})
        check_gradient(
            DF.enhanced_ssi, R.enhanced_ssi, {"progress": 1.0, "scope": "batch"}, mask_kind="one_empty", wrt="target"
        )

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME)

    def test_module_equals_functional(self) -> None:
        kwargs = {"alpha": 0.4, "ssi_weight": 0.6, "l1_weight": 0.3}
        check_module_equals_functional(
            NAME,
            kwargs,
            lambda p, t, m, s, pr: DF.enhanced_ssi(
                inverse_of(p, s), inverse_of(t, s), m, pr, **kwargs, reduction="none"
            ),
        )

    def test_metrics(self) -> None:
        check_metrics(NAME, METRICS)

    @pytest.mark.parametrize("kwargs,progress,expected", MIX_CASES)
    def test_dynamic_weights(self, kwargs: Dict[str, Any], progress: float, expected: Tuple[float, float]) -> None:
        inputs = loss_inputs(NAME, progress=None)
        module = build(NAME, **kwargs)
        w_ssi, w_l1 = expected
        loss = module(inputs.pred, inputs.target, progress=progress)
        assert float(module.metrics["dynamic_ssi_weight"]) == pytest.approx(w_ssi, abs=1e-6)
        assert float(module.metrics["dynamic_l1_weight"]) == pytest.approx(w_l1, abs=1e-6)
        ssi, l1 = DF.ssi(inputs.pred, inputs.target, inputs.valid), DF.l1(inputs.pred, inputs.target, inputs.valid)
        torch.testing.assert_close(loss, w_ssi * ssi + w_l1 * l1, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(module.metrics["ssi_component"], ssi)
        torch.testing.assert_close(module.metrics["l1_component"], l1)
        # the same weights with progress as a tensor and through the attribute
        module(inputs.pred, inputs.target, progress=torch.tensor(progress))
        assert float(module.metrics["dynamic_ssi_weight"]) == pytest.approx(w_ssi, abs=1e-6)
        module.progress = progress
        module(inputs.pred, inputs.target)
        assert float(module.metrics["dynamic_l1_weight"]) == pytest.approx(w_l1, abs=1e-6)

    def test_regression_not_plain_ssi(self) -> None:
        """The seed's suffix matching resolved 'enhanced-ssi' to plain SSI."""
        inputs = loss_inputs(NAME)
        assert type(build(NAME)).__name__ == "EnhancedSSILoss"
        assert not torch.allclose(inputs.call(build(NAME)), inputs.call(build("ssi"), progress=0.3))

    def test_hand_computed(self) -> None:
        target = torch.tensor([[[0.5, 0.25], [1.0, 0.1]]], dtype=torch.float64)
        expected = (0.8 * 0.85 * 0.01 + 0.3 * 0.1) / 1.1
        assert float(DF.enhanced_ssi(target + 0.1, target, progress=1.0)) == pytest.approx(expected, rel=1e-9)
