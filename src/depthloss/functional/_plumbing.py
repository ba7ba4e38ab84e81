"""Private plumbing shared by the kernels: compute dtype, per-image rows, reductions, all-reduce.

Everything here is dense and sync-free: masks enter through ``torch.where`` or as 0/1
float multipliers, never through boolean indexing, and no value is read on the host.

**Rows.** A kernel flattens its maps to ``(G, N)`` rows: one row per image
(``scope="image"``), or one row for the whole batch (``"batch"`` and ``"global"``, whose
row sums are then all-reduced over the ranks of the default process group).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Literal, NamedTuple, Optional, Tuple, TypeVar, Union

import torch
from torch import Tensor

from depthloss._checks import GLOBAL_SCOPES, SCOPES, check_depth_map, check_mask, check_pair, check_weights

__all__ = [
    "GLOBAL_SCOPES",
    "SCOPES",
    "GlobalScope",
    "One",
    "Pair",
    "Reduction",
    "Scope",
    "all_reduce_max",
    "all_reduce_min",
    "all_reduce_sum",
    "as_progress",
    "autocast_off",
    "compute_dtype",
    "global_active",
    "per_image",
    "prepare",
    "prepare_one",
    "reduce_images",
    "rows",
    "safe_div",
    "safe_sqrt",
    "valid_weights",
]

Reduction = Literal["mean", "sum", "none", "pixel-mean"]
Scope = Literal["image", "batch"]
GlobalScope = Literal["image", "batch", "global"]
Progress = Union[float, Tensor]

F = TypeVar("F", bound=Callable[..., Any])


# -- dtype and autocast -------------------------------------------------------------------
def compute_dtype(*tensors: Optional[Tensor]) -> torch.dtype:
    """The dtype a kernel computes in: the promoted floating dtype, at least float32.

    fp16 and bf16 inputs are computed in float32; float64 stays float64.
    """
    dtype = torch.float32
    for t in tensors:
        if t is not None and t.is_floating_point():
            dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def autocast_off(fn: F) -> F:
    """Run ``fn`` with autocast disabled on the device of its first tensor argument.

    Kernels cast their inputs to :func:`compute_dtype` explicitly; disabling autocast makes
    sure no op inside silently drops back to half precision.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        device_type = next((a.device.type for a in args if isinstance(a, Tensor)), "cpu")
        with torch.autocast(device_type=device_type, enabled=False):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def as_progress(progress: Progress, ref: Tensor) -> Tensor:
    """Training progress as a 0-dim tensor on ``ref``'s device, clamped to [0, 1].

    A Python float becomes a tensor here, so under ``torch.compile`` a new value each step is
    a new input of the same graph, never a recompile.
    """
    dtype = torch.float64 if ref.dtype == torch.float64 else torch.float32
    if isinstance(progress, Tensor):
        return progress.to(device=ref.device, dtype=dtype).clamp(0.0, 1.0)
    # torch.full, not torch.as_tensor: the latter specializes a traced float on its value
    return torch.full((), progress, dtype=dtype, device=ref.device).clamp(0.0, 1.0)


# -- rows ---------------------------------------------------------------------------------
def rows(x: Tensor, scope: str) -> Tensor:
    """Flatten a ``(B, 1, H, W)`` or ``(B, H, W)`` map to ``(G, N)`` rows (any ``B``, ``0`` included)."""
    n = math.prod(x.shape[1:])
    if scope == "image":
        return x.reshape(x.shape[0], n)
    return x.reshape(1, x.shape[0] * n)


def per_image(stat: Tensor, batch_size: int, scope: str) -> Tensor:
    """Broadcast a per-row statistic back to shape ``(B,)``."""
    return stat if scope == "image" else stat.expand(batch_size)


