"""Train a small depth network with any registered loss and see what it learned.

``python -m depthloss demo`` trains :class:`TinyDepthNet` (a 4-level encoder-decoder with
four inverse-depth outputs, finest first) on procedural street-like scenes
(:mod:`depthloss.synthetic`) through :class:`~depthloss.nn.SupervisedLoss`, passing
``progress = step / (steps - 1)``, and evaluates it on held-out scenes with
:func:`depthloss.metrics.depth_metrics` next to the same network before training and a
constant-depth baseline. The network sees only the image (plus the row index of each pixel);
the scenes carry the cues real photographs carry: ground-plane perspective from a fixed
camera mount, where objects touch the ground, known object sizes, texture density, occlusion
and haze.

``--compare a,b,c`` trains several losses with the same seed, data and initial weights;
``--sparse`` supervises with LiDAR-like scan lines instead of dense depth; ``--real`` does
depth completion on a real photograph (the Middlebury 2014 "Motorcycle" scene shipped with
scikit-image, :mod:`depthloss.real`); ``--plot PATH`` draws held-out predictions and the
held-out error over training (matplotlib).

Losses that are invariant to scale and shift (``loss_info(name).invariances``) only learn
depth up to those, so they, the untrained network and the constant baseline are evaluated
after per-image least-squares alignment in disparity (``eval = lsq``, the MiDaS protocol);
the others are evaluated as metric depth (``eval = metric``).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from depthloss import synthetic
from depthloss.functional import lsq_scale_shift
from depthloss.metrics import depth_metrics
from depthloss.nn.supervised import SupervisedLoss
from depthloss.registry import get_loss, loss_info

__all__ = [
    "DemoConfig",
    "DemoResult",
    "Task",
    "TinyDepthNet",
    "format_report",
    "format_table",
    "run_demo",
    "synthetic_task",
    "train_one",
    "verdict",
]

MIN_DEPTH = 0.25
MAX_DEPTH = 80.0
NEAR_THRESHOLD = 1.0
# (metrics key, column header); lower is better for every column but the δ ones
COLUMNS = (
    ("abs_rel", "abs_rel"),
    ("near/abs_rel", "near abs_rel"),
    ("far/abs_rel", "far abs_rel"),
    ("rmse", "rmse (m)"),
    ("d1", "δ<1.25"),
    ("near/d1", "near δ<1.25"),
    ("far/d1", "far δ<1.25"),
)
REPORTED = tuple(key for key, _ in COLUMNS)
HIGHER_IS_BETTER = frozenset({"d1", "near/d1", "far/d1"})
PLOT_HINT = "--plot needs matplotlib: python -m pip install 'depthloss[plot]' (or: python -m pip install matplotlib)"


# --- network -----------------------------------------------------------------------------


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ELU(inplace=True))


class TinyDepthNet(nn.Module):
    """A small encoder-decoder predicting inverse depth at 1, 1/2, 1/4 and 1/8 scale.

    The encoder has four stride-2 levels (1/2 to 1/16 of the input, two 3×3 convolutions
    each); the decoder goes back up to 1/2 with skip connections and a head per level; the
    full-resolution output is the 1/2 one upsampled and refined by two convolutions on the
    input. With ``coords=True`` the row index of each pixel (−1 at the top, 1 at the bottom)
    is an extra input channel, so the network can use where a pixel is in the image (the
    height-in-the-image cue) without having to infer it from the zero padding. Each head maps
    a sigmoid to ``[1 / max_depth, 1 / min_depth]`` (the packnet-sfm / Monodepth2 disparity
    parameterization); the head biases start at the middle of that range in log depth,
    ``sqrt(min_depth · max_depth)`` (4.5 m by default), so the untrained network predicts a
    plausible depth rather than the inverse-depth midpoint (0.5 m). Outputs are returned
    finest first.

    Args:
        channels: features per encoder level (4 values).
        min_depth: smallest depth the network can predict, metres.
        max_depth: largest depth the network can predict, metres.
        in_channels: input channels (3 for an RGB image; more for depth completion).
        coords: add the row-index channel.
        guess_channel: index of an input channel that holds a dense inverse-depth guess (for
            depth completion: the scan lines interpolated per column); the outputs then refine
            it: each head's logits are added to the guess's logit (area-pooled to the head's
            scale). The heads start at zero, so the untrained network reproduces the guess.

    Example:
        >>> net = TinyDepthNet()
        >>> [tuple(o.shape) for o in net(torch.rand(2, 3, 64, 96))]
        [(2, 1, 64, 96), (2, 1, 32, 48), (2, 1, 16, 24), (2, 1, 8, 12)]
    """

    def __init__(
        self,
        channels: Sequence[int] = (8, 16, 32, 64),
        min_depth: float = MIN_DEPTH,
        max_depth: float = MAX_DEPTH,
        *,
        in_channels: int = 3,
        coords: bool = True,
        guess_channel: Optional[int] = None,
    ) -> None:
        super().__init__()
        c = list(channels)
        if len(c) != 4:
            raise ValueError(f"channels must have 4 values, got {tuple(channels)}")
        if not 0 < min_depth < max_depth:
            raise ValueError(f"need 0 < min_depth < max_depth, got {min_depth}, {max_depth}")
        self.coords = coords
        if guess_channel is not None and not 0 <= guess_channel < in_channels:
            raise ValueError(f"guess_channel must index one of the {in_channels} input channels, got {guess_channel}")
        self.guess_channel = guess_channel
        cin = in_channels + (1 if coords else 0)
        self.encoder = nn.ModuleList(
            [nn.Sequential(_conv(cin, c[0], 2), _conv(c[0], c[0]))]
            + [nn.Sequential(_conv(c[i], c[i + 1], 2), _conv(c[i + 1], c[i + 1])) for i in range(3)]
        )
        self.up = nn.ModuleList(_conv(c[i + 1] + c[i], c[i]) for i in range(3))
        self.heads = nn.ModuleList(nn.Conv2d(c[i], 1, 3, 1, 1) for i in range(3))
        self.refine = nn.Sequential(_conv(1 + in_channels, c[0]), nn.Conv2d(c[0], 1, 3, 1, 1))
        self.inv_min, self.inv_max = 1.0 / max_depth, 1.0 / min_depth
        if guess_channel is not None:  # start as the guess: zero heads, so training learns a correction
            last = self.refine[-1]
            assert isinstance(last, nn.Conv2d)  # sync-ok: construction, not a forward
            for conv in [*self.heads, last]:
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
        else:  # start in the middle of the range in log depth, sqrt(min·max), not at 1/mean(1/depth)
            middle = math.sqrt(min_depth * max_depth)
            unit = (1.0 / middle - self.inv_min) / (self.inv_max - self.inv_min)
            for conv in self.heads:
                nn.init.constant_(conv.bias, math.log(unit / (1.0 - unit)))  # type: ignore[arg-type]
            nn.init.zeros_(self.refine[-1].bias)  # type: ignore[arg-type]

    def _to_inverse(self, logits: Tensor) -> Tensor:
        return self.inv_min + (self.inv_max - self.inv_min) * torch.sigmoid(logits)

    def forward(self, image: Tensor) -> List[Tensor]:
        x = image
        if self.coords:
            b, _, h, w = image.shape
            row = torch.linspace(-1.0, 1.0, h, device=image.device, dtype=image.dtype)
            x = torch.cat([image, row.view(1, 1, h, 1).expand(b, 1, h, w)], dim=1)
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        logits = []
        for i in (2, 1, 0):  # 1/8, 1/4, 1/2
            x = F.interpolate(x, size=skips[i].shape[-2:], mode="nearest")
            x = self.up[i](torch.cat([x, skips[i]], dim=1))
            logits.append(self.heads[i](x))
        half = F.interpolate(logits[-1], size=image.shape[-2:], mode="bilinear", align_corners=False)
        full = half + self.refine(torch.cat([half, image], dim=1))
        outs = [full, logits[2], logits[1], logits[0]]
        if self.guess_channel is not None:
            g = self.guess_channel
            prior = self._to_logit(image[:, g : g + 1])
            outs = [
                o + (prior if o.shape[-2:] == prior.shape[-2:] else F.adaptive_avg_pool2d(prior, o.shape[-2:]))
                for o in outs
            ]
        return [self._to_inverse(o) for o in outs]

    def _to_logit(self, inv: Tensor) -> Tensor:
        unit = ((inv - self.inv_min) / (self.inv_max - self.inv_min)).clamp(1e-4, 1.0 - 1e-4)
        return torch.log(unit) - torch.log1p(-unit)


# --- configuration and data --------------------------------------------------------------


@dataclass
class DemoConfig:
    """Settings of a demo run (the command-line flags)."""

    steps: int = 1000
    batch_size: int = 8
    channels: Tuple[int, ...] = (8, 16, 32, 64)
    height: int = 64
    width: int = 128
    train_scenes: int = 512
    test_scenes: int = 64
    lr: float = 3e-3
    seed: int = 0
    sparse: bool = False
    near_prob: float = 0.5
    lidar_fraction: float = 0.15
    eval_every: int = 0  # 0: ten evaluations along the run
    eval_scenes: int = 32  # held-out scenes evaluated along the run (all of them at the end)
    plot_scenes: int = 4
    progress: bool = True


@dataclass
class Task:
    """What a demo run trains on and is evaluated against.

    Attributes:
        kind: ``"synthetic"`` or ``"real"``.
        sample: ``sample(generator, batch_size) -> (inputs, inverse-depth target)``, the
            target 0 where there is no ground truth.
        test_inputs: network inputs of the held-out set.
        test_depth: dense metric depth of the held-out set (0 where there is none).
        test_valid: where ``test_depth`` holds ground truth.
        test_images: RGB of the held-out set, for the figure.
        constant: the constant baseline's depth (median of the training targets), metres.
        in_channels, coords, guess_channel: network input layout (:class:`TinyDepthNet`).
        min_depth, max_depth, near_threshold: network range and evaluation split, metres.
        lines: ``(label, text)`` pairs describing the data and target.
        loss_kwargs: extra keyword arguments per canonical loss name.
        baselines: further ``(name, predicted depth of the held-out set)`` rows.
        extra_plot: optional ``(title, map)`` column for the figure (e.g. the sparse input).
    """

    kind: str
    sample: Callable[[torch.Generator, int], Tuple[Tensor, Tensor]]
    test_inputs: Tensor
    test_depth: Tensor
    test_valid: Tensor
    test_images: Tensor
    constant: float
    in_channels: int = 3
    coords: bool = True
    guess_channel: Optional[int] = None
    min_depth: float = MIN_DEPTH
    max_depth: float = MAX_DEPTH
    near_threshold: float = NEAR_THRESHOLD
    lines: List[Tuple[str, str]] = field(default_factory=list)
    loss_kwargs: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    baselines: List[Tuple[str, Tensor]] = field(default_factory=list)
    extra_plot: Optional[Tuple[str, Tensor]] = None


@dataclass
class DemoResult:
    """One row of the table: its held-out metrics and, for a trained loss, its history.

    ``history`` holds ``"loss"`` (per step), ``"eval_step"`` and ``"eval/<metric>"`` (the
    held-out metrics along the run; step 0 is the untrained network).
    """

    loss: str
    align: str
    metrics: Dict[str, float]
    history: Dict[str, List[float]] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    kind: str = "trained"  # "trained", "untrained", "constant" or another baseline
    examples: Optional[Tensor] = None  # predicted depth of the first plot scenes
    hyper: Dict[str, Any] = field(default_factory=dict)


def _inverse_target(depth: Tensor, valid: Tensor, min_depth: float) -> Tensor:
    ok = valid & (depth >= min_depth)
    return torch.where(ok, 1.0 / depth.clamp(min=min_depth), torch.zeros_like(depth))


def synthetic_task(cfg: DemoConfig) -> Task:
    """Training and held-out scenes of :mod:`depthloss.synthetic` (different scenes of one seed)."""
    kwargs: Dict[str, Any] = {
        "height": cfg.height, "width": cfg.width, "seed": cfg.seed, "max_depth": MAX_DEPTH,
        "near_prob": cfg.near_prob, "lidar_fraction": cfg.lidar_fraction,
    }  # fmt: skip
    train = synthetic.make_scenes(cfg.train_scenes, **kwargs)
    test = synthetic.make_scenes(cfg.test_scenes, offset=cfg.train_scenes, **kwargs)
    depth = train.sparse_depth if cfg.sparse else train.depth
    valid = train.sparse_valid if cfg.sparse else train.valid
    target = _inverse_target(depth, valid, MIN_DEPTH)
    images = train.image.contiguous(memory_format=torch.channels_last)
    n = cfg.train_scenes

    def sample(g: torch.Generator, batch: int) -> Tuple[Tensor, Tensor]:
        idx = torch.randint(0, n, (batch,), generator=g)
        return images[idx], target[idx]

    constant = float(torch.quantile(depth[valid & (depth >= MIN_DEPTH)].double(), 0.5))  # sync-ok: once, setup
    near = float(((test.depth < NEAR_THRESHOLD) & test.valid).any(dim=(1, 2, 3)).float().mean())  # sync-ok: setup
    supervision = (
        f"LiDAR-like scan lines (~{100 * cfg.lidar_fraction:.0f} % of the valid pixels)"
        if cfg.sparse
        else "dense depth"
    )
    lines = [
        ("data", f"{cfg.train_scenes} training / {cfg.test_scenes} held-out synthetic scenes "
                 f"({cfg.height}x{cfg.width}, seed {cfg.seed}; no held-out scene is seen in training)"),
        ("cues", "ground-plane perspective (fixed camera mount), where objects touch the ground, "
                 "known object and texture sizes, occlusion, haze"),
        ("near", f"a 15 cm post 0.3-1 m from the camera in {100 * cfg.near_prob:.0f} % of the scenes "
                 f"({100 * near:.0f} % of the held-out ones); near = closer than {NEAR_THRESHOLD:g} m"),
        ("target", f"inverse depth 1/m from {supervision}; sky and beyond {MAX_DEPTH:g} m have none"),
    ]  # fmt: skip
    return Task(
        kind="synthetic", sample=sample, test_inputs=test.image, test_depth=test.depth, test_valid=test.valid,
        test_images=test.image, constant=constant, lines=lines,
    )  # fmt: skip


# --- progress ----------------------------------------------------------------------------


class _Progress:
    """A live progress line: tqdm when installed, else one plain line (``\\r`` on a terminal)."""

    def __init__(self, total: int, label: str, enabled: bool = True, stream: Any = None) -> None:
        self.total, self.label, self.enabled = total, label, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.perf_counter()
        self.last = -math.inf
        self.bar = None
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm  # optional
        except ImportError:
            tqdm = None
        if tqdm is not None:
            self.bar = tqdm(total=total, desc=label, unit="step", file=self.stream, mininterval=0.2, leave=True)

    def update(self, step: int, loss: Tensor) -> None:
        """Step ``step`` (0-based) finished with training loss ``loss``."""
        if not self.enabled:
            return
        now = time.perf_counter()
        done = step + 1
        last = done == self.total
        if self.bar is not None:
            self.bar.update(1)
            if now - self.last >= 0.5 or last:
                self.bar.set_postfix(loss=f"{float(loss):.4f}", refresh=False)  # sync-ok: display
                self.last = now
            if last:
                self.bar.close()
            return
        every = 0.25 if self.tty else 5.0
        if not (step == 0 or last or now - self.last >= every):
            return
        self.last = now
        elapsed = now - self.start
        left = elapsed / done * (self.total - done)
        line = (
            f"{self.label}: step {done}/{self.total}  loss {float(loss):.4f}  "  # sync-ok: display
            f"{elapsed:.0f} s elapsed, ~{left:.0f} s left"
        )
        if self.tty:
            self.stream.write("\r" + line.ljust(78) + ("\n" if last else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


# --- training and evaluation -------------------------------------------------------------


def evaluation_align(name: str) -> str:
    """``"lsq"`` for losses invariant to scale and shift, else ``"metric"``."""
    return "lsq" if {"scale", "shift"} <= set(loss_info(name).invariances) else "metric"


@torch.no_grad()
def evaluate(
    pred_depth: Tensor, depth: Tensor, valid: Tensor, align: str, task: Optional[Task] = None, chunk: int = 64
) -> Dict[str, float]:
    """Held-out metrics (per image over valid pixels, averaged over images) of a depth map."""
    lo = task.min_depth if task else MIN_DEPTH
    hi = task.max_depth if task else MAX_DEPTH
    near = task.near_threshold if task else NEAR_THRESHOLD
    totals: Dict[str, float] = {}
    counts: Dict[str, float] = {}
    for i in range(0, pred_depth.shape[0], chunk):
        sl = slice(i, i + chunk)
        m = depth_metrics(
            pred_depth[sl], depth[sl], valid[sl], min_depth=lo * 0.999, max_depth=hi * 1.001,
            align=None if align == "metric" else align, near_threshold=near,
        )  # fmt: skip
        for key in REPORTED:
            prefix = key.split("/")[0] + "/" if "/" in key else ""
            n = float(m[prefix + "count"])  # sync-ok: evaluation
            totals[key] = totals.get(key, 0.0) + float(m[key]) * n  # sync-ok: evaluation
            counts[key] = counts.get(key, 0.0) + n
    return {k: totals[k] / counts[k] if counts.get(k) else math.nan for k in REPORTED}


def _predict(net: nn.Module, inputs: Tensor, chunk: int = 32) -> Tensor:
    was = net.training
    net.eval()
    with torch.no_grad():
        out = torch.cat([1.0 / net(inputs[i : i + chunk])[0] for i in range(0, inputs.shape[0], chunk)])
    net.train(was)
    return out


KEY_HYPER = (
    "alpha", "silog_ratio", "silog_ratio2", "ssi_weight", "silog_weight", "lambd", "ratio", "near_threshold",
    "near_weight", "weight_mode", "ssi_weighting", "lambda_sg", "num_scales", "alpha_schedule", "alpha_start",
    "alpha_end", "use_inv_depth", "min_depth", "max_depth", "scales", "trim", "threshold", "l1_weight",
)  # fmt: skip


def key_hyper_parameters(module: nn.Module) -> Dict[str, Any]:
    """The hyper-parameters worth printing of a loss module (public scalar attributes and config)."""
    found: Dict[str, Any] = {}
    for name, value in vars(module).items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                found[f.name] = getattr(value, f.name)
        elif not name.startswith("_") and isinstance(value, (bool, int, float, str)):
            found[name] = value
    return {k: found[k] for k in KEY_HYPER if k in found and found[k] is not None}


def _loss_kwargs(name: str, task: Task) -> Dict[str, Any]:
    canonical = loss_info(name).name
    return dict(task.loss_kwargs.get(canonical, {}))


def train_one(name: str, cfg: DemoConfig, task: Optional[Task] = None) -> DemoResult:
    """Train a fresh :class:`TinyDepthNet` with loss ``name`` and evaluate it on the held-out set.

    The network's initial weights depend only on ``cfg.seed``, so every loss of a comparison
    starts from the same network; step 0 of ``history["eval_step"]`` is that untrained network.
    """
    loss_info(name)  # unknown names fail here, with suggestions
    task = task or synthetic_task(cfg)
    kwargs = _loss_kwargs(name, task)
    sparse = cfg.sparse or task.kind == "real"
    method = name if not sparse or name.startswith("sparse-") else f"sparse-{name}"
    criterion = SupervisedLoss(method, num_scales=4, input_space="inverse", **kwargs)
    hyper = key_hyper_parameters(get_loss(name, input_space="inverse", **kwargs))
    torch.manual_seed(cfg.seed)
    net = TinyDepthNet(
        cfg.channels,
        task.min_depth,
        task.max_depth,
        in_channels=task.in_channels,
        coords=task.coords,
        guess_channel=task.guess_channel,
    )
    net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    g = torch.Generator().manual_seed(cfg.seed)
    align = evaluation_align(name)
    every = cfg.eval_every or max(1, cfg.steps // 10)
    n_eval = min(cfg.eval_scenes, task.test_inputs.shape[0])
    history: Dict[str, List[float]] = {"loss": [], "eval_step": []}

    def record(step: int) -> None:
        metrics = evaluate(
            _predict(net, task.test_inputs[:n_eval]), task.test_depth[:n_eval], task.test_valid[:n_eval], align, task
        )
        history["eval_step"].append(float(step))
        for key in ("abs_rel", "d1"):
            history.setdefault(f"eval/{key}", []).append(metrics[key])

    record(0)
    progress = _Progress(cfg.steps, name, cfg.progress)
    losses: List[Tensor] = []
    p = torch.zeros(())
    start, cpu_start = time.perf_counter(), time.process_time()
    net.train()
    for step in range(cfg.steps):
        inputs, target = task.sample(g, cfg.batch_size)
        p.fill_(step / max(1, cfg.steps - 1))
        out = criterion(net(inputs), target, progress=p)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        sched.step()
        losses.append(out["loss"].detach())
        progress.update(step, losses[-1])
        if (step + 1) % every == 0 or step + 1 == cfg.steps:
            record(step + 1)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    history["loss"] = torch.stack(losses).tolist()  # sync-ok: once, after training
    pred = _predict(net, task.test_inputs)
    metrics = evaluate(pred, task.test_depth, task.test_valid, align, task)
    examples = _aligned(
        pred[: cfg.plot_scenes], task.test_depth[: cfg.plot_scenes], task.test_valid[: cfg.plot_scenes], align, task
    )
    return DemoResult(name, align, metrics, history, seconds, cpu, "trained", examples, hyper)


def _aligned(pred: Tensor, depth: Tensor, valid: Tensor, align: str, task: Task) -> Tensor:
    """The prediction as the evaluation sees it (``lsq``: fitted in disparity per image), for the figure."""
    if align != "lsq":
        return pred.clone()
    inv_pred = 1.0 / pred
    inv_gt = torch.where(valid, 1.0 / depth.clamp(min=1e-6), torch.zeros_like(depth))
    fit = lsq_scale_shift(inv_pred, inv_gt, valid)
    scale, shift = fit[0].view(-1, 1, 1, 1), fit[1].view(-1, 1, 1, 1)
    return 1.0 / (scale * inv_pred + shift).clamp(1.0 / task.max_depth, 1.0 / task.min_depth)


def untrained(cfg: DemoConfig, task: Task, align: str) -> DemoResult:
    """The network of :func:`train_one` before its first step."""
    torch.manual_seed(cfg.seed)
    net = TinyDepthNet(
        cfg.channels,
        task.min_depth,
        task.max_depth,
        in_channels=task.in_channels,
        coords=task.coords,
        guess_channel=task.guess_channel,
    )
    pred = _predict(net.to(memory_format=torch.channels_last), task.test_inputs)  # type: ignore[call-overload]
    return DemoResult("untrained network", align, evaluate(pred, task.test_depth, task.test_valid, align, task),
                      kind="untrained", examples=pred[: cfg.plot_scenes].clone())  # fmt: skip


def constant_baseline(cfg: DemoConfig, task: Task, align: str) -> DemoResult:
    """Predict the training targets' median depth everywhere."""
    pred = torch.full_like(task.test_depth, task.constant)
    metrics = evaluate(pred, task.test_depth, task.test_valid, align, task)
    return DemoResult(f"constant {task.constant:.1f} m", align, metrics, kind="constant")


