"""Exact k-th smallest selection on the CPU: NumPy's introselect over each row's valid entries.

Accelerates :func:`depthloss.functional.statistics.kth_smallest` (the trims of ``ssi_mae``,
``ssi-trim`` and the Depth Pro / video losses). The reference sorts every row (``O(N log N)``
over all pixels); this operator gathers each row's valid entries and partitions only those
(``O(n)``). Medians are not routed here: ``torch.nanmedian`` (the reference of
:func:`~depthloss.functional.statistics.lower_median`) is as fast or faster on the CPU. It returns positions, so the value is still gathered from the input by the
reference code and the gradient is the same one-hot gradient. A registered custom operator
with a fake kernel: ``torch.compile`` keeps it in the graph as one opaque node.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from depthloss._accel import Acceleration, register


def _kth_index_numpy(x: Tensor, valid: Tensor, k: Tensor) -> Tensor:
    """``(G,)`` positions of the per-row k-th smallest valid value (0 for rows with ``k <= 0``)."""
    xs = x.contiguous().numpy()
    vm = valid.contiguous().numpy()
    kk = k.contiguous().numpy()
    out = np.zeros(xs.shape[0], dtype=np.int64)
    for r in range(xs.shape[0]):  # the body of a CPU kernel: a loop over rows on the host
        kr = int(kk[r])  # sync-ok: a CPU kernel body, the values are already on the host
        if kr <= 0:
            continue
        where = np.flatnonzero(vm[r])
        compact = xs[r].take(where)
        value = np.partition(compact, kr - 1)[kr - 1]
        # the position a stable sort puts at rank k: among the entries equal to the value,
        # occurrence number k - #{smaller}
        ties = np.flatnonzero(compact == value)
        out[r] = where[ties[kr - 1 - np.count_nonzero(compact < value)]]
    return torch.from_numpy(out)


if hasattr(torch.library, "custom_op"):  # torch >= 2.4; older versions run the reference
    _op = torch.library.custom_op(
        "depthloss::kth_smallest_index",
        _kth_index_numpy,
        mutates_args=(),
        device_types="cpu",
        schema="(Tensor x, Tensor valid, Tensor k) -> Tensor",
    )

    @_op.register_fake
    def _(x: Tensor, valid: Tensor, k: Tensor) -> Tensor:
        return x.new_empty((x.shape[0],), dtype=torch.int64)

    def kth_smallest_index(x: Tensor, valid: Tensor, k: Tensor) -> Tensor:
        """Positions of the per-row ``k``-th smallest valid values of CPU ``(G, N)`` rows."""
        return _op(x, valid, k.to(torch.int64))  # type: ignore[no-any-return]

    register(
        Acceleration(
            name="kth_smallest_index",
            fn=kth_smallest_index,
            devices=("cpu",),
            compile_aware=True,
            reference="depthloss.functional.statistics.kth_smallest",
        )
    )
