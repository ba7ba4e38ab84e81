"""Module for Metric3D v2's randomized hierarchical depth normalization (``hdn-random``)."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Union

import torch
from torch import Tensor

import depthloss.functional as DF
from depthloss.functional.hdn import Bins, Grouping
from depthloss.functional.hdn_random import WholeImage, check_hdn_random_args, check_samples
from depthloss.functional.sampling import check_generator
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["HDNRandomLoss"]


@register_loss("hdn-random")
class HDNRandomLoss(DepthLoss):
    """Metric3D v2's HDN with random windows and depth ranges, on depth (:func:`depthloss.functional.hdn_random`).

    Args:
        grouping: ``"depth"``, ``"spatial"`` or ``"both"`` (default).
        num_windows: random windows per image (default 20).
        num_ranges: random depth ranges per image (default 10).
        bins: ``"range"`` (default, Metric3D) or ``"quantile"``.
        window_size: ``(smallest, largest)`` window side as fractions (default ``(0.125, 0.5)``).
        whole_image: families that also hold the whole image (default ``"spatial"``).
        min_pixels: smallest context that counts (default 1).
        eps: floor of every context's MAD relative to the image's MAD (default 1e-6).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required).

    ``forward(pred, target, mask=None, progress=None, samples=None, generator=None)``:
    ``samples`` are pre-drawn uniforms ``(B, S, 6)`` (S windows and S ranges per image);
    ``generator`` a ``torch.Generator`` on the input's device (eager only: a generator does
    not trace under ``torch.compile(fullgraph=True)``; pass ``samples`` instead). Without
    either, the global RNG draws new contexts every call.
    """

    formula = "mean_F [sum_{c in F} sum_{u in c} |p^c_u - g^c_u| / sum_c |c|], random windows and depth ranges c"
    when = "Metric3D v2-style mixed-dataset training: HDN at a fixed cost with random local contexts."
    loss_space = "depth"
    invariances = ("scale", "shift")
    functional = staticmethod(DF.hdn_random)
    inputs = ("samples",)

    def __init__(
        self,
        grouping: Grouping = "both",
        num_windows: int = 20,
        num_ranges: int = 10,
        bins: Bins = "range",
        window_size: Tuple[float, float] = (0.125, 0.5),
        whole_image: WholeImage = "spatial",
        min_pixels: int = 1,
        eps: float = 1e-6,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.window_size = check_hdn_random_args(
            grouping, num_windows, num_ranges, bins, window_size, whole_image, min_pixels, eps
        )
        self.grouping, self.bins, self.whole_image = grouping, bins, whole_image
        self.num_windows, self.num_ranges = int(num_windows), int(num_ranges)
        self.min_pixels, self.eps = int(min_pixels), float(eps)

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        mask: Optional[Tensor] = None,
        progress: Union[float, Tensor, None] = None,
        samples: Optional[Tensor] = None,
        generator: Optional[torch.Generator] = None,
    ) -> Tensor:
        """As :meth:`DepthLoss.forward`, plus optional pre-drawn ``samples`` and a ``generator``."""
        if generator is None:  # not an input of the graph at all
            return self._run(pred, target, mask, progress, samples=samples)
        return self._run(pred, target, mask, progress, samples=samples, generator=generator)

    def validate(
        self, pred: Tensor, target: Tensor, mask: Optional[Tensor] = None, progress: Any = None, **inputs: Any
    ) -> None:
        generator = inputs.pop("generator", None)
        super().validate(pred, target, mask, progress, **inputs)
        check_samples(inputs.get("samples"), pred)
        check_generator(generator, pred)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "depth")
        loss = DF.hdn_random(
            p, t, mask, self.grouping, self.num_windows, self.num_ranges, self.bins, self.window_size,
            self.whole_image, self.min_pixels, self.eps, inputs.get("samples"), inputs.get("generator"),
            reduction=self.reduction, scope=self.scope,
        )  # fmt: skip
        return loss, {}
