"""Train a small depth network on synthetic scenes with any registered loss.

``python -m depthloss demo [--loss NAME] [--steps N] [--compare a,b,c] [--seed S]
[--sparse] [--plot PATH]`` trains a tiny encoder-decoder with four inverse-depth outputs
(finest first) on procedural scenes (:mod:`depthloss.synthetic`) through
:class:`~depthloss.nn.SupervisedLoss`, passing ``progress = step / steps``, then evaluates
on held-out scenes with :func:`depthloss.metrics.depth_metrics` (including near/far
``abs_rel`` at 1 m) next to a constant-depth baseline. ``--compare`` trains several losses
with the same seed, data and initial weights and prints them side by side.

Losses that are invariant to scale and shift (``loss_info(name).invariances``) only learn
depth up to those, so their predictions are evaluated after per-image least-squares
alignment in disparity (``align="lsq"``, the MiDaS protocol); the others are evaluated as
metric depth. The constant baseline is evaluated under the same protocol.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from depthloss import synthetic
from depthloss.functional.statistics import masked_median
from depthloss.metrics import depth_metrics
from depthloss.nn.supervised import SupervisedLoss
from depthloss.registry import loss_info, parse_loss_name

__all__ = ["DemoConfig", "DemoResult", "TinyDepthNet", "format_table", "run_demo", "train_one"]

MIN_DEPTH = 0.25
MAX_DEPTH = 80.0
NEAR_THRESHOLD = 1.0
REPORTED = ("abs_rel", "near/abs_rel", "far/abs_rel", "rmse", "d1")


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ELU(inplace=True))


class TinyDepthNet(nn.Module):
    """A four-level encoder-decoder predicting inverse depth at 1, 1/2, 1/4 and 1/8 scale.

    Each head maps a sigmoid to ``[1 / max_depth, 1 / min_depth]`` (the packnet-sfm /
    Monodepth2 disparity parameterization). Outputs are returned finest first.

    Example:
        >>> net = TinyDepthNet()
        >>> [tuple(o.shape) for o in net(torch.rand(2, 3, 64, 96))]
        [(2, 1, 64, 96), (2, 1, 32, 48), (2, 1, 16, 24), (2, 1, 8, 12)]
    """

    def __init__(self, channels: Sequence[int] = (8, 16, 32, 64), min_depth: float = MIN_DEPTH, max_depth: float = MAX_DEPTH):
        super().__init__()
        c = list(channels)
        self.stem = nn.Sequential(_conv(3, c[0]), _conv(c[0], c[0]))
        self.down = nn.ModuleList(nn.Sequential(_conv(c[i], c[i + 1], 2), _conv(c[i + 1], c[i + 1])) for i in range(3))
        self.up = nn.ModuleList(_conv(c[i + 1] + c[i], c[i]) for i in range(3))
        self.heads = nn.ModuleList([nn.Conv2d(c[i], 1, 3, 1, 1) for i in range(3)] + [nn.Conv2d(c[3], 1, 3, 1, 1)])
        self.inv_min, self.inv_max = 1.0 / max_depth, 1.0 / min_depth

    def _to_inverse(self, logits: Tensor) -> Tensor:
        return self.inv_min + (self.inv_max - self.inv_min) * torch.sigmoid(logits)

    def forward(self, image: Tensor) -> List[Tensor]:
        skips = [self.stem(image)]
        for block in self.down:
            skips.append(block(skips[-1]))
        x = skips[-1]
        outputs = [self._to_inverse(self.heads[3](x))]
        for i in (2, 1, 0):
            x = F.interpolate(x, size=skips[i].shape[-2:], mode="nearest")
            x = self.up[i](torch.cat([x, skips[i]], dim=1))
            outputs.append(self._to_inverse(self.heads[i](x)))
        return outputs[::-1]


@dataclass
class DemoConfig:
    """Settings of a demo run (the command-line flags)."""

    steps: int = 600
    batch_size: int = 8
    channels: Tuple[int, ...] = (8, 16, 32, 64)
    height: int = 96
    width: int = 160
    train_scenes: int = 384
    test_scenes: int = 48
    lr: float = 2e-3
    seed: int = 0
    sparse: bool = False
    log_every: int = 50


@dataclass
class DemoResult:
    """One trained loss: its metrics on the held-out scenes and the training history."""

    loss: str
    align: str
    metrics: Dict[str, float]
    history: Dict[str, List[float]] = field(default_factory=dict)
    seconds: float = 0.0


def _evaluation_align(name: str) -> str:
    return "lsq" if {"scale", "shift"} <= set(loss_info(name).invariances) else "none"


def _data(cfg: DemoConfig) -> Dict[str, synthetic.SceneBatch]:
    kwargs = dict(height=cfg.height, width=cfg.width, seed=cfg.seed, max_depth=MAX_DEPTH)
    return {
        "train": synthetic.make_scenes(cfg.train_scenes, **kwargs),
        "test": synthetic.make_scenes(cfg.test_scenes, offset=cfg.train_scenes, **kwargs),
    }


def _target(scenes: synthetic.SceneBatch, sparse: bool) -> Tensor:
    """Inverse-depth ground truth (0 = no return): LiDAR-like sparse or dense."""
    depth = scenes.sparse_depth if sparse else scenes.depth
    valid = (scenes.sparse_valid if sparse else scenes.valid) & (depth >= MIN_DEPTH)
    return torch.where(valid, 1.0 / depth.clamp(min=MIN_DEPTH), torch.zeros_like(depth))


def _progress_printer(total: int, label: str, every: int) -> Callable[[int, Tensor], None]:
    try:
        from tqdm.auto import tqdm  # optional
    except ImportError:
        tqdm = None
    if tqdm is not None:
        bar = tqdm(total=total, desc=label, leave=False, file=sys.stderr)

        def update(step: int, loss: Tensor) -> None:
            bar.update(1)
            if (step + 1) % every == 0:
                bar.set_postfix(loss=f"{float(loss):.4f}")
            if step + 1 == total:
                bar.close()

        return update
    start = time.perf_counter()

    def report(step: int, loss: Tensor) -> None:
        if (step + 1) % every == 0 or step + 1 == total:
            elapsed = time.perf_counter() - start
            print(f"  [{label}] step {step + 1:4d}/{total}  loss {float(loss):.4f}  {elapsed:5.1f}s", file=sys.stderr)

    return report


@torch.no_grad()
def evaluate(predict: Callable[[Tensor], Tensor], scenes: synthetic.SceneBatch, align: str, batch_size: int = 16) -> Dict[str, float]:
    """Dataset metrics (per-image, averaged over images) of ``predict(image) -> depth``."""
    totals: Dict[str, float] = {}
    counts: Dict[str, float] = {}
    for i in range(0, scenes.image.shape[0], batch_size):
        sl = slice(i, i + batch_size)
        pred = predict(scenes.image[sl])
        m = depth_metrics(
            pred, scenes.depth[sl], scenes.valid[sl], min_depth=MIN_DEPTH, max_depth=MAX_DEPTH,
            align=None if align == "none" else align, near_threshold=NEAR_THRESHOLD,
        )  # fmt: skip
        for key in REPORTED:
            prefix = key.split("/")[0] + "/" if "/" in key else ""
            n = float(m[prefix + "count"])
            totals[key] = totals.get(key, 0.0) + float(m[key]) * n
            counts[key] = counts.get(key, 0.0) + n
    return {k: totals[k] / counts[k] if counts[k] else math.nan for k in REPORTED}


def train_one(name: str, cfg: DemoConfig, data: Optional[Dict[str, synthetic.SceneBatch]] = None) -> DemoResult:
    """Train a fresh :class:`TinyDepthNet` with loss ``name`` and evaluate it."""
    parse_loss_name(name)
    data = data or _data(cfg)
    method = name if not cfg.sparse or name.startswith("sparse-") else f"sparse-{name}"
    torch.manual_seed(cfg.seed)
    net = TinyDepthNet(cfg.channels)
    criterion = SupervisedLoss(method, num_scales=4)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    train = data["train"]
    target_all = _target(train, cfg.sparse)
    g = torch.Generator().manual_seed(cfg.seed)
    report = _progress_printer(cfg.steps, name, cfg.log_every)
    recorded: Dict[str, List[Tensor]] = {"loss": []}
    progress = torch.zeros(())
    start = time.perf_counter()
    net.train()
    for step in range(cfg.steps):
        idx = torch.randint(0, train.image.shape[0], (cfg.batch_size,), generator=g)
        progress.fill_(step / max(1, cfg.steps - 1))
        out = criterion(net(train.image[idx]), target_all[idx], progress=progress)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        sched.step()
        recorded["loss"].append(out["metrics"]["loss"])  # detached tensors: no host sync per step
        for key in ("alpha_t", "threshold_t", "dynamic_ssi_weight", "level0_weight"):
            metric = out["metrics"].get(f"scale0/{key}")
            if metric is not None:
                recorded.setdefault(key, []).append(metric)
        report(step, recorded["loss"][-1])
    history = {k: torch.stack(v).tolist() for k, v in recorded.items()}  # sync-ok: once, after training
    net.eval()
    align = _evaluation_align(name)
    metrics = evaluate(lambda image: 1.0 / net(image)[0], data["test"], align)
    return DemoResult(name, align, metrics, history, time.perf_counter() - start)


def constant_baseline(cfg: DemoConfig, data: Dict[str, synthetic.SceneBatch], align: str) -> DemoResult:
    """Predict the training set's median valid depth everywhere."""
    train = data["train"]
    median = float(masked_median(train.depth, train.valid, scope="batch")[0])
    metrics = evaluate(lambda image: torch.full_like(image[:, :1], median), data["test"], align)
    return DemoResult(f"constant {median:.1f} m", align, metrics)


