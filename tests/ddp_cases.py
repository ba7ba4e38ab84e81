"""The cases of the DistributedDataParallel tests and the code each spawned rank runs.

Kept out of ``test_distributed.py`` so that the spawned processes import only this module
(spawn pickles the worker by reference). The parent process and every rank build the same
inputs and the same initial model from fixed seeds; each rank takes its shard of the batch.

Two kinds of cases:

- **per-image** (``scope="image"``, every registered loss): the batch is split evenly, every
  image has valid pixels; DDP's gradient average must equal the single-process gradient.
- **global** (``scope="global"``): the batch is split unevenly (3 + 1 images), optionally
  with an all-invalid shard; every rank's loss must equal the single-process
  ``scope="batch"`` loss of the whole batch, and DDP's averaged gradient its gradient.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

import depthloss
import depthloss.functional as DF

WORLD_SIZE = 2
BATCH = 4
HEIGHT, WIDTH = 20, 28
PROGRESS = 0.3
MIN_DEPTH, MAX_DEPTH = 0.25, 80.0

# A loss call: (pred_inv, target_inv, weights, scope) -> scalar loss
LossCall = Callable[[Tensor, Tensor, Tensor, str], Tensor]


@dataclass(frozen=True)
class Case:
    """One loss evaluated on a batch split over the ranks (``shards``: images per rank)."""

    name: str
    call: LossCall = field(compare=False)
    scope: str  # what the ranks use; the single-process reference uses "batch" for "global"
    shards: Tuple[int, ...]
    empty_rank: Optional[int] = None  # this rank's shard has no valid pixels

    @property
    def reference_scope(self) -> str:
        return "batch" if self.scope == "global" else self.scope

    def bounds(self, rank: int) -> Tuple[int, int]:
        start = sum(self.shards[:rank])
        return start, start + self.shards[rank]


#: required keyword inputs of ``forward`` (gaussian-nll, laplace-nll, confidence): constant maps like
#: ``pred``, so a rank's shard sees the values of the whole batch
REQUIRED_INPUTS = {"log_scale": -1.0, "confidence": 0.5}


def _intrinsics(pred: Tensor) -> Tensor:
    """Pinhole ``(B, 3, 3)`` intrinsics for the losses that take ``K`` (focal max(H, W), centred)."""
    h, w = pred.shape[-2], pred.shape[-1]
    f = float(max(h, w))
    k = torch.tensor([[f, 0.0, (w - 1) / 2.0], [0.0, f, (h - 1) / 2.0], [0.0, 0.0, 1.0]], dtype=pred.dtype)
    return k.to(pred.device).expand(pred.shape[0], 3, 3)


def _module(name: str, **kwargs: Any) -> LossCall:
    info = depthloss.loss_info(name)
    if "seed" in info.defaults:  # sampling losses (ranking, vnl): seeded draws are per image
        kwargs = {"seed": 0, **kwargs}

    def call(pred: Tensor, target: Tensor, weights: Tensor, scope: str) -> Tensor:
        module = depthloss.get_loss(name, scope=scope, input_space="inverse", **kwargs)
        extra = {k: torch.full_like(pred.detach(), v) for k, v in REQUIRED_INPUTS.items() if k in info.inputs}
        if "K" in info.inputs:
            extra["K"] = _intrinsics(pred)
        if "samples" in info.inputs:  # hdn-random: the same contexts for every image, on every rank
            extra["samples"] = torch.rand((1, 4, 6), generator=torch.Generator().manual_seed(0)).to(pred)
        if module.input_layout == "video":  # the rows of each image as the frames of a clip: (B, H, 1, W)
            pred, target = (x.reshape(x.shape[0], x.shape[-2], 1, x.shape[-1]) for x in (pred, target))
        return module(pred, target, progress=PROGRESS, **extra)

    return call


def _weighted_ssi(pred: Tensor, target: Tensor, weights: Tensor, scope: str) -> Tensor:
    mask = target > 0
    return DF.ssi(pred, target, mask, weights=weights, scope=scope)


def _explicit_weights_near_field(pred: Tensor, target: Tensor, weights: Tensor, scope: str) -> Tensor:
    return depthloss.get_loss("near-field-ssi-silog", scope=scope, input_space="inverse")(
        pred, target, progress=PROGRESS, weights=weights
    )


def _weighted_moments(pred: Tensor, target: Tensor, weights: Tensor, scope: str) -> Tensor:
    mask = target > 0
    return (
        DF.masked_var(pred - target, mask, weights, scope=scope) + DF.masked_mean(pred, mask, weights, scope=scope)
    ).mean()


def per_image_cases() -> List[Case]:
    even = (BATCH // WORLD_SIZE,) * WORLD_SIZE
    return [Case(f"image/{name}", _module(name, **_trainable(name)), "image", even) for name in depthloss.list_losses()]


def _trainable(name: str) -> Dict[str, Any]:
    """Losses that detach the prediction by default (confidence) let it train here: a signal to compare."""
    return {"detach_pred": False} if depthloss.loss_info(name).defaults.get("detach_pred") is True else {}


def global_cases() -> List[Case]:
    uneven = (3, 1)
    calls: Dict[str, LossCall] = {
        "ssi": _module("ssi"),
        "ssi-weighted": _weighted_ssi,
        "silog": _module("silog", min_depth=MIN_DEPTH, max_depth=MAX_DEPTH),
        "ssi-silog": _module("ssi-silog"),
        "near-field-ssi-silog": _module("near-field-ssi-silog"),
        "near-field-ssi-silog-scaled-diff-batch": _module(
            "near-field-ssi-silog", ssi_weighting="scaled-diff", ssi_weight_norm="batch"
        ),
        "near-field-ssi-silog-split": _module("near-field-ssi-silog", combine="split"),
        "near-field-ssi-silog-explicit-weights": _explicit_weights_near_field,
        "masked-mean-var-weighted": _weighted_moments,
    }
    cases = [Case(f"global/{k}", v, "global", uneven) for k, v in calls.items()]
    for k in ("ssi", "silog", "ssi-silog", "near-field-ssi-silog"):
        cases.append(Case(f"global-empty-shard/{k}", calls[k], "global", uneven, empty_rank=1))
    return cases


def all_cases() -> List[Case]:
    return per_image_cases() + global_cases()


class TinyNet(nn.Module):
    """A 3x3 convolution to inverse depth in ``[1 / MAX_DEPTH, 1 / MIN_DEPTH]``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 3, padding=1)

    def forward(self, image: Tensor) -> Tensor:
        low, high = 1.0 / MAX_DEPTH, 1.0 / MIN_DEPTH
        return low + (high - low) * torch.sigmoid(self.conv(image))


