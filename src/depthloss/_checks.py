"""Input validation shared by every kernel and module.

All checks run on tensor *metadata* (type, dtype, shape, device) or on Python
hyper-parameters, never on tensor values, so they cost nothing on the device and
never synchronize the host. Errors name the argument and say what was expected.

Value checks of Python numbers run eagerly only: under ``torch.compile`` a float argument
is traced as a symbolic value, and inspecting it would specialize the graph on it (one
recompile per training-progress value). Modules validate their hyper-parameters in
``__init__`` and their inputs before the compiled region (:mod:`depthloss.nn.base`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, Optional, Tuple

import torch
from torch import Tensor

__all__ = [
    "check_choice",
    "check_depth_map",
    "check_float",
    "check_int",
    "check_like",
    "check_mask",
    "check_pair",
    "check_progress",
    "check_reduction",
    "check_ssi_silog_args",
    "check_weights",
]

REDUCTIONS = ("mean", "sum", "none", "pixel-mean")
SCOPES = ("image", "batch")
# "global": batch statistics all-reduced over the default process group (the kernels whose
# statistics are sums and counts)
GLOBAL_SCOPES = ("image", "batch", "global")


def _compiling() -> bool:
    """True while ``torch.compile`` traces (values may be symbolic there)."""
    return torch.compiler.is_compiling()


def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def check_depth_map(name: str, x: Any) -> Tensor:
    """Check that ``x`` is a floating tensor of shape ``(B, 1, H, W)`` or ``(B, H, W)``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() == 4:
        if x.shape[1] != 1:
            raise ValueError(
                f"{name} must have shape (B, 1, H, W) or (B, H, W), got {_shape(x)} "
                f"(channel dimension {x.shape[1]} != 1)"
            )
    elif x.dim() != 3:
        raise ValueError(f"{name} must have shape (B, 1, H, W) or (B, H, W), got {_shape(x)}")
    return x


def check_like(name: str, x: Any, ref_name: str, ref: Tensor) -> Tensor:
    """Check that ``x`` is a floating tensor with ``ref``'s shape and device."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    _check_shape_device(name, x, ref_name, ref)
    return x


def _check_shape_device(name: str, x: Tensor, ref_name: str, ref: Tensor) -> None:
    if x.shape != ref.shape:
        raise ValueError(f"{name} must have the same shape as {ref_name}: expected {_shape(ref)}, got {_shape(x)}")
    if x.device != ref.device:
        raise ValueError(f"{name} must be on the same device as {ref_name}: expected {ref.device}, got {x.device}")


def check_pair(pred: Any, target: Any, pred_name: str = "pred", target_name: str = "target") -> None:
    """Check a prediction/target pair of depth maps."""
    check_depth_map(pred_name, pred)
    check_depth_map(target_name, target)
    _check_shape_device(target_name, target, pred_name, pred)


def check_mask(mask: Any, ref: Tensor, ref_name: str = "pred", name: str = "mask") -> Tensor | None:
    """Check an optional boolean validity mask with ``ref``'s shape and device."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or None, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool tensor, got dtype {mask.dtype}")
    _check_shape_device(name, mask, ref_name, ref)
    return mask