def safe_div(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` where ``den > 0``, else 0; the denominator is sanitized before the division."""
    ok = den > 0
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(num))


def safe_sqrt(x: Tensor) -> Tensor:
    """``sqrt(x)`` where ``x > 0``, else 0 with a zero gradient (never the infinite slope at 0)."""
    ok = x > 0
    return torch.where(ok, torch.sqrt(torch.where(ok, x, torch.ones_like(x))), torch.zeros_like(x))


def valid_weights(valid: Tensor, weights: Optional[Tensor], dtype: torch.dtype, scope: str = "image") -> Tensor:
    """Float per-pixel weights, 0 at invalid pixels (user weights there may hold anything).

    User weights are rescaled per row to a largest weight of 1: every kernel that takes
    ``weights`` is invariant to their scale, and the rescaling keeps tiny (subnormal) or huge
    weights from underflowing or overflowing the sums. Under ``scope="global"`` the largest
    weight over all ranks is used, so the shards' weights stay comparable.
    """
    if weights is None:
        return valid.to(dtype)
    w = torch.where(valid, weights.to(dtype), 0.0)
    top = all_reduce_max(w.detach().amax(dim=-1, keepdim=True), scope) if w.shape[-1] > 0 else w.sum(-1, keepdim=True)
    return w / torch.where(top > 0, top, torch.ones_like(top))


class Pair(NamedTuple):
    """A prediction/target pair as ``(G, N)`` rows in the compute dtype (see :func:`prepare`).

    ``pred`` and ``target`` hold ``fill`` at invalid pixels, ``valid`` is the bool mask, ``w``
    the float weights (0 at invalid pixels) and ``n_valid`` the valid pixels per row.
    """

    pred: Tensor
    target: Tensor
    valid: Tensor
    w: Tensor
    n_valid: Tensor
    scope: str


def prepare(
    pred: Tensor,
    target: Tensor,
    mask: Optional[Tensor],
    weights: Optional[Tensor],
    scope: str,
    fill: float = 0.0,
    pred_name: str = "pred",
    target_name: str = "target",
) -> Pair:
    """Validate and flatten a pair; replace invalid pixels by ``fill`` before any non-linearity.

    Both maps get the same ``fill``, so ``pred - target`` and ``log(pred / target)`` are
    exactly 0 at invalid pixels, and NaN or inf there never reach a value or a gradient.
    """
    check_pair(pred, target, pred_name, target_name)
    check_mask(mask, pred, pred_name)
    check_weights(weights, pred, pred_name)
    dtype = compute_dtype(pred, target, weights)
    p, t = rows(pred, scope).to(dtype), rows(target, scope).to(dtype)
    valid = torch.ones_like(p, dtype=torch.bool) if mask is None else rows(mask, scope)
    if mask is not None:
        p, t = torch.where(valid, p, fill), torch.where(valid, t, fill)
    w = valid_weights(valid, None if weights is None else rows(weights, scope), dtype, scope)
    return Pair(p, t, valid, w, valid.sum(dim=-1), scope)


class One(NamedTuple):
    """One map as ``(G, N)`` rows; see :class:`Pair`."""

    x: Tensor
    valid: Tensor
    w: Tensor
    n_valid: Tensor


def prepare_one(
    x: Tensor, mask: Optional[Tensor], weights: Optional[Tensor], scope: str, fill: float = 0.0, name: str = "x"
) -> One:
    """Validate and flatten a single map; invalid pixels hold ``fill``."""
    check_depth_map(name, x)
    check_mask(mask, x, name)
    check_weights(weights, x, name)
    dtype = compute_dtype(x, weights)
    v = rows(x, scope).to(dtype)
    valid = torch.ones_like(v, dtype=torch.bool) if mask is None else rows(mask, scope)
    if mask is not None:
        v = torch.where(valid, v, fill)
    w = valid_weights(valid, None if weights is None else rows(weights, scope), dtype, scope)
    return One(v, valid, w, valid.sum(dim=-1))


def reduce_images(values: Tensor, count: Tensor, reduction: str) -> Tensor:
    """Reduce per-image losses.

    - ``"mean"``: the mean over images with a valid pixel (0 if none): every image counts the same;
    - ``"pixel-mean"``: the mean weighted by each image's valid pixels, ``Σ n_i v_i / Σ n_i``
      (MiDaS's "batch-based" reduction: an image with twice the pixels counts twice);
    - ``"sum"``; ``"none"``: the ``(B,)`` values.

    ``values`` must already be 0 for rows without valid pixels; they stay in the graph, so an
    all-invalid (or empty, ``B = 0``) batch still back-propagates a zero gradient.
    """
    if reduction == "none":
        return values
    if reduction == "pixel-mean":
        n = count.to(values.dtype)
        return (values * n).sum() / n.sum().clamp(min=1)
    total = values.sum()
    if reduction == "sum":
        return total
    return total / (count > 0).sum().clamp(min=1)


# -- scope="global": all-reduce of sufficient statistics -----------------------------------
# Losses whose batch statistics are sums and counts (Σw, Σw·x, Σw·x²) compute them on every
# rank's shard and add them up: every rank then evaluates the loss of the whole distributed
# batch, exactly what scope="batch" gives on one device. Differentiable sums use the
# functional all_reduce, whose backward all-reduces the incoming gradients; after DDP averages
# the parameter gradients over R ranks they equal the single-device gradient of the
# batch-scope loss. Without an initialized process group (or with one rank) every helper is
# the identity, so scope="global" behaves as scope="batch".
def global_active(scope: str) -> bool:
    """True when ``scope="global"`` and a default process group with more than one rank exists."""
    if scope != "global" or not torch.distributed.is_available():
        return False
    return bool(torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1)


def all_reduce_sum(*tensors: Tensor, scope: str) -> Tuple[Tensor, ...]:
    """Sum each tensor over the ranks in one collective (differentiable); identity unless global.

    The tensors must have the same dtype and device; they travel as one flat buffer.
    """
    if not global_active(scope):
        return tensors
    flat = torch.cat([t.reshape(-1) for t in tensors])
    if flat.requires_grad:
        flat = _differentiable_all_reduce(flat)
    else:
        flat = flat.clone()  # never reduce into a caller's buffer
        torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
    parts = torch.split(flat, [t.numel() for t in tensors])
    return tuple(part.view_as(t) for part, t in zip(parts, tensors))


def _differentiable_all_reduce(flat: Tensor) -> Tensor:
    """Sum over the ranks with a backward that sums the gradients over the ranks."""
    from torch.distributed import _functional_collectives as funcol

    if hasattr(funcol, "all_reduce_backward"):  # recent torch: the functional all_reduce has autograd
        group: Any = torch.distributed.group.WORLD
        out: Tensor = funcol.wait_tensor(funcol.all_reduce(flat, "sum", group))  # type: ignore[no-untyped-call]
        return out
    from torch.distributed.nn.functional import all_reduce  # older torch (deprecated in newer ones)

    reduced: Tensor = all_reduce(flat, op=torch.distributed.ReduceOp.SUM)  # type: ignore[no-untyped-call]
    return reduced


def _all_reduce_detached(x: Tensor, op: str) -> Tensor:
    out = x.detach().clone()
    torch.distributed.all_reduce(out, op=getattr(torch.distributed.ReduceOp, op))
    return out


def all_reduce_max(x: Tensor, scope: str) -> Tensor:
    """Elementwise maximum over the ranks (detached: for rescaling constants only)."""
    return _all_reduce_detached(x, "MAX") if global_active(scope) else x


def all_reduce_min(x: Tensor, scope: str) -> Tensor:
    """Elementwise minimum over the ranks (detached; a bool tensor gives the logical and)."""
    if not global_active(scope):
        return x
    if x.dtype == torch.bool:
        return _all_reduce_detached(x.to(torch.uint8), "MIN").bool()
    return _all_reduce_detached(x, "MIN")
