"""What each spawned rank of ``tests/test_metrics_torchmetrics.py`` runs (imported by reference under spawn).

Both the parent and every rank build the same batches from fixed seeds: unequal numbers of
batches and images per rank, images without valid pixels, and one rank with a batch that
has no valid pixel at all. A rank updates a ``DepthMetricsTM`` with its own batches only
and calls ``compute()``, which torchmetrics synchronizes over the process group.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Tuple

import torch
from torch import Tensor

WORLD_SIZE = 2
CONFIG: Dict[str, Any] = {"max_depth": 20.0, "near_threshold": 2.0}
HEIGHT, WIDTH = 12, 16
# images per batch, per rank: rank 0 gets three batches, rank 1 two (the second all invalid)
SHARDS: Tuple[Tuple[int, ...], ...] = ((3, 2, 4), (1, 2))
EMPTY = (1, 1)  # (rank, batch index) whose targets are all invalid

Batch = Tuple[Tensor, Tensor, Tensor]


def make_batch(rank: int, index: int, size: int) -> Batch:
    """``(pred, target, mask)`` in float64; some images without valid pixels."""
    g = torch.Generator().manual_seed(1000 * rank + index)
    target = 0.5 + 25.0 * torch.rand(size, 1, HEIGHT, WIDTH, generator=g, dtype=torch.float64) ** 2
    pred = target * torch.exp(0.3 * torch.randn(size, 1, HEIGHT, WIDTH, generator=g, dtype=torch.float64))
    mask = torch.rand(size, 1, HEIGHT, WIDTH, generator=g) < 0.6
    if size > 1:
        mask[0] = False  # the first image of a multi-image batch has no valid pixel
    if (rank, index) == EMPTY:
        target = torch.zeros_like(target)
    return pred, target, mask


def batches(rank: int) -> List[Batch]:
    return [make_batch(rank, i, n) for i, n in enumerate(SHARDS[rank])]


def worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    """One rank: accumulate its batches, ``compute()`` (synchronized), save the result and local sums."""
    from depthloss.metrics import DepthMetricsTM

    torch.set_num_threads(1)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        metric = DepthMetricsTM(**CONFIG)
        for pred, target, mask in batches(rank):
            metric.update(pred, target, mask)
        synced = metric.compute()
        local = {k: v.clone() for k, v in metric.sums().items()}  # unsynced again after compute()
        torch.save({"synced": synced, "local": local}, Path(out_dir) / f"rank{rank}.pt")
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()