def check_weights(weights: Any, ref: Tensor, ref_name: str = "pred", name: str = "weights") -> Tensor | None:
    """Check optional non-negative per-pixel float weights with ``ref``'s shape and device."""
    if weights is None:
        return None
    return check_like(name, weights, ref_name, ref)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """Check that ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_float(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    allow_tensor: bool = False,
) -> Any:
    """Check a real hyper-parameter lies in a range.

    With ``allow_tensor`` a 0-dim floating tensor is accepted and its value is *not*
    inspected (that would synchronize the host); the caller documents the range.

    Value checks run eagerly only: under ``torch.compile`` a Python float can be traced as
    a symbolic value, and modules have already validated their hyper-parameters in
    ``__init__``.
    """
    if _compiling():
        return value
    if isinstance(value, Tensor):
        if allow_tensor and value.dim() == 0:
            return value
        kind = "a real number or a 0-dim tensor" if allow_tensor else "a real number"
        raise TypeError(f"{name} must be {kind}, got a tensor of shape {_shape(value)}")
    if isinstance(value, bool) or type(value).__name__ == "bool_" or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        bracket = "[" if low_inclusive else "("
        hi = "inf" if high is None else repr(high)
        closing = ")" if high is None or not high_inclusive else "]"
        raise ValueError(f"{name} must be in {bracket}{low!r}, {hi}{closing}, got {value!r}")
    if high is not None and (value > high or (value == high and not high_inclusive)):
        lo = "-inf" if low is None else repr(low)
        opening = "(" if low is None or not low_inclusive else "["
        closing = "]" if high_inclusive else ")"
        raise ValueError(f"{name} must be in {opening}{lo}, {high!r}{closing}, got {value!r}")
    return value


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """Check an integer hyper-parameter (``bool`` is rejected); eager only, like :func:`check_float`."""
    if _compiling():
        return value  # type: ignore[no-any-return]
    if isinstance(value, bool) or type(value).__name__ == "bool_" or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return int(value)


def check_progress(progress: Any, name: str = "progress") -> Any:
    """Check training progress: a real number (Python or NumPy) or a 0-dim floating tensor.

    Values outside [0, 1] are clamped by the schedules; non-finite numbers are an error.
    A tensor's value is not inspected (that would synchronize the host).
    """
    if isinstance(progress, Tensor):
        if progress.dim() != 0:
            raise ValueError(
                f"{name} must be a float in [0, 1] or a 0-dim tensor, got a tensor of shape {_shape(progress)}"
            )
        if not progress.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {progress.dtype}")
        return progress
    if _compiling():
        return progress
    if isinstance(progress, bool) or type(progress).__name__ == "bool_" or not isinstance(progress, numbers.Real):
        raise TypeError(f"{name} must be a float in [0, 1] or a 0-dim tensor, got {type(progress).__name__}")
    value = float(progress)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_reduction(reduction: Any, scope: Any, scopes: Tuple[str, ...] = SCOPES, loss: Optional[str] = None) -> None:
    """Validate ``reduction`` and ``scope`` (one of ``scopes``) together; ``loss`` names the caller in errors."""
    check_choice("reduction", reduction, REDUCTIONS)
    if not isinstance(scope, str) or scope not in scopes:
        who = f"{loss} accepts" if loss else "must be one of"
        options = ", ".join(repr(c) for c in scopes)
        raise ValueError(f"scope: {who} {options}; got {scope!r}")
    if scope != "image" and reduction in ("none", "pixel-mean"):
        raise ValueError(
            f"reduction={reduction!r} needs per-image values (scope='image'); "
            f"scope={scope!r} pools the whole batch into a single value"
        )


def check_ssi_silog_args(
    alpha: float, silog_ratio: float, silog_ratio2: float, ssi_weight: float, silog_weight: float
) -> None:
    """Validate the hyper-parameters shared by the SSI-SILog family (``ssi-silog``, ``near-field-ssi-silog``)."""
    check_float("alpha", alpha, low=0.0)
    check_float("silog_ratio", silog_ratio, low=0.0, low_inclusive=False)
    check_float("silog_ratio2", silog_ratio2, low=0.0, high=1.0)
    check_float("ssi_weight", ssi_weight, low=0.0)
    check_float("silog_weight", silog_weight, low=0.0)


def check_odd(name: str, value: int, why: str) -> None:
    """An odd integer hyper-parameter (eagerly only, like every value check)."""
    if not _compiling() and value % 2 == 0:
        raise ValueError(f"{name} must be odd ({why}), got {value}")


def check_ordered(name: str, low: float, high: float, *, strict: bool, shown: Any) -> None:
    """A ``(low, high)`` pair in order: ``low < high`` (``strict``) or ``low <= high`` (eagerly only)."""
    if _compiling():
        return
    if (low >= high) if strict else (low > high):
        relation = "low < high" if strict else "smallest <= largest"
        raise ValueError(f"{name} must have {relation}, got {shown!r}")