def format_table(results: Sequence[DemoResult]) -> str:
    """Markdown table of the reported metrics."""
    head = "| loss | eval | abs_rel | near abs_rel (<1 m) | far abs_rel | rmse (m) | δ<1.25 | train s |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in results:
        m = r.metrics
        secs = f"{r.seconds:.0f}" if r.seconds else "–"
        lines.append(
            f"| {r.loss} | {r.align} | {m['abs_rel']:.3f} | {m['near/abs_rel']:.3f} | {m['far/abs_rel']:.3f} "
            f"| {m['rmse']:.2f} | {m['d1']:.3f} | {secs} |"
        )
    return "\n".join(lines)


def plot_history(results: Sequence[DemoResult], path: str) -> bool:
    """Loss curves and schedules to a PNG (needs matplotlib; returns False without it)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'depthloss[plot]'): no plot written", file=sys.stderr)
        return False
    fig, (ax_loss, ax_sched) = plt.subplots(1, 2, figsize=(12, 4))
    for r in results:
        losses = torch.tensor(r.history.get("loss", []))
        if losses.numel():
            k = max(1, losses.numel() // 50)
            smooth = losses.unfold(0, k, k).mean(1) if losses.numel() >= k else losses
            ax_loss.plot(torch.arange(smooth.numel()) * k, smooth / smooth[0], label=r.loss)
        for key, values in r.history.items():
            if key != "loss":
                ax_sched.plot(values, label=f"{r.loss}: {key}")
    ax_loss.set(title="training loss (relative to start)", xlabel="step", yscale="log")
    ax_sched.set(title="schedules vs step", xlabel="step")
    ax_loss.legend(fontsize=8)
    if ax_sched.lines:
        ax_sched.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def run_demo(losses: Sequence[str], cfg: DemoConfig, plot: Optional[str] = None) -> List[DemoResult]:
    """Train and evaluate each loss on the same data; print and return the results."""
    for name in losses:
        parse_loss_name(name)
    data = _data(cfg)
    kind = "sparse LiDAR-like" if cfg.sparse else "dense"
    print(
        f"depthloss demo: {cfg.train_scenes} train / {cfg.test_scenes} test scenes {cfg.height}x{cfg.width}, "
        f"{kind} targets, {cfg.steps} steps, batch {cfg.batch_size}, seed {cfg.seed}"
    )
    results = [train_one(name, cfg, data) for name in losses]
    baselines = [constant_baseline(cfg, data, align) for align in sorted({r.align for r in results})]
    print(format_table(results + baselines))
    if plot:
        plot_history(results, plot)
    return results + baselines


def main(argv: Optional[Sequence[str]] = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m depthloss demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_from_args(args)


def add_arguments(parser: Any) -> None:
    defaults = DemoConfig()
    parser.add_argument("--loss", default="scale-adaptive", help="registered loss name (default: scale-adaptive)")
    parser.add_argument("--compare", default=None, help="comma-separated losses trained side by side")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--sparse", action="store_true", help="supervise with LiDAR-like sparse depth")
    parser.add_argument("--plot", default=None, help="save loss curves and schedules to this PNG (matplotlib)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")


def run_from_args(args: Any) -> int:
    if args.steps < 1:
        raise SystemExit("--steps must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    losses = [s.strip() for s in args.compare.split(",") if s.strip()] if args.compare else [args.loss]
    cfg = DemoConfig(steps=args.steps, batch_size=args.batch_size, seed=args.seed, sparse=args.sparse)
    run_demo(losses, cfg, plot=args.plot)
    return 0
