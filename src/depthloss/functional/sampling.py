"""Random sampling for the losses that compare pairs, triplets or windows of pixels.

Every sampler draws a *fixed* number of samples per image, so shapes never depend on the
data, and says which samples are usable with a bool ``ok`` (an image without enough valid
pixels gives samples that are not ``ok``); losses weight by ``ok`` instead of indexing. No
host synchronization, no ``nonzero``.

**Generators.** ``generator`` (a ``torch.Generator`` on the input's device) makes the draw
deterministic; without one the global RNG is used. Under ``torch.compile(fullgraph=True)``
a generator argument cannot be traced (torch 2.13): compile with ``generator=None``, or draw
the samples eagerly and pass them to the loss.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import torch
from torch import Tensor

__all__ = ["Samples", "check_generator", "sample_valid", "spread_valid", "uniform"]


class Samples(NamedTuple):
    """``index``: ``(G, K)`` flat positions into each ``(G, N)`` row; ``ok``: ``(G, K)`` bool."""

    index: Tensor  # type: ignore[assignment]  # (a field, shadowing tuple.index)
    ok: Tensor


def check_generator(generator: Optional[torch.Generator], ref: Tensor, name: str = "generator") -> None:
    """A ``torch.Generator`` on ``ref``'s device, or ``None``."""
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(generator).__name__}")
    if generator.device.type != ref.device.type:
        raise ValueError(f"{name} must be on the input's device ({ref.device}), got a generator on {generator.device}")


def uniform(
    shape: Sequence[int], ref: Tensor, generator: Optional[torch.Generator] = None, dtype: Optional[torch.dtype] = None
) -> Tensor:
    """``U[0, 1)`` floats of ``shape`` on ``ref``'s device (in ``dtype``, default ``ref``'s floating dtype)."""
    dtype = dtype or (ref.dtype if ref.is_floating_point() else torch.float32)
    if generator is None:  # no generator keyword at all: `generator=None` does not trace with dynamic shapes
        return torch.rand(tuple(shape), device=ref.device, dtype=dtype)
    return torch.rand(tuple(shape), generator=generator, device=ref.device, dtype=dtype)


def sample_valid(valid: Tensor, num: int, generator: Optional[torch.Generator] = None) -> Samples:
    """``num`` positions per row drawn uniformly, with replacement, among the row's valid entries.

    Inverse-CDF sampling on the running count of valid entries: rank ``k`` uniform in
    ``[0, n)``, position = the first entry whose running count exceeds ``k``. Rows without
    a valid entry give position 0 and ``ok = False``.

    Args:
        valid: ``(G, N)`` bool.
        num: samples per row, ``>= 1``.
        generator: optional ``torch.Generator`` on ``valid``'s device.

    Returns:
        :class:`Samples` with ``(G, num)`` positions and ``ok``.

    Example:
        >>> valid = torch.tensor([[False, True, False, True], [False, False, False, False]])
        >>> s = sample_valid(valid, 5, torch.Generator().manual_seed(0))
        >>> bool(valid.gather(1, s.index)[0].all()), s.ok[1].any().item()
        (True, False)
    """
    running = valid.cumsum(dim=-1)  # (G, N) int64
    n = running[:, -1:] if valid.shape[-1] else running.sum(dim=-1, keepdim=True)
    u = uniform((valid.shape[0], num), valid, generator, torch.float64)
    k = (u * n).floor().long().clamp(max=(n - 1).clamp(min=0))  # rank in [0, n)
    index = torch.searchsorted(running, k + 1).clamp(max=max(valid.shape[-1] - 1, 0))
    return Samples(index, (n > 0).expand_as(index))


# -- deterministic spread of positions (local / edge-guided SSI) -------------------------------
def spread_valid(valid: Tensor, num: int) -> Samples:
    """``num`` positions per row spread evenly over the row's valid entries in raster order.

    Sample ``j`` is the valid entry of rank ``floor((j + 1/2) n / num)`` (0-based), so the
    positions cover the row from start to end; with fewer than ``num`` valid entries some
    repeat. Deterministic (no RNG): rows without a valid entry give position 0, ``ok = False``.
    """
    running = valid.cumsum(dim=-1)
    n = running[:, -1:] if valid.shape[-1] else running.sum(dim=-1, keepdim=True)
    j = torch.arange(num, device=valid.device, dtype=torch.float64).unsqueeze(0) + 0.5
    k = (j * n / num).floor().long().clamp(max=(n - 1).clamp(min=0))
    index = torch.searchsorted(running, k + 1).clamp(max=max(valid.shape[-1] - 1, 0))
    return Samples(index, (n > 0).expand_as(index))
