"""Module for UniDepth V2's edge-guided local scale-and-shift-invariant loss."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Union

import torch
from torch import Tensor

import depthloss.functional as DF
from depthloss.functional.local_ssi import Align, Output, Penalty, Sampling, _check_image, check_local_ssi_args
from depthloss.functional.sampling import check_generator
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["LocalSSILoss"]


@register_loss("local-ssi", aliases=("edge-guided-ssi",))
class LocalSSILoss(DepthLoss):
    """Edge-guided local SSI: least-squares scale/shift per window around depth edges, UniDepth V2 (:func:`depthloss.functional.local_ssi`).

    Computed on inverse depth. Args as :func:`depthloss.functional.local_ssi`
    (``num_windows``, ``window_size``, ``sampling``, ``edge_quantile``, ``align``, ``penalty``,
    ``output``, ``min_samples``, ``use_global``), plus :class:`DepthLoss` arguments
    (``input_space``, required).

    ``forward(pred, target, mask=None, progress=None, image=None, generator=None)``: ``image``
    ``(B, C, H, W)`` guides the windows by its edges (else the target's); ``generator`` seeds
    ``sampling="random"``.
    """

    formula = "mean_W f(mean_W |s_W rho_p + t_W - rho_g|) (+ the same over the image) / 2, windows on edges"
    when = "Relative depth with sharp boundaries: local alignment penalizes blurred edges a global fit hides."
    loss_space = "inverse"
    invariances = ("scale", "shift")
    inputs = ("image",)
    functional = staticmethod(DF.local_ssi)

    def __init__(
        self,
        num_windows: int = 128,
        window_size: Optional[int] = None,
        sampling: Sampling = "edges",
        edge_quantile: float = 0.9,
        align: Align = "lsq",
        penalty: Penalty = "l1",
        output: Output = "sqrt",
        min_samples: int = 6,
        use_global: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_local_ssi_args(num_windows, window_size, sampling, edge_quantile, align, penalty, output, min_samples)
        self.num_windows = int(num_windows)
        self.window_size = None if window_size is None else int(window_size)
        self.sampling: Sampling = sampling
        self.edge_quantile = float(edge_quantile)
        self.align: Align = align
        self.penalty: Penalty = penalty
        self.output: Output = output
        self.min_samples = int(min_samples)
        self.use_global = bool(use_global)

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        mask: Optional[Tensor] = None,
        progress: Union[float, Tensor, None] = None,
        image: Optional[Tensor] = None,
        generator: Optional[torch.Generator] = None,
    ) -> Tensor:
        """As :meth:`DepthLoss.forward`, plus an optional guiding ``image`` and ``generator``."""
        if generator is None:
            return self._run(pred, target, mask, progress, image=image)
        return self._run(pred, target, mask, progress, image=image, generator=generator)

    def validate(
        self, pred: Tensor, target: Tensor, mask: Optional[Tensor] = None, progress: Any = None, **inputs: Any
    ) -> None:
        generator = inputs.pop("generator", None)
        super().validate(pred, target, mask, progress, **inputs)
        _check_image(inputs.get("image"), pred)
        check_generator(generator, pred)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "inverse")
        loss = DF.local_ssi(
            p, t, mask, inputs.get("image"), self.num_windows, self.window_size, self.sampling,
            self.edge_quantile, self.align, self.penalty, self.output, self.min_samples, self.use_global,
            inputs.get("generator"), reduction=self.reduction, scope=self.scope,
        )  # fmt: skip
        return loss, {}
