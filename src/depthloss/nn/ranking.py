"""Module for the pairwise ordinal ranking loss (DIW; structure-guided ranking)."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Union

import torch
from torch import Tensor

import depthloss.functional as DF
from depthloss._checks import check_int, check_pair
from depthloss.functional._plumbing import safe_div
from depthloss.functional.ranking import (
    Direction,
    PairDenominator,
    check_image,
    check_loss_args,
    check_pairs,
    check_sampling_args,
    ranking_terms,
    reduce_ranking,
)
from depthloss.functional.sampling import check_generator
from depthloss.nn.base import DepthLoss
from depthloss.registry import register_loss

__all__ = ["RankingLoss"]


@register_loss("ranking")
class RankingLoss(DepthLoss):
    """Pairwise ordinal ranking of depth on edge-guided and random pairs (:func:`depthloss.functional.ranking`).

    DIW's ranking loss (logistic for ordered pairs, squared difference for equal ones) with
    the structure-guided ranking loss's labels (relative tolerance ``tolerance``) and
    edge-guided sampling (pairs across the edges of ``image``, or of the target without one),
    ``num_pairs`` pairs per image. Computed on depth: ``pred`` and ``target`` are moved from
    ``input_space`` to depth, where a larger value is farther (inverse depths would give the
    same equal pairs with negated labels).

    Args:
        num_pairs, edge_fraction, tolerance, alpha, min_distance, max_distance, edge_threshold,
        image_channel, direction, pair_denominator: as in :func:`~depthloss.functional.ranking`.
        seed: ``None`` (default): new pairs every call from the global RNG (or the ``generator``
            given to ``forward``); an ``int``: the same counter-based pairs every call
            (deterministic, on any device, traceable by ``torch.compile``).
        **kwargs: :class:`DepthLoss` arguments (``input_space``, required).

    ``forward(pred, target, mask=None, progress=None, image=None, pairs=None, generator=None)``:
    ``image`` ``(B, C, H, W)`` guides the edge pairs (default: the target's log-depth edges);
    ``pairs`` (int64 ``(B, P, 2)``, e.g. :func:`~depthloss.functional.ranking_pairs`) replaces
    the sampling; ``generator`` (a ``torch.Generator``, eager only) makes it reproducible.

    Metrics: ``pair_accuracy`` (valid ordered pairs whose prediction order agrees with the
    label: unchanged by any strictly increasing map of ``pred``), ``equal_fraction``,
    ``valid_pairs`` (per image), ``loss``.
    """

    formula = "mean over valid pairs of log(1 + exp(-r (z_i - z_j))) (r = +-1), alpha (z_i - z_j)^2 (r = 0)"
    when = "Relative depth from ordinal or mixed-source labels; sharp depth edges (edge-guided pairs)."
    loss_space = "depth"
    # pred -> pred + c (in depth) leaves the loss unchanged on the same pairs: only differences count
    invariances = ("shift",)
    functional = staticmethod(DF.ranking)
    inputs = ("image",)

    def __init__(
        self,
        num_pairs: int = 4000,
        edge_fraction: float = 0.75,
        tolerance: float = 0.03,
        alpha: float = 1.0,
        min_distance: int = 2,
        max_distance: int = 30,
        edge_threshold: float = 0.1,
        image_channel: Optional[int] = None,
        direction: Direction = "gradient",
        pair_denominator: PairDenominator = "valid",
        seed: Optional[int] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_sampling_args(
            num_pairs, edge_fraction, min_distance, max_distance, edge_threshold, image_channel, direction
        )
        check_loss_args(tolerance, alpha, pair_denominator)
        if seed is not None:
            check_int("seed", seed, low=0)
        self.num_pairs, self.edge_fraction = int(num_pairs), float(edge_fraction)
        self.tolerance, self.alpha = float(tolerance), float(alpha)
        self.min_distance, self.max_distance = int(min_distance), int(max_distance)
        self.edge_threshold, self.image_channel, self.direction = float(edge_threshold), image_channel, direction
        self.pair_denominator, self.seed = pair_denominator, seed

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        mask: Optional[Tensor] = None,
        progress: Union[float, Tensor, None] = None,
        image: Optional[Tensor] = None,
        pairs: Optional[Tensor] = None,
        generator: Optional[torch.Generator] = None,
    ) -> Tensor:
        """As :meth:`DepthLoss.forward`, plus the optional guiding ``image``, ``pairs`` and ``generator``."""
        return self._run(pred, target, mask, progress, image=image, pairs=pairs, generator=generator)

    def validate(
        self, pred: Tensor, target: Tensor, mask: Optional[Tensor] = None, progress: Any = None, **inputs: Any
    ) -> None:
        pairs, generator = inputs.pop("pairs", None), inputs.pop("generator", None)
        super().validate(pred, target, mask, progress, **inputs)
        check_pair(pred, target)
        check_image(inputs.get("image"), target)
        image = inputs.get("image")
        if (
            image is not None
            and image.dim() == 4
            and self.image_channel is not None
            and self.image_channel >= image.shape[1]
        ):
            raise ValueError(f"image_channel={self.image_channel} but image has {image.shape[1]} channels")
        if pairs is not None:
            check_pairs(pairs, pred)
        check_generator(generator, pred)

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        p, t = self.pair_in(pred, target, "depth")
        pairs = inputs.get("pairs")
        if pairs is None:
            pairs = DF.ranking_pairs(
                t, mask, inputs.get("image"), self.num_pairs, self.edge_fraction, self.min_distance,
                self.max_distance, self.edge_threshold, self.image_channel, self.direction,
                generator=inputs.get("generator"), seed=self.seed,
            )  # fmt: skip
        terms = ranking_terms(p, t, mask, pairs, self.tolerance, self.alpha, self.scope)
        loss = reduce_ranking(terms, self.pair_denominator, self.reduction)
        ordered = terms.n_ordered.sum().to(p.dtype)
        metrics = {
            "pair_accuracy": safe_div(terms.n_correct.sum().to(p.dtype), ordered),
            "equal_fraction": safe_div(terms.n_valid.sum() - ordered, terms.n_valid.sum()),
            "valid_pairs": terms.n_valid.sum() / max(pred.shape[0], 1),
        }
        return loss, metrics

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, num_pairs={self.num_pairs}, edge_fraction={self.edge_fraction}, "
            f"tolerance={self.tolerance}, alpha={self.alpha}, distance=({self.min_distance}, {self.max_distance}), "
            f"direction={self.direction!r}, pair_denominator={self.pair_denominator!r}, seed={self.seed}"
        )