def make_model() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet()


def make_batch(case: Case) -> Tuple[Tensor, Tensor, Tensor]:
    """``(images, target_inv, weights)`` of the whole batch: ~30% valid pixels, at least 8 per image."""
    g = torch.Generator().manual_seed(1234)
    images = torch.rand(BATCH, 3, HEIGHT, WIDTH, generator=g)
    depth = 0.3 + 20.0 * torch.rand(BATCH, 1, HEIGHT, WIDTH, generator=g) ** 2
    valid = torch.rand(BATCH, 1, HEIGHT, WIDTH, generator=g) < 0.3
    valid[..., :2, :4] = True
    weights = 0.5 + torch.rand(BATCH, 1, HEIGHT, WIDTH, generator=g)
    if case.empty_rank is not None:
        start, stop = case.bounds(case.empty_rank)
        valid[start:stop] = False
    target = torch.where(valid, 1.0 / depth, torch.zeros_like(depth))
    return images, target, weights


def evaluate(
    case: Case, model: nn.Module, rank: Optional[int], scope: Optional[str] = None
) -> Tuple[Tensor, List[Tensor]]:
    """Loss and parameter gradients: of the whole batch (``rank=None``) or of one rank's shard.

    The whole batch uses ``scope`` if given, else the case's reference scope.
    """
    images, target, weights = make_batch(case)
    scope = scope or case.reference_scope
    if rank is not None:
        start, stop = case.bounds(rank)
        images, target, weights, scope = images[start:stop], target[start:stop], weights[start:stop], case.scope
    for p in model.parameters():
        p.grad = None
    loss = case.call(model(images), target, weights, scope)
    loss.backward()
    inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    return loss.detach(), [p.grad.detach().clone() for p in inner.parameters()]


def worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    """One rank: run every case through DDP and save ``{case: (loss, grads)}``."""
    torch.set_num_threads(1)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        ddp = nn.parallel.DistributedDataParallel(make_model())
        results = {case.name: evaluate(case, ddp, rank) for case in all_cases()}
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()
