"""``l1``: masked mean absolute error on the maps as given (:func:`depthloss.functional.l1`)."""

from __future__ import annotations

import pytest
import torch

import depthloss.functional as DF
import reference as R
from helpers import MASKS, assert_equal, build
from loss_testing import (
    WEIGHTS,
    check_bad_hyperparameters,
    check_bad_inputs,
    check_gradcheck,
    check_gradient,
    check_metrics,
    check_module_equals_functional,
    check_smoke,
    check_values,
)

NAME = "l1"


class TestL1:
    def test_smoke(self) -> None:
        check_smoke(NAME)

    def test_exceptions(self) -> None:
        check_bad_inputs(NAME)
        check_bad_hyperparameters(
            NAME, [({"reduction": "avg"}, ValueError, "reduction"), ({"min_depth": -1.0}, ValueError, "min_depth")]
        )
        with pytest.raises(ValueError, match="scope: l1 accepts 'image', 'batch'; got 'global'"):
            DF.l1(torch.ones(1, 2, 2), torch.ones(1, 2, 2), scope="global")

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
    @pytest.mark.parametrize("mask_kind", sorted(MASKS))
    def test_oracle(self, mask_kind: str, dtype: torch.dtype) -> None:
        check_values(DF.l1, R.l1, [{}, {"weights": WEIGHTS}], mask_kind, dtype)

    @pytest.mark.parametrize("weighted", [False, True])
    def test_gradient_oracle(self, weighted: bool) -> None:
        kwargs = {"weights": WEIGHTS} if weighted else {}
        check_gradient(DF.l1, R.l1, dict(kwargs, reduction="sum"))
        check_gradient(DF.l1, R.l1, kwargs, mask_kind="one_empty", wrt="target")

    def test_gradcheck(self) -> None:
        check_gradcheck(NAME)

    def test_module_equals_functional(self) -> None:
        # computed on the maps as given, whatever they hold
        check_module_equals_functional(NAME, {}, lambda p, t, m, s, pr: DF.l1(p, t, m, reduction="none"))

    def test_metrics(self) -> None:
        check_metrics(NAME, {"loss"})

    def test_hand_computed(self) -> None:
        """Image losses 1 (1 px), 0 (empty), 3 (2 px): mean over non-empty images = 2."""
        nan, inf = float("nan"), float("inf")
        pred = torch.tensor([[[1.0, 9.0]], [[5.0, 5.0]], [[2.0, 6.0]]])
        target = torch.tensor([[[0.0, nan]], [[nan, inf]], [[-1.0, 3.0]]])
        mask = torch.tensor([[[True, False]], [[False, False]], [[True, True]]])
        assert_equal(DF.l1(pred, target, mask, reduction="none"), torch.tensor([1.0, 0.0, 3.0]))
        assert_equal(DF.l1(pred, target, mask, reduction="sum"), torch.tensor(4.0))
        assert_equal(DF.l1(pred, target, mask), torch.tensor(2.0))
        torch.testing.assert_close(DF.l1(pred, target, mask, reduction="pixel-mean"), torch.tensor(7.0 / 3.0))
        torch.testing.assert_close(DF.l1(pred, target, mask, scope="batch"), torch.tensor(7.0 / 3.0))
        # the module: 0 = no return
        assert_equal(
            build(NAME, "depth")(torch.tensor([[[1.0, 2.0]]]), torch.tensor([[[2.0, 0.0]]])), torch.tensor(1.0)
        )

    def test_same_value_in_both_spaces(self) -> None:
        """l1 does not convert: the same tensors give the same value whatever input_space says."""
        p, t = torch.rand(2, 1, 6, 6) + 0.5, torch.rand(2, 1, 6, 6) + 0.5
        assert_equal(build(NAME, "depth")(p, t), build(NAME, "inverse")(p, t))