# --- report ------------------------------------------------------------------------------


def _fmt(key: str, value: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.2f}" if key == "rmse" else f"{value:.3f}"


def format_table(results: Sequence[DemoResult]) -> str:
    """Markdown table of the reported metrics (one row per result)."""
    head = "| model | eval | " + " | ".join(h for _, h in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (2 + len(COLUMNS))]
    for r in results:
        name = f"{r.loss} (trained)" if r.kind == "trained" else r.loss
        cells = " | ".join(_fmt(k, r.metrics[k]) for k, _ in COLUMNS)
        lines.append(f"| {name} | {r.align} | {cells} |")
    return "\n".join(lines)


def _better(key: str, a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return True  # a metric neither has (no near pixels) is no loss
    return a > b if key in HIGHER_IS_BETTER else a < b


def verdict(result: DemoResult, others: Sequence[DemoResult]) -> str:
    """One plain sentence: does ``result`` beat each of ``others`` on every reported metric?"""
    parts = []
    for other in others:
        lost = [h for k, h in COLUMNS if not _better(k, result.metrics[k], other.metrics[k])]
        who = "the untrained network" if other.kind == "untrained" else f"the {other.loss} baseline"
        if not lost:
            parts.append(f"beats {who} on all {len(COLUMNS)} metrics")
        else:
            won = len(COLUMNS) - len(lost)
            parts.append(f"beats {who} on {won} of {len(COLUMNS)} metrics (not on {', '.join(lost)})")
    m = result.metrics
    return (
        f"Verdict: {result.loss} " + "; ".join(parts)
        + f" — held-out abs_rel {m['abs_rel']:.3f}, δ<1.25 {m['d1']:.3f}."
    )  # fmt: skip


def _legend(task: Task) -> List[str]:
    t = f"{task.near_threshold:g} m"
    return [
        "Columns (held-out pixels with ground truth; per image, then averaged over images):",
        "  abs_rel      mean |pred − true| / true depth: 0 is perfect, 0.10 = 10 % off on average (lower is better)",
        f"  near / far   the same over the pixels closer than {t} (near) and at least {t} away (far)",
        "  rmse (m)     root-mean-square error in metres, dominated by distant pixels (lower is better)",
        "  δ<1.25       share of pixels within 25 % of the true depth: 1 is perfect (higher is better)",
        "  eval         metric = predictions compared as they are; lsq = each image first fitted by least-squares",
        "               scale and shift in disparity (for scale-and-shift-invariant losses; MiDaS protocol)",
    ]


def format_report(results: Sequence[DemoResult], task: Task, cfg: DemoConfig) -> str:
    """The demo's final output: what was trained, the table, what the columns mean, the verdicts."""
    trained = [r for r in results if r.kind == "trained"]
    n_params = sum(
        p.numel()
        for p in TinyDepthNet(
            cfg.channels, in_channels=task.in_channels, coords=task.coords, guess_channel=task.guess_channel
        ).parameters()
    )
    inputs = "image + row index" if task.coords else "image"
    if task.in_channels > 3:
        inputs = "image + sparse inverse depth + its mask + the scan lines interpolated per column (refined)"
    lines = ["", "What was trained"]
    lines.append(
        f"  network   TinyDepthNet {tuple(cfg.channels)}, {n_params / 1000:.1f}k parameters; input: {inputs}; "
        f"output: inverse depth at 1, 1/2, 1/4, 1/8 scale in [1/{task.max_depth:g}, 1/{task.min_depth:g}] 1/m"
    )
    for label, text in task.lines:
        lines.append(f"  {label:<9} {text}")
    for r in trained:
        hp = ", ".join(f"{k}={v}" for k, v in r.hyper.items()) or "defaults"
        lines.append(f"  loss      {r.loss}: {loss_info(r.loss).summary} ({hp})")
    cpu = sum(r.cpu_seconds for r in trained)
    wall = sum(r.seconds for r in trained)
    lines.append(
        f"  training  {cfg.steps} Adam steps per loss, batch {cfg.batch_size}, one-cycle LR {cfg.lr:g}, "
        f"through SupervisedLoss(num_scales=4, input_space='inverse'), progress = step/(steps-1); "
        f"{wall:.0f} s wall, {cpu:.0f} s CPU on {torch.get_num_threads()} thread(s)"
    )
    lines += ["", f"Held-out results ({task.test_depth.shape[0]} {'region' if task.kind == 'real' else 'scenes'} "
                  "never used for training)", format_table(results), ""]  # fmt: skip
    lines += _legend(task)
    lines.append("")
    for r in trained:
        refs = [b for b in results if b.kind != "trained" and b.align == r.align]
        lines.append(verdict(r, refs))
    return "\n".join(lines)


# --- figure ------------------------------------------------------------------------------


def _require_matplotlib() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise SystemExit(PLOT_HINT) from exc
    return plt


def plot_results(results: Sequence[DemoResult], task: Task, path: str) -> None:
    """Held-out scenes (image | ground truth | prediction | error per loss) and the held-out
    error over training, to a PNG (needs matplotlib; :data:`PLOT_HINT` otherwise)."""
    plt = _require_matplotlib()
    from matplotlib.colors import LogNorm

    trained = [(r, r.examples) for r in results if r.kind == "trained" and r.examples is not None]
    n = min([ex.shape[0] for _, ex in trained] + [task.test_images.shape[0]]) if trained else 0
    extra = 1 if task.extra_plot is not None else 0
    cols = 2 + extra + 2 * len(trained)
    h, w = task.test_images.shape[-2:]
    row_h = 2.4 * h / w + 0.35
    fig = plt.figure(figsize=(2.4 * cols, row_h * n + 3.4))
    grid = fig.add_gridspec(n + 1, cols, height_ratios=[row_h] * n + [3.0])
    shown = task.test_depth[:n][task.test_valid[:n]]
    lo = float(shown.min()) if shown.numel() else task.min_depth  # sync-ok: plotting
    hi = float(shown.max()) if shown.numel() else task.max_depth  # sync-ok: plotting
    norm = LogNorm(vmin=max(lo, task.min_depth), vmax=max(hi, lo * 1.01))
    cmap = plt.get_cmap("magma_r").with_extremes(bad="#c4ccd4")  # grey: no ground truth (sky, holes)
    depth_kw = {"cmap": cmap, "norm": norm}
    depth_im = err_im = None
    for i in range(n):
        gt, ok = task.test_depth[i, 0], task.test_valid[i, 0]
        panels: List[Tuple[str, Any, Dict[str, Any]]] = [
            ("held-out image", task.test_images[i].permute(1, 2, 0).clamp(0, 1), {})
        ]
        panels.append(("ground-truth depth", torch.where(ok, gt, math.nan), depth_kw))
        if task.extra_plot is not None:
            title, maps = task.extra_plot
            panels.append((title, torch.where(maps[i, 0] > 0, maps[i, 0], math.nan), depth_kw))
        for r, examples in trained:
            pred = examples[i, 0]
            err = torch.where(ok, (pred - gt).abs() / gt.clamp(min=1e-6), math.nan)
            score = float(err[ok].mean()) if ok.any() else math.nan  # sync-ok: plotting
            label = f"{r.loss}" + (" (lsq-aligned)" if r.align == "lsq" else "")
            panels.append((f"{label}: prediction", pred, depth_kw))
            panels.append(
                (f"error |pred−true|/true, mean {score:.2f}", err, {"cmap": "inferno", "vmin": 0.0, "vmax": 0.5})
            )
        for j, (title, img, kw) in enumerate(panels):
            ax = fig.add_subplot(grid[i, j])
            im = ax.imshow(img.numpy(), interpolation="nearest", **kw)
            if kw is depth_kw:
                depth_im = im
            elif kw:
                err_im = im
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title if i == 0 else (f"mean {score:.2f}" if "error" in title else ""), fontsize=7)
    bottom = fig.add_subplot(grid[n, : max(1, cols // 2)])
    right = fig.add_subplot(grid[n, max(1, cols // 2) :])
    for r, _ in trained:
        steps = r.history.get("eval_step", [])
        bottom.plot(steps, r.history.get("eval/abs_rel", []), marker="o", ms=3, label=f"{r.loss} ({r.align})")
        right.plot(steps, r.history.get("eval/d1", []), marker="o", ms=3, label=f"{r.loss} ({r.align})")
    for b in results:
        if b.kind == "constant":
            bottom.axhline(b.metrics["abs_rel"], ls="--", color="grey", lw=1, label=f"{b.loss} ({b.align})")
            right.axhline(b.metrics["d1"], ls="--", color="grey", lw=1, label=f"{b.loss} ({b.align})")
    bottom.set(title="held-out abs_rel while training (lower is better; step 0 = untrained)", xlabel="training step")
    right.set(title="held-out δ<1.25 while training (higher is better)", xlabel="training step", ylim=(0, 1))
    bottom.set_yscale("log")
    for ax in (bottom, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.title.set_fontsize(9)
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    if depth_im is not None:
        cax = fig.add_axes((0.94, 0.55, 0.012, 0.38))
        fig.colorbar(depth_im, cax=cax).set_label("depth (m), log scale; grey = no ground truth", fontsize=7)
        cax.tick_params(labelsize=6)
    if err_im is not None:
        cax = fig.add_axes((0.94, 0.36, 0.012, 0.15))
        fig.colorbar(err_im, cax=cax).set_label("relative error", fontsize=7)
        cax.tick_params(labelsize=6)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- entry points ------------------------------------------------------------------------


def run_demo(
    losses: Sequence[str], cfg: DemoConfig, plot: Optional[str] = None, task: Optional[Task] = None, out: Any = None
) -> List[DemoResult]:
    """Train and evaluate each loss on the same data; print the report and return all rows."""
    out = out if out is not None else sys.stdout
    for name in losses:
        loss_info(name)
    if plot:
        _require_matplotlib()  # fail before training, not after
    print(f"depthloss demo: preparing data (seed {cfg.seed}) ...", file=sys.stderr, flush=True)
    task = task or synthetic_task(cfg)
    results = [train_one(name, cfg, task) for name in losses]
    baselines: List[DemoResult] = []
    for align in dict.fromkeys(r.align for r in results):  # in the order the losses came
        baselines.append(untrained(cfg, task, align))
        baselines.append(constant_baseline(cfg, task, align))
        for name, pred in task.baselines:
            baselines.append(
                DemoResult(name, align, evaluate(pred, task.test_depth, task.test_valid, align, task), kind="baseline")
            )
    rows = results + baselines
    print(format_report(rows, task, cfg), file=out, flush=True)
    if plot:
        plot_results(rows, task, plot)
        print(f"Figure: {plot}", file=out)
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m depthloss demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


def add_arguments(parser: Any) -> None:
    """The demo's options; every help text states its default."""
    d = DemoConfig()
    parser.add_argument("--loss", default="ssi-silog", help="registered loss to train (default: ssi-silog)")
    parser.add_argument(
        "--compare",
        default=None,
        metavar="A,B,...",
        help="comma-separated losses trained side by side from the same initial weights "
        "(default: none; with --real: ssi-silog,near-field-ssi-silog,scale-adaptive)",
    )
    parser.add_argument(
        "--steps", type=int, default=None, help=f"training steps per loss (default: {d.steps}; with --real: 400)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=d.batch_size, help=f"images per step (default: {d.batch_size})"
    )
    parser.add_argument(
        "--lr", type=float, default=d.lr, help=f"peak learning rate of the one-cycle schedule (default: {d.lr:g})"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=d.seed,
        help=f"seed of the data, the initial weights and the batches (default: {d.seed})",
    )
    parser.add_argument(
        "--train-scenes",
        type=int,
        default=d.train_scenes,
        help=f"synthetic training scenes (default: {d.train_scenes})",
    )
    parser.add_argument(
        "--test-scenes", type=int, default=d.test_scenes, help=f"synthetic held-out scenes (default: {d.test_scenes})"
    )
    parser.add_argument(
        "--size",
        default=f"{d.height}x{d.width}",
        metavar="HxW",
        help=f"synthetic image size (default: {d.height}x{d.width})",
    )
    parser.add_argument(
        "--near-prob",
        type=float,
        default=d.near_prob,
        help=f"share of synthetic scenes with a near-field post (default: {d.near_prob:g})",
    )
    parser.add_argument(
        "--sparse",
        action="store_true",
        help="supervise with LiDAR-like scan lines instead of dense depth (default: off)",
    )
    parser.add_argument(
        "--real",
        action="store_true",
        help="depth completion on the real Middlebury 'Motorcycle' scene; needs scikit-image, "
        "pip install 'depthloss[real]' (default: off)",
    )
    parser.add_argument(
        "--plot",
        default=None,
        metavar="PATH",
        help="write a PNG of held-out predictions and the held-out error over training; "
        "needs matplotlib, pip install 'depthloss[plot]' (default: no figure)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads; this network's small convolutions gain little from more "
        "and lose a lot when other processes share the cores (default: 1)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line (default: off)")


def _size(text: str) -> Tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--size must be HxW, e.g. 64x128, got {text!r}") from None
    if h < 16 or w < 16:
        raise SystemExit(f"--size must be at least 16x16, got {text!r}")
    return h, w


def run_from_args(args: Any) -> int:
    """Run the demo for parsed command-line arguments (``python -m depthloss demo``)."""
    if args.steps is not None and args.steps < 1:
        raise SystemExit("--steps must be >= 1")
    if args.batch_size < 1:
        raise SystemExit("--batch-size must be >= 1")
    if args.plot:
        _require_matplotlib()
    if args.threads:
        torch.set_num_threads(args.threads)
    default_compare = "ssi-silog,near-field-ssi-silog,scale-adaptive" if args.real else None
    spec = args.compare or (default_compare if args.loss == "ssi-silog" else None)
    losses = [s.strip() for s in spec.split(",") if s.strip()] if spec else [args.loss]
    for name in losses:
        loss_info(name)
    h, w = _size(args.size)
    if args.real:
        from depthloss import real

        cfg = DemoConfig(steps=args.steps or real.DEFAULT_STEPS, batch_size=args.batch_size, lr=args.lr,
                         seed=args.seed, progress=not args.quiet)  # fmt: skip
        print("depthloss demo --real: loading the Middlebury 'Motorcycle' scene ...", file=sys.stderr, flush=True)
        task = real.completion_task(seed=args.seed)
        run_demo(losses, cfg, plot=args.plot, task=task)
        return 0
    cfg = DemoConfig(
        steps=args.steps or DemoConfig.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        sparse=args.sparse, train_scenes=args.train_scenes, test_scenes=args.test_scenes, height=h, width=w,
        near_prob=args.near_prob, progress=not args.quiet,
    )  # fmt: skip
    run_demo(losses, cfg, plot=args.plot)
    return 0
