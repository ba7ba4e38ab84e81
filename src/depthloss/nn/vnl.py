"""Module for the virtual normal loss (Yin et al., ICCV 2019)."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Union

import torch
from torch import Tensor

import depthloss.functional as DF
from depthloss._checks import check_float, check_int
from depthloss.functional.geometry import Intrinsics, check_intrinsics
from depthloss.functional.sampling import check_generator
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["VNLLoss"]


@register_loss("vnl")
class VNLLoss(DepthLoss):
    """Virtual normal loss: L1 between normals of random point triplets (:func:`depthloss.functional.vnl`).

    Args:
        num_samples: triplets per image (default ``None``: ``int(sample_ratio * H * W)``).
        sample_ratio: triplets per pixel (default 0.15, the authors').
        delta_cos, delta_diff, delta_z: the authors' rejection thresholds (0.867, 0.005 m, 1e-4 m).
        trim: fraction of the smallest triplet errors dropped (default 0; the authors' code: 0.25
            with ``scope="batch"``).
        seed: ``None`` (default): fresh triplets every call (global RNG, or the ``generator``
            passed to ``forward``); an int: the same generator-free triplets every call (tests,
            reproducible evaluation; not for training).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required).

    ``forward(pred, target, mask=None, progress=None, K=..., generator=None)``: ``K`` (intrinsics
    in pixels, ``(B, 3, 3)``/``(B, 4)`` tensor or ``(fx, fy, cx, cy)``) is required;
    ``generator`` makes the draw deterministic (eager only: ``torch.compile`` cannot trace it).
    """

    formula = "mean_t |n_p(t) - n_g(t)|_1, n(t) = normalize(AB x AC) for sampled triplets t = (A, B, C)"
    when = "Metric depth with known intrinsics: global 3D shape (planes, layout) beyond per-pixel depth."
    loss_space = "depth"
    invariances = ("scale",)
    functional = staticmethod(DF.vnl)
    inputs = ("K",)

    def __init__(
        self,
        num_samples: Optional[int] = None,
        sample_ratio: float = 0.15,
        delta_cos: float = 0.867,
        delta_diff: float = 0.005,
        delta_z: float = 1e-4,
        trim: float = 0.0,
        seed: Optional[int] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_samples = None if num_samples is None else check_int("num_samples", num_samples, low=0)
        self.sample_ratio = check_float("sample_ratio", sample_ratio, low=0.0, high=1e3)
        self.delta_cos = check_float("delta_cos", delta_cos, low=0.0, high=1.0)
        self.delta_diff = check_float("delta_diff", delta_diff, low=0.0)
        self.delta_z = check_float("delta_z", delta_z, low=0.0)
        self.trim = check_float("trim", trim, low=0.0, high=1.0, high_inclusive=False)
        self.seed = None if seed is None else check_int("seed", seed, low=0)

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        mask: Optional[Tensor] = None,
        progress: Union[float, Tensor, None] = None,
        K: Optional[Intrinsics] = None,
        generator: Optional[torch.Generator] = None,
    ) -> Tensor:
        """As :meth:`DepthLoss.forward`, plus the intrinsics ``K`` (required) and an optional ``generator``."""
        if generator is None:
            return self._run(pred, target, mask, progress, K=K)
        return self._run(pred, target, mask, progress, K=K, generator=generator)

    def validate(
        self, pred: Tensor, target: Tensor, mask: Optional[Tensor] = None, progress: Any = None, **inputs: Any
    ) -> None:
        generator = inputs.pop("generator", None)
        super().validate(pred, target, mask, progress, **inputs)
        check_intrinsics(inputs.get("K"), pred)
        check_generator(generator, pred)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "depth")
        loss = DF.vnl(
            p, t, mask, inputs["K"], self.num_samples, self.sample_ratio, self.delta_cos, self.delta_diff,
            self.delta_z, self.trim, generator=inputs.get("generator"), seed=self.seed,
            reduction=self.reduction, scope=self.scope,
        )  # fmt: skip
        return loss, {}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_samples={self.num_samples}, trim={self.trim}, seed={self.seed}"
