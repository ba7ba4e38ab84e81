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

__all__ = [
    "Samples",
    "check_generator",
    "hashed_uniform",
    "pick_valid",
    "sample_distinct_pairs",
    "sample_valid",
    "spread_valid",
    "uniform",
]


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
    return pick_valid(valid, uniform((valid.shape[0], num), valid, generator, torch.float64))


# -- counter-based uniforms, pairs of distinct valid pixels (ranking loss) -------------------
_MASK32 = 0xFFFFFFFF


def _mix32(x: Tensor) -> Tensor:
    """A 32-bit integer hash (xor-shift / multiply rounds) on int64 values in ``[0, 2^32)``.

    The multipliers are below ``2^31``, so no product overflows int64: the same bits on every
    device and backend.
    """
    for mult in (0x7FEB352D, 0x5BD1E995, 0x68E31DA5):
        x = x ^ (x >> 16)
        x = (x * mult) & _MASK32
    return x ^ (x >> 15)


def hashed_uniform(shape: Sequence[int], ref: Tensor, seed: int, stream: int = 0) -> Tensor:
    """Deterministic float64 ``U[0, 1)`` of ``shape`` from ``(seed, stream, element index)``.

    A counter-based generator: no state, traceable by ``torch.compile(fullgraph=True)``, the
    same values on CPU and CUDA. Element ``i`` of the flattened ``shape`` always gets the same
    value, so draws that do not include the batch dimension are the same for every image.
    """
    count = 1
    for s in shape:
        count *= int(s)
    i = torch.arange(count, device=ref.device, dtype=torch.int64).reshape(tuple(shape))
    key = _mix32(
        torch.full((), (seed * 0x3C6EF35F + stream * 0x1B873593) & _MASK32, dtype=torch.int64, device=ref.device)
    )
    h = _mix32(_mix32((i ^ key) & _MASK32) ^ key)
    return h.to(torch.float64) / float(2**32)


def pick_valid(valid: Tensor, u: Tensor) -> Samples:
    """Positions of the valid entries of rank ``floor(u n)`` per row (inverse CDF); ``u``: ``(G, M)`` in [0, 1)."""
    running = valid.cumsum(dim=-1)
    n = running[:, -1:] if valid.shape[-1] else running.sum(dim=-1, keepdim=True)
    k = (u * n).floor().long().clamp(max=(n - 1).clamp(min=0))
    index = torch.searchsorted(running, k + 1).clamp(max=max(valid.shape[-1] - 1, 0))
    return Samples(index, (n > 0).expand_as(index))


def sample_distinct_pairs(
    valid: Tensor, num: int, generator: Optional[torch.Generator] = None, u: Optional[Tensor] = None
) -> Samples:
    """``num`` pairs per row of two *different* valid entries, each pair uniform over the ordered pairs.

    Ranks ``k1`` uniform in ``[0, n)`` and ``k2 = (k1 + 1 + floor(u (n - 1))) mod n`` (never
    ``k1``), mapped to positions by the running count of valid entries (as in
    :func:`sample_valid`). Rows with fewer than two valid entries give position 0 and
    ``ok = False``. Pairs are drawn independently (with replacement across pairs).

    Args:
        valid: ``(G, N)`` bool.
        num: pairs per row, ``>= 0``.
        generator: optional ``torch.Generator`` on ``valid``'s device.
        u: optional pre-drawn uniforms of shape ``(G, num, 2)`` or ``(num, 2)`` (shared by the
            rows) replacing the draw.

    Returns:
        :class:`Samples` with ``index`` of shape ``(G, num, 2)`` and ``ok`` of shape ``(G, num)``.

    Example:
        >>> valid = torch.tensor([[True, False, True, False]])
        >>> s = sample_distinct_pairs(valid, 3, torch.Generator().manual_seed(0))
        >>> bool((s.index[..., 0] != s.index[..., 1]).all()), bool(s.ok.all())
        (True, True)
    """
    g = valid.shape[0]
    running = valid.cumsum(dim=-1)  # (G, N) int64
    n = running[:, -1:] if valid.shape[-1] else running.sum(dim=-1, keepdim=True)
    if u is None:
        u = uniform((g, num, 2), valid, generator, torch.float64)
    u = u.expand(g, num, 2)
    n3 = n.unsqueeze(-1)  # (G, 1, 1)
    k1 = (u[..., 0:1] * n3).floor().long().clamp(max=(n3 - 1).clamp(min=0))
    step = (u[..., 1:2] * (n3 - 1).clamp(min=0)).floor().long().clamp(max=(n3 - 2).clamp(min=0))
    k2 = torch.remainder(k1 + 1 + step, n3.clamp(min=1))
    ranks = torch.cat([k1, k2], dim=-1).reshape(g, 2 * num)
    index = torch.searchsorted(running, ranks + 1).clamp(max=max(valid.shape[-1] - 1, 0))
    return Samples(index.reshape(g, num, 2), (n >= 2).expand(g, num))


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
