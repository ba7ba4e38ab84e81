"""The seeds' multi-scale supervised driver, framework-agnostic."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from depthloss._checks import check_choice, check_depth_map, check_int, check_mask, check_progress
from depthloss.functional.image import SPARSE_MODES, downsample_sparse, pyramid_size
from depthloss.nn.base import DepthLoss, valid_mask
from depthloss.registry import get_loss, parse_loss_name

__all__ = ["SupervisedLoss"]

Preds = Union[Tensor, Sequence[Tensor]]
Masks = Union[None, Tensor, Sequence[Optional[Tensor]]]


def _match_factor(src: Tuple[int, int], dst: Tuple[int, int]) -> Optional[int]:
    """The integer factor ``f`` with ``ceil(src / f) == dst`` in both dims, if there is one."""
    f = max(1, round(src[0] / dst[0]))
    if pyramid_size(src[0], f) == dst[0] and pyramid_size(src[1], f) == dst[1]:
        return f
    return None


def match_resolution(target: Tensor, valid: Tensor, size: Tuple[int, int], mode: str) -> Tuple[Tensor, Tensor]:
    """Bring a target and its validity mask to ``size`` without mixing in invalid pixels.

    Integer factors use :func:`downsample_sparse` with ``mode``; other sizes (or upsampling)
    take the nearest pixel (``F.interpolate(mode="nearest")``), which never mixes values.
    """
    src = (target.shape[-2], target.shape[-1])
    if src == tuple(size):
        return target, valid
    factor = _match_factor(src, size)
    if factor is not None and src[0] >= size[0] and src[1] >= size[1]:
        return downsample_sparse(target, valid, factor, mode)  # type: ignore[arg-type]  # validated in __init__
    t4 = target if target.dim() == 4 else target.unsqueeze(1)
    v4 = valid if valid.dim() == 4 else valid.unsqueeze(1)
    t_s = F.interpolate(torch.where(v4, t4, 0.0), size=size, mode="nearest")
    v_s = F.interpolate(v4.to(t4.dtype), size=size, mode="nearest") > 0.5
    if target.dim() == 3:
        t_s, v_s = t_s.squeeze(1), v_s.squeeze(1)
    return t_s, v_s


class SupervisedLoss(nn.Module):
    """Multi-scale supervision with any registered loss (the seeds' ``SupervisedLoss``).

    ``forward(preds, target, masks=None, progress=None)`` takes one prediction or a list
    (finest first, as decoders emit them; at most ``num_scales`` are used), brings the
    full-resolution target to each prediction's size — sparse-aware pooling (mean of valid
    returns, or ``target_downsample``) for ``sparse-`` methods, nearest pixel otherwise —
    combines ``target > 0`` (and finiteness) with the user's masks, passes ``progress`` and
    averages the per-scale losses. Losses that weight pixels by the full-resolution target
    (``near-field-ssi-silog``) get those weights computed once and pooled to each scale
    (the seed's issue 10).

    Args:
        method: registered loss name, optionally with the ``sparse-`` prefix
            (default ``"sparse-scale-adaptive"``).
        num_scales: number of prediction scales used (default 4).
        target_downsample: ``"mean"``, ``"min"`` or ``"nearest"``; default ``"mean"`` for
            ``sparse-`` methods and ``"nearest"`` for dense ones.
        loss_options: arguments of the loss as a mapping: the way to give the loss a keyword
            the driver uses itself (``scale-adaptive``'s own ``num_scales``, its pyramid depth).
        **loss_kwargs: arguments of the loss, ``input_space`` (required) among them; unknown
            keywords raise ``TypeError``.

    Returns (from ``forward``):
        ``{"loss": Tensor, "metrics": dict}`` with metrics prefixed ``scale{i}/``.

    Example:
        >>> sup = SupervisedLoss("sparse-ssi-silog", num_scales=2, input_space="inverse")
        >>> target = torch.rand(2, 1, 16, 16) * (torch.rand(2, 1, 16, 16) < 0.3)  # sparse
        >>> preds = [torch.rand(2, 1, 16, 16) + 0.1, torch.rand(2, 1, 8, 8) + 0.1]
        >>> out = sup(preds, target, progress=0.5)
        >>> out["loss"].shape, "scale1/loss" in out["metrics"]
        (torch.Size([]), True)
    """

    def __init__(
        self,
        method: str = "sparse-scale-adaptive",
        num_scales: int = 4,
        target_downsample: Optional[str] = None,
        loss_options: Optional[Mapping[str, Any]] = None,
        **loss_kwargs: Any,
    ) -> None:
        super().__init__()
        clash = sorted(set(loss_kwargs) & set(loss_options or {}))
        if clash:
            raise TypeError(f"SupervisedLoss got {clash} both as keywords and in loss_options; give each once")
        loss_kwargs = {**(loss_options or {}), **loss_kwargs}
        _, sparse = parse_loss_name(method)
        self.method = method
        self.num_scales = check_int("num_scales", num_scales, low=1)
        self.sparse = sparse
        if target_downsample is None:
            target_downsample = "mean" if sparse else "nearest"
        self.target_downsample = check_choice("target_downsample", target_downsample, SPARSE_MODES)
        self.loss: DepthLoss = get_loss(method, **loss_kwargs)  # type: ignore[assignment]
        self.metrics: Dict[str, Tensor] = {}

    @property
    def progress(self) -> Tensor:
        """The wrapped loss's default progress (a 0-dim buffer; assign a float to update)."""
        return self.loss.progress

    @progress.setter
    def progress(self, value: Union[float, Tensor]) -> None:
        self.loss.progress = value

    def forward(
        self,
        preds: Preds,
        target: Tensor,
        masks: Masks = None,
        progress: Union[float, Tensor, None] = None,
        **inputs: Any,
    ) -> Dict[str, Any]:
        """Average the loss over prediction scales.

        Args:
            preds: a prediction or a sequence of predictions (finest first), each
                ``(B, 1, h, w)`` or ``(B, h, w)`` in the loss's ``input_space``.
            target: full-resolution target, same ``B`` and number of dims.
            masks: optional bool mask at full resolution (pooled to every scale), or a
                sequence with one mask (or ``None``) per prediction at its resolution.
            progress: training progress in [0, 1]; ``None`` uses :attr:`progress`.
            **inputs: the loss's keyword inputs (``loss_info(name).inputs``: intrinsics ``K``,
                a predicted ``log_scale``, ``confidence``, an ``image``, ...), each a list or
                tuple with one value per prediction (at its resolution: scale ``K`` with the
                image), or one value passed unchanged to every scale.

        Returns:
            ``{"loss": scalar (or (B,) with reduction="none"), "metrics": {...}}``.
        """
        pred_list = self.validate(preds, target, masks, progress)
        per_scale = self._input_lists(inputs, len(pred_list))
        mask_list = self._mask_list(masks, pred_list)
        valid = valid_mask(target, masks if isinstance(masks, Tensor) else None)
        target_clean = torch.where(valid, target, torch.zeros_like(target))

        weights_full = None
        full_weights = getattr(self.loss, "full_resolution_weights", None)
        if full_weights is not None:
            weights_full = full_weights(target_clean, progress)

        losses: List[Tensor] = []
        metrics: Dict[str, Tensor] = {}
        for i, pred in enumerate(pred_list):
            size = (pred.shape[-2], pred.shape[-1])
            target_i, valid_i = match_resolution(target_clean, valid, size, self.target_downsample)
            mask_i = mask_list[i]
            if mask_i is not None:
                valid_i = valid_i & mask_i
            extra = {k: v[i] for k, v in per_scale.items()}
            if weights_full is not None:
                extra["weights"] = match_resolution(weights_full, valid, size, self.target_downsample)[0]
            loss_i = self.loss(pred, target_i.reshape(pred.shape), valid_i.reshape(pred.shape), progress, **extra)
            losses.append(loss_i)
            metrics.update({f"scale{i}/{k}": v for k, v in self.loss.metrics.items()})
        loss = torch.stack(losses).mean(dim=0)
        metrics["loss"] = loss.detach() if loss.dim() == 0 else loss.detach().mean()
        self.metrics = metrics
        return {"loss": loss, "metrics": metrics}

    def _input_lists(self, inputs: Dict[str, Any], n: int) -> Dict[str, List[Any]]:
        """Each keyword input as one value per scale (a list/tuple must have one per prediction)."""
        accepted = tuple(getattr(self.loss, "inputs", ()))
        unknown = sorted(set(inputs) - set(accepted))
        if unknown:
            raise TypeError(
                f"SupervisedLoss.forward got unexpected inputs {unknown}; the loss {self.method!r} accepts "
                f"{', '.join(accepted) if accepted else 'none'}"
            )
        out: Dict[str, List[Any]] = {}
        for key, value in inputs.items():
            if isinstance(value, (list, tuple)):
                if len(value) < n:
                    raise ValueError(f"{key} must hold one value per prediction ({n}), got {len(value)}")
                out[key] = list(value[:n])
            else:
                out[key] = [value] * n
        return out

    def validate(
        self, preds: Preds, target: Tensor, masks: Masks = None, progress: Union[float, Tensor, None] = None
    ) -> List[Tensor]:
        """Check the arguments of ``forward`` (errors name the bad one); return the predictions used."""
        pred_list = [preds] if isinstance(preds, Tensor) else list(preds) if isinstance(preds, (list, tuple)) else None
        if pred_list is None:
            raise TypeError(f"preds must be a Tensor or a sequence of Tensors, got {type(preds).__name__}")
        if not pred_list:
            raise ValueError("preds must hold at least one prediction")
        pred_list = pred_list[: self.num_scales]
        check_depth_map("target", target)
        for i, pred in enumerate(pred_list):
            check_depth_map(f"preds[{i}]", pred)
            if pred.shape[0] != target.shape[0] or pred.dim() != target.dim():
                raise ValueError(
                    f"preds[{i}] must have the target's batch size and number of dims: target has shape "
                    f"{tuple(target.shape)}, preds[{i}] has {tuple(pred.shape)}"
                )
            if pred.device != target.device:
                raise ValueError(f"preds[{i}] must be on the target's device {target.device}, got {pred.device}")
        if isinstance(masks, Tensor):
            check_mask(masks, target, "target", "masks")
        elif masks is not None:
            if not isinstance(masks, (list, tuple)):
                raise TypeError(
                    f"masks must be a bool Tensor, a sequence of them (or None), or None; got {type(masks).__name__}"
                )
            for i, (m, pred) in enumerate(zip(masks, pred_list)):
                check_mask(m, pred, f"preds[{i}]", f"masks[{i}]")
        if progress is not None:
            check_progress(progress)
        return pred_list

    # torch.compile(module) runs this before every call, outside the compiled frame (see DepthLoss)
    _initialize_hook = None

    def _infer_parameters(
        self, module: nn.Module, args: Tuple[Any, ...], kwargs: Optional[Dict[str, Any]] = None
    ) -> None:
        kwargs = dict(kwargs or {})
        standard = {k: kwargs.pop(k) for k in ("preds", "target", "masks", "progress") if k in kwargs}
        pred_list = self.validate(*args[:4], **standard)
        self._input_lists(kwargs, len(pred_list))

    def _mask_list(self, masks: Masks, preds: List[Tensor]) -> List[Optional[Tensor]]:
        if masks is None or isinstance(masks, Tensor):
            return [None] * len(preds)
        masks = list(masks)
        return [masks[i] if i < len(masks) else None for i in range(len(preds))]

    def extra_repr(self) -> str:
        return f"method={self.method!r}, num_scales={self.num_scales}, target_downsample={self.target_downsample!r}"
