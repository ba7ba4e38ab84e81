"""Forward/backward timing suite for every registered depthloss loss.

    python benchmarks/run.py [--device cuda|cpu] [--losses PATTERN] [--shapes small,kitti,nyu]
                             [--valid 0.3,1.0] [--accel on|off|both] [--compile]
                             [--compile-time] [--json PATH] [--plot PATH]

For each shape and valid fraction it times, on the same tensors and in one process:

1. every registered loss (``--losses`` wildcard): forward and forward+backward, eager and
   (``--compile``) ``torch.compile``d, with median and IQR from
   ``torch.utils.benchmark.Timer.blocked_autorange`` (which synchronizes CUDA), peak
   memory on CUDA, and the ratio of forward+backward to a masked L1 forward+backward on
   the same tensors (the memory-bound floor). With ``--accel both`` (the default) every
   loss is timed on the reference path (``depthloss.accelerations(False)``) and with the
   accelerations of :mod:`depthloss._accel` that apply on the device, in alternating
   rounds: the ``accel ×`` column is what the accelerations buy (an acceleration stays
   enabled on a device only where it buys at least 1.3x; ``benchmarks/NOTES.md``);
2. every pair in ``benchmarks/baselines.py``: the straightforward implementation a user
   would otherwise write against the depthloss callable computing the same value, and the
   speed-up, with accelerations on and off;
3. with ``--compile-time``: the wall time of the first ``torch.compile`` (inductor,
   ``fullgraph=True``) forward and backward of every loss (a fresh compile each).

Inputs are procedural scenes from :mod:`depthloss.synthetic`: metric depth (sky filled at
the far plane so 100 % valid is possible), LiDAR-like scan-line masks for the sparse
fractions, and a prediction that is the target with smooth multiplicative error.
Results go to stdout as markdown tables and, with ``--json``, to a JSON file with the
environment (torch version, device, threads, seed); ``--plot`` writes a PNG chart when
matplotlib is installed.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
import depthloss
from baselines import BASELINES
from depthloss import synthetic
from depthloss._accel import registered
from timing import Timing, environment, measure


@dataclass(frozen=True)
class Shape:
    name: str
    batch: int
    height: int
    width: int
    valid: float  # default valid fraction for this shape


SHAPES = {
    "small": Shape("small", 4, 256, 512, 0.3),
    "kitti": Shape("kitti", 4, 352, 1216, 0.05),
    "nyu": Shape("nyu", 8, 480, 640, 1.0),
    "tiny": Shape("tiny", 2, 32, 64, 0.3),  # smoke test
}

ACCEL_MODES = {"on": (True,), "off": (False,), "both": (False, True)}


@dataclass
class Inputs:
    depth_pred: Tensor
    depth_target: Tensor
    inv_pred: Tensor
    inv_target: Tensor
    mask: Tensor

    def pair(self, space: str) -> Tuple[Tensor, Tensor]:
        return (self.inv_pred, self.inv_target) if space == "inverse" else (self.depth_pred, self.depth_target)


def make_inputs(shape: Shape, valid: float, seed: int, device: torch.device) -> Inputs:
    """Scenes at ``shape``; ``valid`` < 1 keeps a LiDAR pattern of that fraction of all pixels."""
    scenes = synthetic.make_scenes(shape.batch, shape.height, shape.width, seed=seed, max_depth=80.0)
    depth = torch.where(scenes.valid, scenes.depth, torch.full_like(scenes.depth, 80.0))  # sky at the far plane
    if valid >= 1.0:
        mask = torch.ones_like(scenes.valid)
    else:
        mask = synthetic.lidar_pattern(shape.batch, shape.height, shape.width, valid, seed)
    g = torch.Generator().manual_seed(seed + 1)
    # smooth multiplicative error (a coarse random field upsampled) plus a global scale error
    coarse = torch.randn(shape.batch, 1, max(1, shape.height // 32), max(1, shape.width // 32), generator=g)
    field_ = torch.nn.functional.interpolate(coarse, size=(shape.height, shape.width), mode="bilinear")
    pred = depth * torch.exp(0.1 * field_) * 1.1
    target = torch.where(mask, depth, torch.zeros_like(depth))
    inv_target = torch.where(mask, 1.0 / depth, torch.zeros_like(depth))
    return Inputs(
        depth_pred=pred.to(device),
        depth_target=target.to(device),
        inv_pred=(1.0 / pred).to(device),
        inv_target=inv_target.to(device),
        mask=mask.to(device),
    )


def seed_pipeline(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """The baseline as the seeds call it: their SupervisedLoss combines ``gt > 0`` with the mask each step.

    depthloss modules build their validity mask (``mask & isfinite(target) & (target > 0)``)
    inside the timed call, so the baseline's cheaper equivalent is timed too.
    """

    def run(pred: Tensor, target: Tensor, mask: Tensor, *rest: Any) -> Tensor:
        return fn(pred, target, mask & (target > 0), *rest)

    return run


def forward_fn(fn: Callable[..., Tensor], pred: Tensor, target: Tensor, *args: Any) -> Callable[[], Tensor]:
    def run() -> Tensor:
        with torch.no_grad():
            return fn(pred, target, *args)

    return run


def forward_backward_fn(fn: Callable[..., Tensor], pred: Tensor, target: Tensor, *args: Any) -> Callable[[], None]:
    leaf = pred.detach().clone().requires_grad_()

    def run() -> None:
        leaf.grad = None
        fn(leaf, target, *args).backward()

    return run


def peak_memory_mb(run: Callable[[], Any], device: torch.device) -> Optional[float]:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    run()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


@dataclass
class LossRow:
    shape: str
    valid: float
    loss: str
    mode: str  # eager | compiled
    accel: str  # on | off (the reference)
    forward: Timing
    forward_backward: Timing
    floor_ratio: float
    peak_mb: Optional[float] = None


@dataclass
class AccelRow:
    shape: str
    valid: float
    loss: str
    accelerations: str  # the accelerations enabled on the device
    reference: Timing
    accelerated: Timing
    speedup: float  # reference / accelerated, median over alternating rounds


@dataclass
class BaselineRow:
    shape: str
    valid: float
    name: str
    baseline: Timing
    depthloss: Timing
    speedup: float
    depthloss_reference: Optional[Timing] = None  # accelerations off
    speedup_reference: Optional[float] = None
    notes: str = ""


@dataclass
class CompileRow:
    loss: str
    forward_s: float
    backward_s: float


@dataclass
class Results:
    environment: Dict[str, Any]
    args: Dict[str, Any]
    losses: List[LossRow] = field(default_factory=list)
    accel: List[AccelRow] = field(default_factory=list)
    baselines: List[BaselineRow] = field(default_factory=list)
    compile_time: List[CompileRow] = field(default_factory=list)


def input_space(name: str) -> str:
    """The space a loss's inputs are given in for the benchmark: its own where it has one."""
    space = depthloss.loss_info(name).loss_space
    return "depth" if space == "depth" else "inverse"


