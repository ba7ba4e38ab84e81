"""Exact, batched, sync-free k-th smallest value over the valid entries of each row.

``torch.kthvalue`` takes one ``k`` for every row and ``torch.sort`` is ``O(N log N)``;
medians and trims need a different ``k`` per image. This is a most-significant-digit
radix select: floats are mapped to integers that sort the same way, and 16 bits at a
time a per-row histogram (``scatter_add_``) and its cumulative sum locate the digit of
the k-th key. Every step is a dense tensor op with static shapes, so it batches over
images, needs no host synchronization and compiles without graph breaks. Rows shorter
than 8192 use 8-bit digits (more passes, 256-bucket histograms), longer rows 16-bit ones. The selected
element is finally gathered from ``x``, so the gradient is the exact one-hot gradient of
the order statistic (like ``torch.median``).
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["kth_smallest", "kth_smallest_index", "kth_smallest_indices"]

# Each pass costs O(N) per row for the digits plus O(2**bits) per row for the histogram:
# wide digits (few passes) for large rows, narrow digits for small ones (pyramid levels).
_WIDE_BITS = 16
_NARROW_BITS = 8
_NARROW_BELOW = 8192  # row length under which 8-bit digits are cheaper

_INT_FOR_FLOAT = {torch.float32: (torch.int32, 32), torch.float64: (torch.int64, 64)}


def _sortable_key(x: Tensor) -> tuple[Tensor, int]:
    """Reinterpret floats as signed integers with the same order (``-0.0`` sorts before ``+0.0``)."""
    if x.dtype not in _INT_FOR_FLOAT:
        raise TypeError(f"kth_smallest supports float32 and float64, got {x.dtype}")
    int_dtype, nbits = _INT_FOR_FLOAT[x.dtype]
    bits = x.detach().view(int_dtype)
    # Negative floats order backwards as integers: flip their magnitude bits.
    return bits ^ ((bits >> (nbits - 1)) & ((1 << (nbits - 1)) - 1)), nbits


def _kth_index_numpy(xs: List[Tensor], valid: Tensor, k: Tensor) -> Tensor:
    """``(M, G)`` positions of the per-row k-th smallest valid values of M CPU maps sharing ``valid``.

    This is the body of a CPU kernel (like an ATen kernel's loop over rows). Each row's valid
    positions are found once and shared by every map; each map's row is gathered to its valid
    entries and only those are partitioned (NumPy's introselect) and searched.
    """
    vm = valid.contiguous().numpy()
    maps = [x.contiguous().numpy() for x in xs]
    kk = k.numpy()
    rows, n = vm.shape
    out = np.zeros((len(maps), rows), dtype=np.int64)
    for r in range(rows):
        kr = int(kk[r])  # sync-ok: CPU kernel body, the values are on the host
        if kr <= 0:
            continue
        ok = vm[r]
        where = None if np.count_nonzero(ok) == n else np.flatnonzero(ok)
        for i, xf in enumerate(maps):
            compact = xf[r] if where is None else xf[r].take(where)
            value = np.partition(compact, kr - 1)[kr - 1]
            j = np.argmax(compact == value)  # the first occurrence (NaN, which sorts last, is never equal)
            out[i, r] = j if where is None else where[j]
    return torch.from_numpy(out)


_CPU_OP = None
if hasattr(torch.library, "custom_op"):  # torch >= 2.4; older versions use the radix select
    _CPU_OP = torch.library.custom_op(
        "depthloss::kth_smallest_indices",
        _kth_index_numpy,
        mutates_args=(),
        device_types="cpu",
        schema="(Tensor[] xs, Tensor valid, Tensor k) -> Tensor",
    )

    @_CPU_OP.register_fake
    def _(xs: List[Tensor], valid: Tensor, k: Tensor) -> Tensor:
        return valid.new_empty((len(xs), valid.shape[0]), dtype=torch.int64)


def kth_smallest_indices(xs: Sequence[Tensor], valid: Tensor, k: Tensor, impl: Optional[str] = None) -> Tensor:
    """``(M, G)`` positions of the per-row k-th smallest valid values of M maps sharing ``valid``.

    Selecting several maps at once shares the work that depends only on the mask.
    ``impl``: ``None`` (by device), ``"radix"`` or ``"cpu"`` (for tests). See :func:`kth_smallest`.
    """
    if impl is None:
        impl = "cpu" if valid.device.type == "cpu" and _CPU_OP is not None else "radix"
    if impl == "cpu":
        if _CPU_OP is None:
            raise RuntimeError("the CPU selection operator needs torch >= 2.4")
        return _CPU_OP([x.detach() for x in xs], valid, k.to(torch.int64))
    return torch.stack([_radix_select_index(x.detach(), valid, k) for x in xs])


def kth_smallest_index(x: Tensor, valid: Tensor, k: Tensor, impl: Optional[str] = None) -> Tensor:
    """``(G,)`` positions of the per-row k-th smallest valid values (arbitrary for ``k == 0``).

    ``impl``: ``None`` (by device), ``"radix"`` or ``"cpu"`` (for tests). See :func:`kth_smallest`.
    """
    return kth_smallest_indices([x], valid, k, impl)[0]


def kth_smallest(x: Tensor, valid: Tensor, k: Tensor, impl: Optional[str] = None) -> Tensor:
    """Per-row k-th smallest valid value.

    Args:
        x: ``(G, N)`` float32 or float64; values at invalid entries are ignored (may be NaN).
        valid: ``(G, N)`` bool.
        k: ``(G,)`` integer ranks, 1-based, ``1 <= k <= valid.sum(1)``; rows with ``k == 0``
            give 0 (with zero gradient).
        impl: ``None`` (by device), ``"radix"`` or ``"cpu"`` (for tests).

    Returns:
        ``(G,)`` values of ``x``'s dtype, differentiable with respect to ``x`` (the gradient
        goes to the first valid occurrence of the selected value in the row).
    """
    pos = kth_smallest_index(x, valid, k, impl).unsqueeze(1)
    value = x.gather(1, pos).squeeze(1)
    return torch.where(k > 0, value, torch.zeros_like(value))


def _radix_select_index(x: Tensor, valid: Tensor, k: Tensor) -> Tensor:
    """:func:`kth_smallest_index` as a radix select in dense tensor ops (any device)."""
    key, nbits = _sortable_key(x)
    rows = x.shape[0]
    bits = _NARROW_BITS if x.shape[1] < _NARROW_BELOW else _WIDE_BITS
    buckets = 1 << bits
    sel = valid.view(torch.uint8)
    rank = k.to(torch.int32).unsqueeze(1)
    for shift in range(nbits - bits, -1, -bits):
        digit = (key >> shift) & (buckets - 1)
        if shift == nbits - bits:
            digit = digit ^ (buckets >> 1)  # the top digit carries the sign: make it unsigned
        counts = torch.zeros(rows, buckets, dtype=torch.int32, device=x.device)
        counts.scatter_add_(1, digit.long(), sel.to(torch.int32))
        cum = counts.cumsum(1, dtype=torch.int32)
        bucket = torch.searchsorted(cum, rank, out_int32=True).clamp_(max=buckets - 1)
        below = cum.gather(1, (bucket - 1).clamp(min=0).long())
        rank = rank - torch.where(bucket > 0, below, torch.zeros_like(below))
        sel = sel & (digit == bucket).view(torch.uint8)
    return sel.max(dim=1).indices
