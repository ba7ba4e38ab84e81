"""Data-parallel training with a depthloss loss and DistributedDataParallel.

Two CPU processes (gloo backend)::

    torchrun --nproc_per_node=2 examples/ddp_train.py
    torchrun --nproc_per_node=2 examples/ddp_train.py --loss ssi-silog --scope global --steps 100

One process per GPU (nccl backend)::

    torchrun --nproc_per_node=2 examples/ddp_train.py --device cuda

Without torchrun the script runs as a world of one process (gloo on a free loopback port)::

    python examples/ddp_train.py --steps 20

Every rank renders its own shard of synthetic scenes (:func:`depthloss.synthetic.make_scenes`
with ``offset = rank * scenes_per_rank``, so no two ranks see the same scene), trains a
:class:`depthloss.demo.TinyDepthNet` wrapped in DistributedDataParallel with
:class:`depthloss.nn.SupervisedLoss` on its four inverse-depth outputs, and passes
``progress = step / (steps - 1)`` as a 0-dim tensor (no recompilation, no host sync).
Rank 0 prints the loss averaged over the ranks every 10 steps.

``--scope`` sets how the loss pools its statistics: ``image`` (per image; the same loss
whatever the number of ranks), ``batch`` (over the local batch of each rank) or ``global``
(over the batches of all ranks, all-reduced; for losses that support it, see
``depthloss.loss_info(name).scopes``). Names with the ``sparse-`` prefix train on
LiDAR-like sparse depth instead of dense depth.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from depthloss import synthetic
from depthloss.demo import TinyDepthNet
from depthloss.nn import SupervisedLoss
from depthloss.registry import parse_loss_name

MIN_DEPTH = 0.25  # metres; the network's inverse-depth range is [1 / MAX_DEPTH, 1 / MIN_DEPTH]
MAX_DEPTH = 80.0
LOG_EVERY = 10
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv: arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The parsed flags, with ``criterion``: the :class:`SupervisedLoss` they describe.
    """
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loss", default="ssi-silog", help="registered loss name (default: ssi-silog)")
    parser.add_argument("--steps", type=int, default=50, help="optimizer steps (default: 50)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per rank and step (default: 4)")
    parser.add_argument(
        "--scope",
        choices=("image", "batch", "global"),
        default="image",
        help="statistics per image, per local batch or over all ranks (default: image)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the scenes and the initial weights (default: 0)")
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cpu (gloo) or cuda (nccl, one GPU per process) (default: cpu)",
    )
    parser.add_argument("--scenes-per-rank", type=int, default=64, help="training scenes per rank (default: 64)")
    parser.add_argument("--height", type=int, default=96, help="image height (default: 96)")
    parser.add_argument("--width", type=int, default=160, help="image width (default: 160)")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default: 2e-3)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads per process (default: torch's; torchrun sets OMP_NUM_THREADS=1)",
    )
    args = parser.parse_args(argv)
    for flag in ("steps", "batch_size", "scenes_per_rank", "height", "width", "threads"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda needs a CUDA build of torch and a visible GPU")
    try:  # fail before any process group exists: unknown name, or a scope the loss lacks
        # the network predicts inverse depth (TinyDepthNet): say so, input_space is required
        args.criterion = SupervisedLoss(args.loss, num_scales=4, scope=args.scope, input_space="inverse")
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    return args


def _free_port() -> int:
    """A TCP port on the loopback interface that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init_distributed(device: str) -> torch.device:
    """Join the process group that torchrun describes, or form a world of one process.

    Args:
        device: ``"cpu"`` (gloo backend) or ``"cuda"`` (nccl backend, GPU ``LOCAL_RANK``).

    Returns:
        The device this rank computes on.
    """
    if not all(var in os.environ for var in TORCHRUN_VARS):  # plain `python ddp_train.py`
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(_free_port()))  # fmt: skip
    if device == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        dist.init_process_group("nccl")
        return torch.device("cuda", torch.cuda.current_device())
    dist.init_process_group("gloo")
    return torch.device("cpu")


def inverse_depth_target(scenes: synthetic.SceneBatch, sparse: bool) -> Tensor:
    """Inverse-depth ground truth with 0 where there is none (sky, out of range, no LiDAR return).

    Args:
        scenes: rendered scenes.
        sparse: use the LiDAR-like sparse depth instead of the dense depth.

    Returns:
        ``(B, 1, H, W)`` inverse depth.
    """
    depth = scenes.sparse_depth if sparse else scenes.depth
    valid = (scenes.sparse_valid if sparse else scenes.valid) & (depth >= MIN_DEPTH)
    return torch.where(valid, 1.0 / depth.clamp(min=MIN_DEPTH), torch.zeros_like(depth))


def train(args: argparse.Namespace, device: torch.device) -> None:
    """Train on this rank's shard; rank 0 prints the loss averaged over the ranks.

    Args:
        args: the parsed flags (from :func:`parse_args`).
        device: the device of this rank.
    """
    rank, world = dist.get_rank(), dist.get_world_size()
    _, sparse = parse_loss_name(args.loss)
    criterion: SupervisedLoss = args.criterion.to(device)

    shard = synthetic.make_scenes(args.scenes_per_rank, args.height, args.width, seed=args.seed,
                                  offset=rank * args.scenes_per_rank, max_depth=MAX_DEPTH)  # fmt: skip
    images = shard.image.to(device)
    targets = inverse_depth_target(shard, sparse).to(device)

    torch.manual_seed(args.seed)  # same initial weights everywhere (DDP also broadcasts rank 0's)
    model = DistributedDataParallel(
        TinyDepthNet(min_depth=MIN_DEPTH, max_depth=MAX_DEPTH).to(device),
        device_ids=[device.index] if device.type == "cuda" else None,
    )
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    picker = torch.Generator().manual_seed(args.seed + rank)
    progress = torch.zeros((), device=device)
    if rank == 0:
        print(f"depthloss DDP: world size {world}, backend {dist.get_backend()}, device {device.type}, "
              f"loss {args.loss!r}, scope {args.scope!r}, batch {args.batch_size} per rank, {args.steps} steps",
              flush=True)  # fmt: skip

    model.train()
    for step in range(args.steps):
        idx = torch.randint(0, args.scenes_per_rank, (args.batch_size,), generator=picker).to(device)
        progress.fill_(step / max(1, args.steps - 1))
        out = criterion(model(images[idx]), targets[idx], progress=progress)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()  # DDP averages the gradients over the ranks
        opt.step()
        if (step + 1) % LOG_EVERY == 0 or step == 0 or step + 1 == args.steps:
            loss = out["loss"].detach().clone()
            dist.all_reduce(loss)  # every rank takes part; only rank 0 prints
            if rank == 0:
                print(f"step {step + 1:4d}/{args.steps}  loss {float(loss) / world:.4f}", flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the example.

    Args:
        argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = init_distributed(args.device)
    try:
        train(args, device)
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
