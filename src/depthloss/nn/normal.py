"""Module for the surface-normal loss (normals from depth with camera intrinsics)."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Union

from torch import Tensor

import depthloss.functional as DF
from depthloss._checks import check_choice, check_float
from depthloss.functional.geometry import STENCILS, Intrinsics, Stencil, check_intrinsics
from depthloss.functional.normal import NormalKind, check_target_normals
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["NormalLoss"]


@register_loss("normal")
class NormalLoss(DepthLoss):
    """Angular error between the surface normals of predicted and target depth (:func:`depthloss.functional.normal`).

    Args:
        kind: ``"cosine"`` (``1 - cos``, default) or ``"angle"`` (radians, clamped ``acos``).
        stencil: ``"central"`` (default) or ``"forward"`` differences of the 3D points.
        eps: margin of the ``acos`` clamp (default ``1e-6``).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required).

    ``forward(pred, target, mask=None, progress=None, K=..., target_normals=None)``: ``K`` (the
    camera intrinsics in pixels of the input resolution, ``(B, 3, 3)`` or ``(B, 4)`` ``(fx, fy,
    cx, cy)`` tensor, or a tuple) is required; ``target_normals`` ``(B, 3, H, W)`` optionally
    replaces the normals derived from the target depth.
    """

    formula = "mean_i (1 - n_p . n_g), n = normalize(d_v P x d_u P), P = z K^-1 [u, v, 1]"
    when = "Metric depth with known intrinsics where surface orientation matters (planes, walls, 3D reconstruction)."
    loss_space = "depth"
    invariances = ("scale",)
    functional = staticmethod(DF.normal)
    inputs = ("K",)

    def __init__(
        self, kind: NormalKind = "cosine", stencil: Stencil = "central", eps: float = 1e-6, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        check_choice("kind", kind, ("cosine", "angle"))
        check_choice("stencil", stencil, STENCILS)
        self.kind: NormalKind = kind
        self.stencil: Stencil = stencil
        self.eps = check_float("eps", eps, low=0.0, high=0.5, low_inclusive=False)

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        mask: Optional[Tensor] = None,
        progress: Union[float, Tensor, None] = None,
        K: Optional[Intrinsics] = None,
        target_normals: Optional[Tensor] = None,
    ) -> Tensor:
        """As :meth:`DepthLoss.forward`, plus the intrinsics ``K`` (required) and optional ``target_normals``."""
        return self._run(pred, target, mask, progress, K=K, target_normals=target_normals)

    def validate(
        self, pred: Tensor, target: Tensor, mask: Optional[Tensor] = None, progress: Any = None, **inputs: Any
    ) -> None:
        target_normals = inputs.pop("target_normals", None)
        super().validate(pred, target, mask, progress, **inputs)
        check_intrinsics(inputs.get("K"), pred)
        check_target_normals(target_normals, pred)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "depth")
        loss = DF.normal(
            p, t, mask, inputs["K"], self.kind, self.stencil, self.eps,
            target_normals=inputs.get("target_normals"), reduction=self.reduction, scope=self.scope,
        )  # fmt: skip
        return loss, {}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kind={self.kind!r}, stencil={self.stencil!r}"
