"""All-reduce of sufficient statistics for ``scope="global"``.

Losses whose batch statistics are sums and counts (weighted moments ``Σw``, ``Σw·x``,
``Σw·x²``) can compute them on every rank's shard and add them up: with the sums
all-reduced, every rank evaluates the loss of the *whole* distributed batch, exactly what
``scope="batch"`` gives on one device. Differentiable sums are reduced with the functional
``all_reduce`` (``torch.distributed.nn.functional.all_reduce`` on older torch), whose
backward all-reduces the incoming gradients: every rank's loss depends on every shard, and after DistributedDataParallel
averages the parameter gradients over ``R`` ranks they equal the single-device gradient of
the batch-scope loss (``R`` identical losses, each back-propagated with an ``R``-fold
all-reduced gradient, divided by ``R``). Shards may hold different numbers of images.

Without an initialized default process group (or with one rank) every helper is the
identity, so ``scope="global"`` behaves as ``scope="batch"``.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

__all__ = ["all_reduce_max", "all_reduce_min", "all_reduce_sum", "global_active"]


def global_active(scope: str) -> bool:
    """True when ``scope="global"`` and a default process group with more than one rank exists."""
    if scope != "global" or not torch.distributed.is_available():
        return False
    return torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1


def all_reduce_sum(*tensors: Tensor, scope: str) -> Tuple[Tensor, ...]:
    """Sum each tensor over the ranks (one collective for all of them); differentiable.

    The tensors must have the same dtype and device; they are flattened into one buffer.
    """
    if not global_active(scope):
        return tensors
    flat = torch.cat([t.reshape(-1) for t in tensors])
    if flat.requires_grad:
        flat = _differentiable_all_reduce(flat)
    else:
        flat = flat.clone()  # never reduce into a caller's (or another helper's) buffer
        torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
    return tuple(part.view_as(t) for part, t in zip(flat.split([t.numel() for t in tensors]), tensors))


def _differentiable_all_reduce(flat: Tensor) -> Tensor:
    """Sum over the ranks with a backward that sums the gradients over the ranks."""
    from torch.distributed import _functional_collectives as funcol

    if hasattr(funcol, "all_reduce_backward"):  # recent torch: functional all_reduce has autograd
        return funcol.wait_tensor(funcol.all_reduce(flat, "sum", torch.distributed.group.WORLD))
    from torch.distributed.nn.functional import all_reduce  # older torch (deprecated in newer ones)

    return all_reduce(flat, op=torch.distributed.ReduceOp.SUM)


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
