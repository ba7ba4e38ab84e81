"""The one small base class every depthloss module subclasses."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Callable, ClassVar, Dict, Literal, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from depthloss.functional._checks import check_choice, check_mask, check_pair, check_progress
from depthloss.functional._common import SCOPES, check_reduction, compute_dtype
from depthloss.functional._fused import positive_finite
from depthloss.functional.conversions import inverse_bounds, check_depth_range, clamp_valid, to_depth, to_inverse

__all__ = ["DepthLoss", "InputSpace", "LazyMetrics", "valid_mask"]

InputSpace = Literal["inverse", "depth"]
INPUT_SPACES = ("inverse", "depth")
LossSpace = Literal["input", "inverse", "depth"]


def valid_mask(target: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """``mask & isfinite(target) & (target > 0)``: sparse ground truth stores 0 for "no return"."""
    valid = positive_finite(target)
    if mask is not None:
        valid &= mask
    return valid


MetricsFn = Callable[[], Dict[str, Tensor]]


class LazyMetrics(Mapping):
    """A read-only mapping of detached metric tensors computed on first access.

    Diagnostics that cost full-resolution passes (near-field's near/far errors) are not
    needed on most training steps; a loss returns them as a function and they are computed
    only if read. The function holds detached references to the call's inputs, so reading
    after the next optimizer step still gives this call's values (unless those tensors are
    modified in place). Under ``torch.compile`` metrics are computed eagerly.
    """

    def __init__(self, compute: MetricsFn, eager: Optional[Dict[str, Tensor]] = None) -> None:
        self._compute: Optional[MetricsFn] = compute
        self._values: Dict[str, Tensor] = dict(eager or {})

    def _resolve(self) -> Dict[str, Tensor]:
        if self._compute is not None:
            with torch.no_grad():
                computed = self._compute()
            self._values = {**{k: v.detach() for k, v in computed.items()}, **self._values}
            self._compute = None
        return self._values

    def __getitem__(self, key: str) -> Tensor:
        return self._resolve()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._resolve())

    def __len__(self) -> int:
        return len(self._resolve())

    def __repr__(self) -> str:
        return f"LazyMetrics({self._resolve()!r})"


class DepthLoss(nn.Module):
    """Base of every depthloss module.

    ``forward(pred, target, mask=None, progress=None)`` builds the validity mask
    ``mask & isfinite(target) & (target > 0)``, resolves ``progress`` (``None`` uses the
    module's :attr:`progress`), moves both maps from ``input_space`` to the loss's own space
    (``loss_space``; valid depths are clamped to ``[min_depth, max_depth]`` when given, and
    inverse depths to ``[1 / max_depth, 1 / min_depth]``, whichever space they arrive in), disables
    autocast, calls the functional kernel and stores detached metrics in :attr:`metrics`.

    Args:
        input_space: what ``pred`` and ``target`` hold: ``"inverse"`` depth (default, the
            seeds' convention) or metric ``"depth"``.
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"``.
        scope: ``"image"`` (per-image statistics, default) or ``"batch"``; losses whose
            statistics are sums and counts (:attr:`scopes`) also take ``"global"``: batch
            statistics all-reduced over the default process group (``"batch"`` without one).
        min_depth: optional lower clamp of valid depths (``>= 0``; 0 means none).
        max_depth: optional upper clamp of valid depths. Losses computed on the maps as given
            (``loss_space="input"``: l1, mse, berhu) are not clamped.
    """

    loss_space: ClassVar[LossSpace] = "input"
    uses_progress: ClassVar[bool] = False
    #: the ``scope`` values the loss accepts
    scopes: ClassVar[Tuple[str, ...]] = SCOPES

    metrics: Mapping[str, Tensor]
    _progress: Tensor

    def __init__(
        self,
        *,
        input_space: InputSpace = "inverse",
        reduction: str = "mean",
        scope: str = "image",
        min_depth: Optional[float] = None,
        max_depth: Optional[float] = None,
    ) -> None:
        super().__init__()
        check_choice("input_space", input_space, INPUT_SPACES)
        check_reduction(reduction, scope, self.scopes)
        check_depth_range(min_depth, max_depth)
        self.input_space = input_space
        self.reduction = reduction
        self.scope = scope
        self.min_depth = None if min_depth is None else float(min_depth)
        self.max_depth = None if max_depth is None else float(max_depth)
        self.register_buffer("_progress", torch.zeros(()), persistent=False)
        self.metrics = {}

    # -- progress -----------------------------------------------------------------------
    @property
    def progress(self) -> Tensor:
        """Training progress in [0, 1] used when ``forward`` gets ``progress=None``.

        A 0-dim buffer: assigning a float updates it in place, so a compiled module does
        not recompile when it changes (set it once per epoch from any framework).
        """
        return self._progress

    @progress.setter
    def progress(self, value: Union[float, Tensor]) -> None:
        value = check_progress(value)
        with torch.no_grad():
            if isinstance(value, Tensor):
                self._progress.copy_(value)
            else:
                self._progress.fill_(value)

    def _resolve_progress(self, progress: Union[None, float, Tensor], ref: Tensor) -> Union[float, Tensor]:
        if progress is None:
            return self._progress.to(device=ref.device)
        progress = check_progress(progress)
        return progress.to(device=ref.device) if isinstance(progress, Tensor) else progress

    # -- spaces -------------------------------------------------------------------------
    def to_space(self, x: Tensor, space: LossSpace) -> Tensor:
        """Move ``x`` from ``input_space`` to ``space`` (computing in at least float32)."""
        x = x.to(compute_dtype(x))
        if space == "input":
            return x
        if space == "depth":
            if self.input_space == "depth":
                return clamp_valid(x, self.min_depth, self.max_depth)
            return to_depth(x, self.min_depth, self.max_depth)
        if self.input_space == "inverse":  # the same clamp, as an inverse-depth range
            return clamp_valid(x, *inverse_bounds(self.min_depth, self.max_depth))
        return to_inverse(x, self.min_depth, self.max_depth)

    def pair_in(self, pred: Tensor, target: Tensor, space: LossSpace) -> Tuple[Tensor, Tensor]:
        return self.to_space(pred, space), self.to_space(target, space)

    # -- forward ------------------------------------------------------------------------
    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        mask: Optional[Tensor] = None,
        progress: Union[None, float, Tensor] = None,
    ) -> Tensor:
        """Compute the loss; see the class docstring for the conventions.

        Args:
            pred: ``(B, 1, H, W)`` or ``(B, H, W)`` prediction in ``input_space``.
            target: same shape; invalid pixels hold 0, a negative value, NaN or inf.
            mask: optional bool mask, same shape, combined with the target's validity.
            progress: training progress in [0, 1] (float or 0-dim tensor); ``None`` uses
                :attr:`progress`.

        Returns:
            The loss (``(B,)`` for ``reduction="none"``).
        """
        return self._run(pred, target, mask, progress)

    def _run(
        self,
        pred: Tensor,
        target: Tensor,
        mask: Optional[Tensor],
        progress: Union[None, float, Tensor],
        **extra: Any,
    ) -> Tensor:
        check_pair(pred, target)
        check_mask(mask, pred)
        valid = valid_mask(target, mask)
        p = self._resolve_progress(progress, pred)
        with torch.autocast(device_type=pred.device.type, enabled=False):
            loss, metrics = self.compute(pred, target, valid, p, **extra)
        summary = {"loss": loss.detach() if loss.dim() == 0 else loss.detach().mean()}
        if not isinstance(metrics, dict):  # a function computing them
            if torch.compiler.is_compiling():  # no deferred Python state inside a graph
                metrics = metrics()
            else:
                self.metrics = LazyMetrics(metrics, summary)
                return loss
        self.metrics = {**{k: v.detach() for k, v in metrics.items()}, **summary}
        return loss

    def compute(
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Union[float, Tensor], **extra: Any
    ) -> Tuple[Tensor, Union[Dict[str, Tensor], MetricsFn]]:
        """Return ``(loss, metrics)`` for inputs in ``input_space`` and a complete validity mask.

        ``metrics`` is a dict of tensors, or a function returning one that is called only if
        the metrics are read (:class:`LazyMetrics`).
        """
        raise NotImplementedError

    def extra_repr(self) -> str:
        parts = [f"input_space={self.input_space!r}", f"reduction={self.reduction!r}", f"scope={self.scope!r}"]
        if self.min_depth is not None or self.max_depth is not None:
            parts.append(f"min_depth={self.min_depth}, max_depth={self.max_depth}")
        return ", ".join(parts)