def loss_args(name: str, inputs: Inputs) -> Tuple[Tensor, Tensor, Tensor]:
    """``(pred, target, mask)`` for loss ``name``; video losses get the batch as one ``(1, B, H, W)`` clip."""
    pred, target = inputs.pair(input_space(name))
    maps = (pred, target, inputs.mask)
    if depthloss.loss_info(name).input_layout == "video":
        return tuple(x.reshape(1, x.shape[0], x.shape[-2], x.shape[-1]) for x in maps)  # type: ignore[return-value]
    return maps


class WithIntrinsics(torch.nn.Module):
    """A loss that needs camera intrinsics ``K``, called as ``loss(pred, target, mask)``: the
    synthetic camera's ``(fx, fy, cx, cy)`` for the input size (focal ``0.58 max(H, W)``)."""

    def __init__(self, loss: torch.nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, pred: Tensor, target: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        h, w = pred.shape[-2], pred.shape[-1]
        f = 0.58 * max(h, w)
        out: Tensor = self.loss(pred, target, mask, K=(f, f, (w - 1) / 2.0, (h - 1) / 2.0))
        return out


def build(name: str, device: torch.device) -> torch.nn.Module:
    module = depthloss.get_loss(name, input_space=input_space(name)).to(device)
    return WithIntrinsics(module) if "K" in depthloss.loss_info(name).inputs else module


#: required keyword inputs of ``forward`` beyond the maps, by name (built like ``pred``)
REQUIRED_INPUTS: Dict[str, Callable[[Tensor], Tensor]] = {
    "log_scale": lambda pred: torch.full_like(pred, -1.0),  # gaussian-nll, laplace-nll
    "confidence": lambda pred: torch.full_like(pred, 0.8),  # confidence
}


def with_required_inputs(name: str, fn: Callable[..., Tensor], pred: Tensor) -> Callable[..., Tensor]:
    """``fn`` with the loss's required keyword inputs (:data:`REQUIRED_INPUTS`) bound."""
    extra = {k: REQUIRED_INPUTS[k](pred) for k in depthloss.loss_info(name).inputs if k in REQUIRED_INPUTS}
    return functools.partial(fn, **extra) if extra else fn


def floor_timing(inputs: Inputs, min_run_time: float) -> Timing:
    pred, target = inputs.pair("inverse")
    l1 = depthloss.get_loss("l1", input_space="inverse")
    return measure(forward_backward_fn(l1, pred, target, inputs.mask), min_run_time)


def accelerated(flag: bool) -> Any:
    """The context in which a timing runs: accelerations on (the library default) or off (reference)."""
    return depthloss.accelerations(flag)


def applicable_accelerations(device: torch.device) -> List[str]:
    """The registered accelerations enabled on ``device`` (by name)."""
    return sorted(n for n, a in registered().items() if device.type in a.devices)


def timed(run: Callable[[], Any], flag: bool, min_run_time: float) -> Timing:
    with accelerated(flag):
        return measure(run, min_run_time)


def bench_losses(
    names: Sequence[str], shape: Shape, valid: float, inputs: Inputs, args: argparse.Namespace, floor: Timing
) -> List[LossRow]:
    rows = []
    device = inputs.mask.device
    modes = ["eager", "compiled"] if args.compile else ["eager"]
    for name in names:
        for mode in modes:
            for flag in ACCEL_MODES[args.accel]:
                module = build(name, device)
                pred, target, mask = loss_args(name, inputs)
                fn: Callable[..., Tensor] = module
                if mode == "compiled":
                    torch._dynamo.reset()
                    fn = torch.compile(module, fullgraph=True)
                fn = with_required_inputs(name, fn, pred)
                fwd = timed(forward_fn(fn, pred, target, mask), flag, args.min_run_time)
                fb_run = forward_backward_fn(fn, pred, target, mask)
                fwd_bwd = timed(fb_run, flag, args.min_run_time)
                with accelerated(flag):
                    peak = peak_memory_mb(fb_run, device)
                rows.append(
                    LossRow(
                        shape=shape.name,
                        valid=valid,
                        loss=name,
                        mode=mode,
                        accel="on" if flag else "off",
                        forward=fwd,
                        forward_backward=fwd_bwd,
                        floor_ratio=fwd_bwd.median_ms / floor.median_ms,
                        peak_mb=peak,
                    )
                )
                tag = "accel" if flag else "ref"
                print(f"  {name:22s} {mode:8s} {tag:5s} fwd {fwd}  fwd+bwd {fwd_bwd}", file=sys.stderr)
    return rows


def alternating(first: Callable[[], Timing], second: Callable[[], Timing], rounds: int) -> Tuple[Timing, Timing, float]:
    """Time two runs in alternating rounds (slow drifts of a shared machine hit both alike);
    the median of each and the median of the per-round ratios ``first / second``."""
    pairs = [(first(), second()) for _ in range(rounds)]
    ratios = sorted(a.median_ms / b.median_ms for a, b in pairs)
    a = sorted((a for a, _ in pairs), key=lambda t: t.median_ms)[rounds // 2]
    b = sorted((b for _, b in pairs), key=lambda t: t.median_ms)[rounds // 2]
    return a, b, ratios[len(ratios) // 2]


def bench_accel(
    names: Sequence[str], shape: Shape, valid: float, inputs: Inputs, args: argparse.Namespace
) -> List[AccelRow]:
    """Reference vs accelerated forward+backward (eager) for every loss, on this device."""
    device = inputs.mask.device
    accels = applicable_accelerations(device)
    if not accels or args.accel != "both":
        return []
    rows = []
    for name in names:
        pred, target, mask = loss_args(name, inputs)
        run = forward_backward_fn(with_required_inputs(name, build(name, device), pred), pred, target, mask)
        ref, acc, ratio = alternating(
            lambda run=run: timed(run, False, args.min_run_time),
            lambda run=run: timed(run, True, args.min_run_time),
            args.rounds,
        )
        rows.append(AccelRow(shape.name, valid, name, ",".join(accels), ref, acc, ratio))
        print(f"  accel {name:22s} reference {ref} accelerated {acc}: {ratio:.2f}x", file=sys.stderr)
    return rows


def bench_baselines(shape: Shape, valid: float, inputs: Inputs, args: argparse.Namespace) -> List[BaselineRow]:
    rows = []
    for name, pair in BASELINES.items():
        if not fnmatch.fnmatch(name.replace("_", "-"), args.losses) and not fnmatch.fnmatch(name, args.losses):
            continue
        pred, target = inputs.pair(pair.input_space)
        base_run = forward_backward_fn(seed_pipeline(pair.baseline()), pred, target, inputs.mask)
        ours_run = forward_backward_fn(pair.depthloss(), pred, target, inputs.mask)
        ratios: Dict[bool, Tuple[Timing, Timing, float]] = {}
        for flag in ACCEL_MODES[args.accel]:
            ratios[flag] = alternating(
                lambda base_run=base_run: measure(base_run, args.min_run_time),
                lambda ours_run=ours_run, flag=flag: timed(ours_run, flag, args.min_run_time),
                args.rounds,
            )
        main = ratios[max(ratios)]  # accelerations on when timed, else the reference
        off = ratios.get(False)
        rows.append(
            BaselineRow(
                shape=shape.name,
                valid=valid,
                name=name,
                baseline=main[0],
                depthloss=main[1],
                speedup=main[2],
                depthloss_reference=None if off is None else off[1],
                speedup_reference=None if off is None else off[2],
                notes=pair.notes,
            )
        )
        ref = "" if off is None else f" (reference {off[2]:.2f}x)"
        print(f"  baseline {name:20s} {main[0]} vs {main[1]}: {main[2]:.2f}x{ref}", file=sys.stderr)
    return rows


def bench_compile_time(names: Sequence[str], device: torch.device) -> List[CompileRow]:
    """Wall time of the first inductor forward and backward of each loss (a fresh compile each)."""
    shape = SHAPES["tiny"]
    inputs = make_inputs(shape, shape.valid, 0, device)
    rows = []
    for name in names:
        torch._dynamo.reset()
        fn = torch.compile(build(name, device), fullgraph=True)
        pred, target, mask = loss_args(name, inputs)
        leaf = pred.detach().clone().requires_grad_()
        start = time.perf_counter()
        loss = fn(leaf, target, mask)
        mid = time.perf_counter()
        loss.backward()
        end = time.perf_counter()
        rows.append(CompileRow(name, mid - start, end - mid))
        print(f"  compile {name:22s} forward {mid - start:6.1f} s  backward {end - mid:6.1f} s", file=sys.stderr)
    return rows


def _ms(t: Timing) -> str:
    return f"{t.median_ms:.2f} ± {t.iqr_ms / 2:.2f}"


def markdown(results: Results) -> str:
    env = results.environment
    out = [
        f"## depthloss benchmarks — {env['device_name']} ({env['device']}"
        + (f", {env['cpu_capability']}" if env.get("cpu_capability") else "")
        + f"), torch {env['torch']}, {env['threads']} threads",
        "",
        "### Losses (forward / forward+backward, ms, median ± IQR/2)",
        "",
        "| shape | valid | loss | mode | accel | forward | fwd+bwd | × masked-L1 floor | peak MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results.losses:
        peak = "–" if r.peak_mb is None else f"{r.peak_mb:.0f}"
        out.append(
            f"| {r.shape} | {r.valid:.0%} | {r.loss} | {r.mode} | {r.accel} | {_ms(r.forward)} "
            f"| {_ms(r.forward_backward)} | {r.floor_ratio:.1f} | {peak} |"
        )
    if results.accel:
        out += [
            "",
            f"### Reference vs accelerated (forward+backward, eager; accelerations: {results.accel[0].accelerations})",
            "",
            "| shape | valid | loss | reference ms | accelerated ms | accel × |",
            "|---|---|---|---|---|---|",
        ]
        for a in results.accel:
            out.append(
                f"| {a.shape} | {a.valid:.0%} | {a.loss} | {_ms(a.reference)} | {_ms(a.accelerated)} | {a.speedup:.2f}× |"
            )
    if results.baselines:
        out += [
            "",
            "### Against the baselines (forward+backward, eager, same tensors; speed-up = baseline / depthloss)",
            "",
            "| shape | valid | loss | baseline ms | depthloss ms | speed-up | reference ms | speed-up, reference |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for b in results.baselines:
            ref_ms = "–" if b.depthloss_reference is None else _ms(b.depthloss_reference)
            ref_x = "–" if b.speedup_reference is None else f"{b.speedup_reference:.2f}×"
            out.append(
                f"| {b.shape} | {b.valid:.0%} | {b.name} | {_ms(b.baseline)} | {_ms(b.depthloss)} "
                f"| {b.speedup:.2f}× | {ref_ms} | {ref_x} |"
            )
    if results.compile_time:
        out += ["", "### First torch.compile call (inductor, fullgraph, tiny shape; seconds)", "",
                "| loss | forward | backward | total |", "|---|---|---|---|"]  # fmt: skip
        for c in results.compile_time:
            out.append(f"| {c.loss} | {c.forward_s:.1f} | {c.backward_s:.1f} | {c.forward_s + c.backward_s:.1f} |")
    return "\n".join(out)


def plot(results: Results, path: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'depthloss[plot]'): no plot written", file=sys.stderr)
        return False
    rows = [r for r in results.losses if r.mode == "eager"]
    labels = [f"{r.loss}\n{r.shape} {r.valid:.0%}" for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(14, max(4, 0.35 * len(rows))))
    axes[0].barh(labels, [r.forward_backward.median_ms for r in rows])
    axes[0].set_xlabel("forward+backward (ms)")
    axes[0].invert_yaxis()
    if results.baselines:
        names = [f"{b.name} {b.valid:.0%}" for b in results.baselines]
        axes[1].barh(names, [b.speedup for b in results.baselines], color="tab:green")
        axes[1].axvline(1.0, color="k", lw=0.8)
        axes[1].set_xlabel("speed-up over baseline (×)")
        axes[1].invert_yaxis()
    fig.suptitle(f"depthloss on {results.environment['device_name']} ({results.environment['device']})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--losses", default="*", help="wildcard over registered names (default: all)")
    parser.add_argument(
        "--shapes", default=None, help=f"comma-separated from {', '.join(SHAPES)} (default: small on CPU, all on CUDA)"
    )
    parser.add_argument(
        "--valid",
        default=None,
        help="comma-separated valid fractions (default: 0.3,1.0 for small, the shape's own else)",
    )
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(fullgraph=True)")
    parser.add_argument(
        "--accel", choices=tuple(ACCEL_MODES), default="both",
        help="time with accelerations on, off (the reference) or both (default; adds the accel × table)",
    )  # fmt: skip
    parser.add_argument("--compile-time", action="store_true", help="time the first inductor compile of every loss")
    parser.add_argument("--no-losses", action="store_true", help="skip the per-loss table (baselines and accel only)")
    parser.add_argument("--no-baselines", action="store_true", help="skip the baseline comparisons")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--min-run-time", type=float, default=0.3, help="seconds per blocked_autorange")
    parser.add_argument("--rounds", type=int, default=5, help="alternating baseline/depthloss rounds (median ratio)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write results and metadata to this JSON file")
    parser.add_argument("--plot", default=None, help="write a PNG chart (needs matplotlib)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda requested but CUDA is not available")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    shape_names = (
        args.shapes.split(",") if args.shapes else (["small"] if device.type == "cpu" else ["small", "kitti", "nyu"])
    )
    unknown = [s for s in shape_names if s not in SHAPES]
    if unknown:
        raise SystemExit(f"unknown shape(s) {unknown}; choose from {list(SHAPES)}")
    names = depthloss.list_losses(args.losses)
    env = environment(device)
    env["seed"] = args.seed
    env["accelerations"] = applicable_accelerations(device)
    results = Results(environment=env, args=vars(args))
    start = time.perf_counter()
    env["shapes"] = []
    for shape_name in shape_names:
        shape = SHAPES[shape_name]
        if args.valid:
            fractions = [float(v) for v in args.valid.split(",")]
        else:
            fractions = [0.3, 1.0] if shape.name == "small" else [shape.valid]
        env["shapes"].append({**asdict(shape), "valid_fractions": fractions})
        for valid in fractions:
            print(f"# {shape} valid={valid:.0%}", file=sys.stderr)
            inputs = make_inputs(shape, valid, args.seed, device)
            floor = floor_timing(inputs, args.min_run_time)
            if not args.no_losses:
                results.losses += bench_losses(names, shape, valid, inputs, args, floor)
            results.accel += bench_accel(names, shape, valid, inputs, args)
            if not args.no_baselines:
                results.baselines += bench_baselines(shape, valid, inputs, args)
    if args.compile_time:
        results.compile_time = bench_compile_time(names, device)
    env["elapsed_s"] = round(time.perf_counter() - start, 1)
    print(markdown(results))
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(results), indent=2, default=str))
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
