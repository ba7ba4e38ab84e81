"""The one small base class every depthloss module subclasses."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Callable, ClassVar, Dict, Literal, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from depthloss._checks import SCOPES, check_choice, check_mask, check_pair, check_progress, check_reduction
from depthloss.functional._plumbing import Reduction, as_progress, compute_dtype
from depthloss.functional.depth import check_depth_range, clamp_valid, inverse_bounds, to_depth, to_inverse

__all__ = ["DepthLoss", "InputSpace", "LazyMetrics", "valid_mask"]

InputSpace = Literal["inverse", "depth"]
INPUT_SPACES = ("inverse", "depth")
LossSpace = Literal["input", "inverse", "depth", "inverse+depth"]

#: what each loss space means, for errors and listings
SPACE_WORDS = {
    "input": "the maps as given",
    "inverse": "inverse depth",
    "depth": "metric depth",
    "inverse+depth": "inverse depth (SSI) and metric depth (SILog)",
}


def valid_mask(target: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """``mask & isfinite(target) & (target > 0)``: sparse ground truth stores 0 for "no return"."""
    valid = torch.isfinite(target) & (target > 0)
    return valid if mask is None else valid & mask


MetricsFn = Callable[[], Dict[str, Tensor]]


class LazyMetrics(Mapping[str, Tensor]):
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
    (valid depths are clamped to ``[min_depth, max_depth]`` when given, and inverse depths
    to ``[1 / max_depth, 1 / min_depth]``, whichever space they arrive in), disables
    autocast, calls the functional kernel and stores detached metrics in :attr:`metrics`.

    Args:
        input_space: what ``pred`` and ``target`` hold, required: ``"depth"`` (metric depth
            in metres: ZoeDepth, Depth Anything metric, Metric3D, UniDepth) or ``"inverse"``
            (inverse depth / disparity: packnet-sfm, Monodepth2, MiDaS, the seeds).
        reduction: ``"mean"`` over images with a valid pixel, ``"sum"``, or ``"none"``.
        scope: ``"image"`` (per-image statistics, default) or ``"batch"``; losses whose
            statistics are sums and counts (:attr:`scopes`) also take ``"global"``: batch
            statistics all-reduced over the default process group (``"batch"`` without one).
        min_depth: optional lower clamp of valid depths (``>= 0``; 0 means none).
        max_depth: optional upper clamp of valid depths. Losses computed on the maps as given
            (``loss_space="input"``: l1, mse, berhu) are not clamped.

    Class attributes (the registry reads them; :func:`depthloss.loss_info`): the first line
    of the docstring is the summary; :attr:`formula`, :attr:`when`, :attr:`loss_space`,
    :attr:`invariances`, :attr:`uses_progress`, :attr:`scopes`, :attr:`functional` and
    :attr:`inputs` (keyword inputs of ``forward`` beyond the four above) and :attr:`input_layout`.
    """

    #: the definition, in plain text
    formula: ClassVar[str] = ""
    #: when to use it
    when: ClassVar[str] = ""
    #: where the loss is computed: the maps as given, inverse depth, depth, or both
    loss_space: ClassVar[LossSpace] = "input"
    #: transformations of ``pred`` the loss ignores (``"scale"``, ``"shift"``)
    invariances: ClassVar[Tuple[str, ...]] = ()
    #: whether the loss changes with training progress
    uses_progress: ClassVar[bool] = False
    #: the ``scope`` values the loss accepts
    scopes: ClassVar[Tuple[str, ...]] = SCOPES
    #: the functional kernel the module wraps
    functional: ClassVar[Optional[Callable[..., Tensor]]] = None
    #: keyword inputs of ``forward`` beyond ``pred, target, mask, progress``
    inputs: ClassVar[Tuple[str, ...]] = ()
    #: the shape of ``pred``/``target``: ``"image"`` (``(B, 1, H, W)`` or ``(B, H, W)``) or
    #: ``"video"`` (``(B, T, H, W)`` sequences)
    input_layout: ClassVar[str] = "image"

    metrics: Mapping[str, Tensor]
    reduction: Reduction
    scope: Any  # one of ``scopes`` (validated in __init__)
    _progress: Tensor

    def __init__(
        self,
        *,
        input_space: Optional[InputSpace] = None,
        reduction: Reduction = "mean",
        scope: str = "image",
        min_depth: Optional[float] = None,
        max_depth: Optional[float] = None,
    ) -> None:
        super().__init__()
        if input_space is None:
            raise TypeError(self._missing_space_message())
        check_choice("input_space", input_space, INPUT_SPACES)
        check_reduction(reduction, scope, self.scopes, getattr(self, "registry_name", type(self).__name__))
        check_depth_range(min_depth, max_depth)
        self.input_space = input_space
        self.reduction = reduction
        self.scope = scope
        self.min_depth = None if min_depth is None else float(min_depth)
        self.max_depth = None if max_depth is None else float(max_depth)
        self.register_buffer("_progress", torch.zeros((), dtype=torch.float32), persistent=False)
        self.metrics = {}

    @classmethod
    def _missing_space_message(cls) -> str:
        name = getattr(cls, "registry_name", cls.__name__)
        return (
            f"{cls.__name__} ({name!r}) needs input_space: 'depth' if pred and target hold metric depth "
            f"in metres (ZoeDepth, Depth Anything metric, Metric3D, UniDepth), 'inverse' if they hold "
            f"inverse depth or disparity (packnet-sfm, Monodepth2, MiDaS). The loss is computed on "
            f"{SPACE_WORDS[cls.loss_space]} and converts the inputs there, so the wrong space gives a "
            f"plausible but wrong value."
        )

    # -- progress -----------------------------------------------------------------------
    @property
    def progress(self) -> Tensor:
        """Training progress in [0, 1] used when ``forward`` gets ``progress=None``.

        A 0-dim float32 buffer: assigning a float updates it in place, so a compiled module
        does not recompile when it changes (set it once per epoch from any framework). It
        stays float32 (or float64) when the module is cast to half precision.
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

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> DepthLoss:
        # .half() / .to(bfloat16) of a model holding this loss must not quantize progress
        # (0.3 would become 0.30078125): the buffer follows device moves, never a cast below float32.
        kept = self._progress.detach().clone()
        super()._apply(fn, recurse)  # type: ignore[no-untyped-call]
        moved = self._progress
        dtype = moved.dtype if moved.dtype in (torch.float32, torch.float64) else torch.float32
        self._progress = kept.to(device=moved.device, dtype=dtype)
        return self

    # -- spaces -------------------------------------------------------------------------
    def to_space(self, x: Tensor, space: str) -> Tensor:
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

    def pair_in(self, pred: Tensor, target: Tensor, space: str) -> Tuple[Tensor, Tensor]:
        """Both maps moved to ``space``."""
        return self.to_space(pred, space), self.to_space(target, space)

    # -- input checks (also before a compiled call) ---------------------------------------
    def validate(
        self,
        pred: Tensor,
        target: Tensor,
        mask: Optional[Tensor] = None,
        progress: Union[float, Tensor, None] = None,
        **inputs: Any,
    ) -> None:
        """Check the arguments of ``forward``; raise ``ValueError``/``TypeError`` naming the bad one."""
        check_pair(pred, target)
        check_mask(mask, pred)
        if progress is not None:
            check_progress(progress)
        unknown = sorted(set(inputs) - set(self.inputs))
        if unknown:
            accepted = ", ".join(("pred", "target", "mask", "progress", *self.inputs))
            raise TypeError(f"{type(self).__name__}.forward got unexpected inputs {unknown}; it accepts {accepted}")

    # torch.compile(module) calls ``_infer_parameters`` outside the compiled frame before every
    # call (the protocol of lazy modules; torch >= 2.0), so a compiled loss raises the same
    # ValueError/TypeError as an eager one. Inside ``forward`` the same checks run again (on
    # metadata only: free while tracing).
    _initialize_hook = None

    def _infer_parameters(
        self, module: nn.Module, args: Tuple[Any, ...], kwargs: Optional[Dict[str, Any]] = None
    ) -> None:
        self.validate(*args, **(kwargs or {}))

    # -- forward ------------------------------------------------------------------------
    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        mask: Optional[Tensor] = None,
        progress: Union[float, Tensor, None] = None,
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
        progress: Union[float, Tensor, None],
        **inputs: Any,
    ) -> Tensor:
        self.validate(pred, target, mask, progress, **inputs)
        valid = valid_mask(target, mask)
        p = as_progress(self._progress if progress is None else progress, pred)
        with torch.autocast(device_type=pred.device.type, enabled=False):
            loss, metrics = self.compute(pred, target, valid, p, **inputs)
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
        self, pred: Tensor, target: Tensor, mask: Tensor, progress: Tensor, **inputs: Any
    ) -> Tuple[Tensor, Union[Dict[str, Tensor], MetricsFn]]:
        """Return ``(loss, metrics)`` for inputs in ``input_space`` and a complete validity mask.

        ``progress`` is a 0-dim tensor in [0, 1]. ``metrics`` is a dict of tensors, or a
        function returning one that is called only if the metrics are read (:class:`LazyMetrics`).
        """
        raise NotImplementedError

    def extra_repr(self) -> str:
        parts = [f"input_space={self.input_space!r}", f"reduction={self.reduction!r}", f"scope={self.scope!r}"]
        if self.min_depth is not None or self.max_depth is not None:
            parts.append(f"min_depth={self.min_depth}, max_depth={self.max_depth}")
        return ", ".join(parts)
