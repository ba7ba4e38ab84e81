"""Train the demo depth network with PyTorch Lightning and any registered depthloss loss.

Needs the extras: ``pip install "depthloss[lightning]"`` (Lightning and torchmetrics)::

    python examples/lightning_train.py                              # ssi-silog, CPU
    python examples/lightning_train.py --loss sparse-scale-adaptive --max-steps 300
    python examples/lightning_train.py --accelerator gpu --devices 2  # DDP, one GPU per process

A :class:`DepthModule` (a ``LightningModule``) wraps :class:`depthloss.demo.TinyDepthNet`
(four inverse-depth outputs, finest first) and :class:`depthloss.nn.SupervisedLoss` built
from the loss name (``sparse-`` prefix: LiDAR-like sparse targets). Every training step sets

    ``progress = trainer.global_step / (trainer.estimated_stepping_batches - 1)``

the trainer's optimizer step counted over all epochs (epoch ``e``, step ``i`` of ``n`` per
epoch: ``e * n + i``) out of the run's total, which Lightning derives from ``max_steps`` or
``max_epochs`` (and gradient accumulation), so schedules go from 0 on the first step to 1
on the last whichever bound the run has. It is passed as a 0-dim tensor (no recompilation
under ``torch.compile``, no host sync). Validation accumulates :class:`depthloss.metrics.DepthMetricsTM`, a torchmetrics
``Metric`` whose sufficient statistics torchmetrics sums across DDP processes, and logs
``val/abs_rel``, ``val/rmse``, ``val/d1`` and the near-field ``val/near/abs_rel``. Losses
invariant to scale and shift are evaluated after least-squares alignment in disparity
(``align="lsq"``), as in ``python -m depthloss demo``.

Scenes are procedural (:func:`depthloss.synthetic.make_scenes`): nothing is downloaded.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

try:
    import lightning.pytorch as pl
except ImportError:  # the standalone package
    try:
        import pytorch_lightning as pl  # type: ignore[no-redef]
    except ImportError:
        sys.exit('this example needs Lightning and torchmetrics: pip install "depthloss[lightning]"')

from depthloss import synthetic
from depthloss.demo import TinyDepthNet
from depthloss.metrics import DepthMetricsTM
from depthloss.nn import SupervisedLoss
from depthloss.registry import loss_info, parse_loss_name

MIN_DEPTH = 0.25  # metres; the network's inverse-depth range is [1 / MAX_DEPTH, 1 / MIN_DEPTH]
MAX_DEPTH = 80.0
NEAR_THRESHOLD = 1.0
LOGGED = ("abs_rel", "rmse", "d1", "near/abs_rel")


def inverse_depth_target(scenes: synthetic.SceneBatch, sparse: bool) -> Tensor:
    """Inverse-depth ground truth, 0 where there is none (sky, out of range, no LiDAR return)."""
    depth = scenes.sparse_depth if sparse else scenes.depth
    valid = (scenes.sparse_valid if sparse else scenes.valid) & (depth >= MIN_DEPTH)
    return torch.where(valid, 1.0 / depth.clamp(min=MIN_DEPTH), torch.zeros_like(depth))


def training_progress(step: int, total_steps: float) -> float:
    """Progress in [0, 1] of optimizer step ``step`` (from 0) of ``total_steps``: 0 first, 1 last.

    ``total_steps`` may be ``inf`` (a run bounded by neither steps nor epochs): progress 0.

    Example (two epochs of two steps):
        >>> [training_progress(epoch * 2 + i, 4) for epoch in range(2) for i in range(2)]
        [0.0, 0.3333333333333333, 0.6666666666666666, 1.0]
    """
    if not math.isfinite(total_steps):
        return 0.0
    return min(1.0, step / max(1.0, total_steps - 1))


class DepthModule(pl.LightningModule):
    """TinyDepthNet trained with a registered depthloss loss; validated with DepthMetricsTM.

    Args:
        loss: registered loss name (``sparse-`` prefix for LiDAR-like sparse targets).
        lr: Adam learning rate.
        num_scales: prediction scales supervised (at most 4, the network's outputs).
    """

    progress: Tensor  # a 0-dim buffer holding the current step's progress

    def __init__(self, loss: str = "ssi-silog", lr: float = 2e-3, num_scales: int = 4) -> None:
        super().__init__()
        self.save_hyperparameters()
        name, self.sparse = parse_loss_name(loss)
        self.net = TinyDepthNet(min_depth=MIN_DEPTH, max_depth=MAX_DEPTH)
        # the network predicts inverse depth: say so (input_space is required by the losses)
        self.criterion = SupervisedLoss(loss, num_scales=num_scales, input_space="inverse")
        invariant = {"scale", "shift"} <= set(loss_info(name).invariances)
        self.align = "lsq" if invariant else None
        self.val_metrics = DepthMetricsTM(
            min_depth=MIN_DEPTH, max_depth=MAX_DEPTH, align=self.align, near_threshold=NEAR_THRESHOLD
        )
        self.register_buffer("progress", torch.zeros(()), persistent=False)
        self.progress_history: List[Tuple[int, float]] = []  # (epoch, progress) of every training step

    def forward(self, image: Tensor) -> List[Tensor]:
        """Inverse depth at 1, 1/2, 1/4 and 1/8 resolution."""
        out: List[Tensor] = self.net(image)
        return out

    def training_step(self, batch: Tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, target = batch
        p = training_progress(self.trainer.global_step, self.trainer.estimated_stepping_batches)
        self.progress.fill_(p)  # in place: one 0-dim tensor for the whole run
        self.progress_history.append((self.trainer.current_epoch, p))
        out: Dict[str, Any] = self.criterion(self(images), target, progress=self.progress)
        loss: Tensor = out["loss"]
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/progress", p)
        return loss

    def validation_step(self, batch: Tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        images, depth, valid = batch
        self.val_metrics.update(1.0 / self(images)[0], depth, valid)

    def on_validation_epoch_end(self) -> None:
        metrics = self.val_metrics.compute()  # synchronized across processes by torchmetrics
        self.log_dict({f"val/{k}": metrics[k] for k in LOGGED})
        self.val_metrics.reset()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams["lr"])


def make_loaders(
    sparse: bool, scenes: int, val_scenes: int, height: int, width: int, batch_size: int, seed: int
) -> Tuple[DataLoader[Tuple[Tensor, ...]], DataLoader[Tuple[Tensor, ...]]]:
    """Training loader ``(image, inverse target)`` and validation loader ``(image, depth, valid)``."""
    train = synthetic.make_scenes(scenes, height, width, seed=seed, max_depth=MAX_DEPTH)
    val = synthetic.make_scenes(val_scenes, height, width, seed=seed, offset=scenes, max_depth=MAX_DEPTH)
    train_ds = TensorDataset(train.image, inverse_depth_target(train, sparse))
    val_ds = TensorDataset(val.image, val.depth, val.valid)
    g = torch.Generator().manual_seed(seed)
    return (
        DataLoader(train_ds, batch_size=batch_size, shuffle=True, generator=g, drop_last=True),
        DataLoader(val_ds, batch_size=batch_size),
    )


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loss", default="ssi-silog", help="registered loss name (default: ssi-silog)")
    parser.add_argument("--max-steps", type=int, default=200, help="optimizer steps (default: 200)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per step and process (default: 8)")
    parser.add_argument("--scenes", type=int, default=128, help="training scenes (default: 128)")
    parser.add_argument("--val-scenes", type=int, default=32, help="validation scenes (default: 32)")
    parser.add_argument("--height", type=int, default=96, help="image height (default: 96)")
    parser.add_argument("--width", type=int, default=160, help="image width (default: 160)")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default: 2e-3)")
    parser.add_argument("--val-every", type=int, default=None, help="validate every N steps (default: at the end)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scenes and the weights (default: 0)")
    parser.add_argument("--accelerator", default="cpu", help="Lightning accelerator: cpu, gpu, auto (default: cpu)")
    parser.add_argument("--devices", default="1", help="Lightning devices (default: 1)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--root", default=None, help="Lightning's default_root_dir (logs; default: cwd)")
    args = parser.parse_args(argv)
    for flag in ("max_steps", "batch_size", "scenes", "val_scenes", "height", "width", "val_every", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1")
    if args.batch_size > args.scenes:
        parser.error("--batch-size must not exceed --scenes (the last partial batch is dropped)")
    try:
        parse_loss_name(args.loss)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    pl.seed_everything(args.seed, workers=True, verbose=False)
    model = DepthModule(args.loss, lr=args.lr)
    train_loader, val_loader = make_loaders(
        model.sparse, args.scenes, args.val_scenes, args.height, args.width, args.batch_size, args.seed
    )
    devices: Any = int(args.devices) if args.devices.isdigit() else args.devices
    trainer = pl.Trainer(
        max_steps=args.max_steps,
        max_epochs=-1,  # the run is bounded by max_steps
        val_check_interval=args.val_every or args.max_steps,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        accelerator=args.accelerator,
        devices=devices,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        default_root_dir=args.root,
    )
    trainer.fit(model, train_loader, val_loader)
    if trainer.is_global_zero:
        epochs = sorted({e for e, _ in model.progress_history})
        progress = " ".join(f"{p:.4f}" for _, p in model.progress_history)
        print(f"loss {args.loss!r}: {trainer.global_step} steps over epochs {epochs[0]}-{epochs[-1]}, "
              f"eval align {model.align or 'none'}")  # fmt: skip
        print(f"progress {progress}")
        logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
        for key in ["train/loss"] + [f"val/{k}" for k in LOGGED]:
            value = logged.get(key, math.nan)
            print(f"{key} {value:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
