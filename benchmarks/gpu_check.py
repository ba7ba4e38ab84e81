"""The one-shot CUDA check: everything a GPU must show about depthloss, in one command.

    PYTHONPATH=src python benchmarks/gpu_check.py [--out-dir DIR] [--budget-s 420]
    python benchmarks/gpu_check.py --smoke --out-dir /tmp/check     # CPU, tiny shapes, ~20 s

Needs torch (>= 2.4, a CUDA build and one visible GPU) and numpy, nothing else: no network,
no install (``src/`` is put on ``sys.path`` when depthloss is not importable). The losses are
``depthloss.list_losses()``, so a newly registered loss joins every phase by itself; the
inputs of a loss come from one function, :func:`loss_case` (input space from
``loss_info(name).loss_space``, extra required ``forward`` inputs from :data:`EXTRA_INPUTS`).

Phases, in order of importance (each has a share of ``--budget-s``; time a phase leaves
unused goes to the later ones; an item that would not fit its phase's share is skipped
and recorded as ``skipped``):

1. **parity** — every loss, value and gradient w.r.t. the prediction, on the device against
   the same loss on the CPU in float64, at ``small`` (3×1×64×96, 30 % LiDAR-like valid, the
   last image without any valid pixel) and ``kitti-sparse`` (2×1×352×1216, ~5 % valid), in
   four precisions with the tolerances of :data:`PRECISIONS` (value: relative error;
   gradient: relative L2 error ``‖g − g_ref‖ / ‖g_ref‖``; both finite; result dtype float64
   for float64 inputs, float32 otherwise). The reference uses the very input values the
   device gets (the bf16 prediction rounded first).
2. **sync** — every loss forward+backward once after a warm-up under
   ``torch.cuda.set_sync_debug_mode("error")``: any host synchronization (a ``.item()``,
   ``x[mask]``, a blocking host-to-device copy of a constant) raises and is recorded with
   its message. Run twice: ``progress`` as a 0-dim device tensor (the recommended use) and
   as a Python float.
3. **eager** timing and 4. **baselines**, then 5. **compiled** timing, at ``kitti``
   (8×1×352×1216, ~5 % valid) and ``nyu`` (8×1×480×640, dense): per loss ``forward`` (as in
   training: autograd records, no backward) and ``forward+backward``, median and IQR of
   ``torch.utils.benchmark.Timer.blocked_autorange`` (CUDA-synchronized), eager and
   ``torch.compile(fullgraph=True)`` (compile time of the first call recorded and charged
   to the budget), peak memory (``torch.cuda.max_memory_allocated``), and three ratios:
   ``× L1 floor`` (time over a dense masked L1's, ``baselines.masked_l1_floor``, same mode),
   ``× traffic floor`` (time over the least bytes a loss must move — read pred, target and
   mask, write the gradient — at the device's measured copy bandwidth) and ``mem ×`` (peak
   memory above the resident inputs over those bytes). The baselines phase times each
   pair of ``benchmarks/baselines.py`` (the seed code a user would otherwise run) against
   its depthloss counterpart, eager, in alternating rounds.

Results: ``gpu_check.json`` (environment: device, torch and CUDA versions, git commit;
tolerances, definitions, every row, phase timings; rewritten after every item, so a run cut
short still leaves its result) and ``gpu_check.md`` in ``--out-dir`` (default ``$OUT_DIR``,
else the current directory); the tables are printed as the rows come. A watchdog ends the
process at ``--hard-limit-s`` (default budget + 45 s) whatever it is doing, after
writing the JSON. Exit status: 0 when every parity and sync check passed (skipped items do
not fail), 1 otherwise, 2 on a usage error.

``--smoke`` runs the same code on the CPU at tiny shapes, with ``torch.compile``'s ``eager``
backend (graph capture without code generation) for the losses of ``--compile-losses``;
there is no sync check on the CPU (those rows say ``unchecked``). The test suite runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fnmatch
import inspect
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Callable, ContextManager, Dict, Iterator, List, Optional, Sequence, Tuple

START = time.perf_counter()

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
try:
    import depthloss
except ImportError:  # a plain checkout without PYTHONPATH=src
    sys.path.insert(0, str(ROOT / "src"))
    import depthloss

import torch
from torch import Tensor
from torch.utils.benchmark import Timer

from baselines import BASELINES, masked_l1_floor
from depthloss import synthetic
from depthloss._accel import registered as registered_accelerations
from run import Inputs, Shape, make_inputs, seed_pipeline
from timing import Timing, environment

SCHEMA = 1
PROGRESS = 0.3

PARITY_SHAPES = (Shape("small", 3, 64, 96, 0.3), Shape("kitti-sparse", 2, 352, 1216, 0.05))
TIMING_SHAPES = (Shape("kitti", 8, 352, 1216, 0.05), Shape("nyu", 8, 480, 640, 1.0))
SMOKE_PARITY_SHAPES = (Shape("small", 3, 24, 40, 0.3), Shape("kitti-sparse", 2, 44, 152, 0.05))
SMOKE_TIMING_SHAPES = (Shape("kitti", 2, 44, 152, 0.05), Shape("nyu", 2, 30, 40, 1.0))

# Shares of the budget (normalized over the phases still to run when a phase starts).
PHASE_WEIGHTS = {"parity": 0.14, "sync": 0.05, "eager": 0.16, "baselines": 0.08, "compiled": 0.57}
SMOKE_PHASE_WEIGHTS = {"parity": 0.35, "sync": 0.1, "eager": 0.2, "baselines": 0.15, "compiled": 0.2}
# First guesses of one item's cost (s) before any was measured, per phase: (cuda, cpu smoke).
FIRST_GUESS = {"parity": (3.0, 0.5), "sync": (1.0, 0.2), "eager": (2.0, 0.2), "baselines": (3.0, 0.3),
               "compiled": (25.0, 2.0)}  # fmt: skip


@dataclass(frozen=True)
class Precision:
    """How the device computes a parity case, and what error it may have against float64 on the CPU."""

    name: str
    pred_dtype: torch.dtype
    target_dtype: torch.dtype
    autocast: bool
    value_rtol: float
    grad_rtol: float
    why: str


PRECISIONS = (
    Precision("float64", torch.float64, torch.float64, False, 1e-9, 1e-8,
              "same arithmetic, other summation order and kernels"),
    Precision("float32", torch.float32, torch.float32, False, 1e-4, 1e-3,
              "float32 rounding in sums over up to 10^6 pixels, medians and MADs"),
    Precision("float32+autocast", torch.float32, torch.float32, True, 1e-4, 1e-3,
              "bf16 autocast active around float32 inputs: the loss disables it, so float32 bounds"),
    Precision("bf16-autocast", torch.bfloat16, torch.float32, True, 1e-3, 1e-2,
              "bf16 prediction (what a network under autocast emits), float32 target, computed in "
              "float32; the gradient is rounded to bf16 (2^-8 relative)"),
)  # fmt: skip


# ---------------------------------------------------------------------------------------
# the inputs of a loss: the one place to extend for losses with other inputs
# ---------------------------------------------------------------------------------------


def _intrinsics(inputs: Inputs) -> Tensor:
    b, _, h, w = inputs.mask.shape
    return synthetic.intrinsics(b, h, w, device=inputs.mask.device)


def _hdn_samples(inputs: Inputs) -> Tensor:
    """Pre-drawn uniforms of ``hdn-random`` (the same contexts on the device and the reference)."""
    b = inputs.mask.shape[0]
    return torch.rand((b, 8, 6), generator=torch.Generator().manual_seed(0)).to(inputs.mask.device)


#: Builders of required extra ``forward`` arguments, by parameter name (camera intrinsics
#: ``K`` for normals / virtual-normal losses, ...). A loss whose ``forward`` has a required
#: parameter not listed here fails its rows with a message naming it.
EXTRA_INPUTS: Dict[str, Callable[[Inputs], Tensor]] = {
    "K": _intrinsics,
    "intrinsics": _intrinsics,
    "samples": _hdn_samples,  # optional; given so that a random loss is comparable across devices
    # gaussian-nll / laplace-nll: a predicted log-scale map; confidence: a confidence map in (0, 1)
    "log_scale": lambda inputs: torch.full(inputs.mask.shape, -1.0, device=inputs.mask.device),
    "confidence": lambda inputs: torch.full(inputs.mask.shape, 0.8, device=inputs.mask.device),
}
_STANDARD_ARGS = ("self", "pred", "target", "mask", "progress")


def input_space_for(name: str) -> str:
    """The ``input_space`` a loss is given: metric depth where it computes in depth, else inverse depth."""
    return "depth" if depthloss.loss_info(name).loss_space == "depth" else "inverse"


@dataclass
class LossCase:
    """A loss and its arguments: ``module(pred, target, **kwargs)``."""

    name: str
    module_kwargs: Dict[str, Any]
    pred: Tensor
    target: Tensor
    kwargs: Dict[str, Any]

    def build(self, device: torch.device) -> torch.nn.Module:
        module: torch.nn.Module = depthloss.get_loss(self.name, **self.module_kwargs).to(device)
        return module


def video_view(x: Tensor) -> Tensor:
    """``(B, 1, H, W)`` maps as one ``(1, B, H, W)`` clip: the batch's images are its frames."""
    return x.reshape(1, x.shape[0], x.shape[-2], x.shape[-1])


def loss_case(name: str, inputs: Inputs, progress: float = PROGRESS) -> LossCase:
    """The module arguments and call arguments of loss ``name`` on ``inputs``.

    ``input_space`` is always explicit (:func:`input_space_for`). ``progress`` is a 0-dim
    tensor on the inputs' device. Required extra ``forward`` parameters come from
    :data:`EXTRA_INPUTS`. Video losses (``input_layout="video"``) get the ``(B, 1, H, W)`` maps
    as one ``(1, B, H, W)`` clip (:func:`video_view`).
    """
    info = depthloss.loss_info(name)
    space = input_space_for(name)
    pred, target = inputs.pair(space)
    mask = inputs.mask
    if info.input_layout == "video":
        pred, target, mask = video_view(pred), video_view(target), video_view(mask)
    kwargs: Dict[str, Any] = {"mask": mask, "progress": torch.tensor(progress, device=inputs.mask.device)}
    for pname, param in inspect.signature(info.cls.forward).parameters.items():
        if pname in _STANDARD_ARGS or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        # declared inputs with a builder (optional ones too: hdn-random's samples, the K that
        # normal / vnl check themselves), and required parameters
        declared = pname in info.inputs and pname in EXTRA_INPUTS
        if param.default is inspect.Parameter.empty or declared:
            if pname not in EXTRA_INPUTS:
                raise KeyError(f"loss {name!r} needs the input {pname!r}: add a builder to gpu_check.EXTRA_INPUTS")
            kwargs[pname] = EXTRA_INPUTS[pname](inputs)
    module_kwargs: Dict[str, Any] = {"input_space": space}
    if "seed" in info.defaults:  # losses that sample (ranking, vnl): the same draws on the device and the reference
        module_kwargs["seed"] = 0
    return LossCase(name, module_kwargs, pred, target, kwargs)


def _cast_case(case: LossCase, device: torch.device, precision: Precision) -> Tuple[Tensor, Tensor, Dict[str, Any]]:
    """``(pred leaf, target, kwargs)`` on ``device`` in ``precision`` (float extras: the compute dtype)."""
    compute = torch.float64 if precision.pred_dtype == torch.float64 else torch.float32
    leaf = case.pred.detach().to(device=device, dtype=precision.pred_dtype).requires_grad_(True)
    target = case.target.to(device=device, dtype=precision.target_dtype)
    kwargs = {
        k: (v.to(device=device, dtype=compute) if v.is_floating_point() else v.to(device))
        if isinstance(v, Tensor)
        else v
        for k, v in case.kwargs.items()
    }
    return leaf, target, kwargs


def accel_variants(device_type: str) -> Dict[str, Callable[[], ContextManager[Any]]]:
    """Timing variants of the eager phase on ``device_type``, each a context manager factory.

    ``"default"`` is the library as users get it; ``"reference"`` (every acceleration off:
    ``depthloss.accelerations(False)``) is added only where some registered acceleration is
    enabled for the device, so eager rows give reference-vs-accelerated ratios there and no
    duplicate timings elsewhere (no acceleration is enabled on CUDA today).
    """
    variants: Dict[str, Callable[[], ContextManager[Any]]] = {"default": contextlib.nullcontext}
    if any(device_type in acc.devices for acc in registered_accelerations().values()):
        variants["reference"] = lambda: depthloss.accelerations(False)
    return variants


def measure(fn: Callable[[], Any], min_run_time: float) -> Timing:
    """``timing.measure`` at the current thread count.

    ``torch.utils.benchmark.Timer`` runs with ``num_threads=1`` unless told otherwise, which
    on the CPU times one thread and makes ``torch.compile`` recompile inside the timer
    (its guards include the thread count).
    """
    fn()  # warm-up
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    m = timer.blocked_autorange(min_run_time=min_run_time)
    return Timing(m.median * 1e3, m.iqr * 1e3)


# ---------------------------------------------------------------------------------------
# budget, results, output
# ---------------------------------------------------------------------------------------


class Budget:
    """Deadlines for the phases: each phase gets its weight's share of the time still left."""

    def __init__(self, total_s: float, weights: Dict[str, float], start: float) -> None:
        self.total_s = total_s
        self.weights = dict(weights)
        self.start = start
        self.opened: List[str] = []

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float:
        return max(0.0, self.total_s - self.elapsed())

    def open(self, phase: str) -> PhaseClock:
        pending = [p for p in self.weights if p not in self.opened]
        share = self.weights[phase] / sum(self.weights[p] for p in pending)
        self.opened.append(phase)
        return PhaseClock(phase, time.perf_counter() + self.remaining() * share, self.remaining() * share)


@dataclass
class PhaseClock:
    """One phase's deadline and running estimates of an item's cost.

    An item that was measured before under the same key (the same loss at another shape)
    is estimated by that cost; any other item by the costliest so far (at first a guess).
    """

    name: str
    deadline: float
    budget_s: float
    estimate_s: float = 0.0
    items: int = 0
    skipped: int = 0
    started: float = field(default_factory=time.perf_counter)
    costs: Dict[str, float] = field(default_factory=dict)
    measured: bool = False

    def allows(self, key: Optional[str] = None) -> bool:
        """Whether the next item fits before the deadline (counted as skipped if not)."""
        estimate = self.costs.get(key, self.estimate_s) if key is not None else self.estimate_s
        ok = time.perf_counter() + estimate <= self.deadline
        if not ok:
            self.skipped += 1
        return ok

    @contextlib.contextmanager
    def item(self, key: Optional[str] = None, update: bool = True) -> Iterator[None]:
        """Time one item; ``update=False`` keeps it out of the estimates (a cheap floor, say)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.items += 1
            cost = time.perf_counter() - t0
            if key is not None:
                self.costs[key] = cost
            if update:
                self.estimate_s = max(self.estimate_s, cost) if self.measured else cost
                self.measured = True

    def summary(self) -> Dict[str, Any]:
        return {"budget_s": round(self.budget_s, 1), "elapsed_s": round(time.perf_counter() - self.started, 1),
                "items": self.items, "skipped": self.skipped}  # fmt: skip


class Report:
    """The results, written to JSON after every row and printed as markdown as they come."""

    def __init__(self, out_dir: Path, env: Dict[str, Any], args: Dict[str, Any]) -> None:
        self.out_dir = out_dir
        self.lock = threading.RLock()
        self.data: Dict[str, Any] = {
            "schema": SCHEMA,
            "complete": False,
            "environment": env,
            "args": args,
            "tolerances": {
                p.name: {
                    "value_rtol": p.value_rtol,
                    "grad_rtol": p.grad_rtol,
                    "why": p.why,
                    "pred": str(p.pred_dtype),
                    "target": str(p.target_dtype),
                    "autocast": p.autocast,
                }
                for p in PRECISIONS
            },
            "definitions": {
                "value_err": "|v - v_ref| / |v_ref| (v_ref: the same loss on the CPU in float64, same inputs)",
                "grad_err": "||g - g_ref||_2 / ||g_ref||_2 over the prediction's gradient",
                "forward": "one call with autograd recording (as in training), no backward",
                "forward_backward": "forward and backward of the loss w.r.t. the prediction",
                "l1_floor_ratio": "fwd+bwd time / fwd+bwd time of baselines.masked_l1_floor, same mode",
                "traffic_ratio": "fwd+bwd time / (bytes(pred + target + mask + grad) / measured copy bandwidth)",
                "mem_ratio": "(peak allocated - allocated before the call) / bytes(pred + target + mask + grad)",
                "speedup": "baseline fwd+bwd time / depthloss fwd+bwd time (median of alternating rounds)",
                "cache_note": "kitti and nyu inputs with the gradient are ~48 and ~35 MB: on a GPU with a larger "
                "L2 (H200: 60 MB) repeated calls can find them partly cached, so a ratio to the "
                "traffic floor (DRAM copy bandwidth) below 1 is possible",
            },
            "phases": {},
            "bandwidth": None,
            "parity": [],
            "sync": [],
            "floors": [],
            "timing": [],
            "baselines": [],
            "summary": {},
        }
        self.md: List[str] = []

    def add(self, section: str, row: Dict[str, Any], line: Optional[str] = None) -> None:
        with self.lock:
            self.data[section].append(row)
            if line is not None:
                self.emit(line)
            self.write()

    def emit(self, line: str) -> None:
        with self.lock:
            self.md.append(line)
            print(line, flush=True)

    def write(self) -> None:
        with self.lock:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            for name, text in (("gpu_check.json", json.dumps(self.data, indent=1, default=str)),
                               ("gpu_check.md", "\n".join(self.md) + "\n")):  # fmt: skip
                tmp = self.out_dir / f".{name}.tmp"
                tmp.write_text(text, encoding="utf-8")
                os.replace(tmp, self.out_dir / name)


def _err(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0][:300] if msg else ''}"


def _tb(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:])[-3000:]


def _ms(t: Optional[Dict[str, float]]) -> str:
    return "–" if t is None else f"{t['median_ms']:.3f} ± {t['iqr_ms'] / 2:.3f}"


def _num(x: Optional[float], fmt: str = ".2f") -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------
# environment
# ---------------------------------------------------------------------------------------


def _git(*args: str) -> Optional[str]:
    try:
        proc = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def full_environment(device: torch.device, commit: Optional[str]) -> Dict[str, Any]:
    """Device, versions and the code's commit (``git``, else ``--commit`` / ``$DEPTHLOSS_COMMIT``)."""
    env = environment(device)
    import numpy

    env.update(
        depthloss=depthloss.__version__,
        numpy=numpy.__version__,
        cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,  # type: ignore[no-untyped-call]
        cpu_count=os.cpu_count(),
        losses=depthloss.list_losses(),
        depthloss_accel=os.environ.get("DEPTHLOSS_ACCEL"),
        allow_tf32={"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
        accel_variants=list(accel_variants(device.type)),
    )
    head = _git("rev-parse", "HEAD")
    env["git_commit"] = head or commit or os.environ.get("DEPTHLOSS_COMMIT") or "unknown"
    env["git_commit_source"] = (
        "git" if head else ("--commit" if commit else "env" if os.environ.get("DEPTHLOSS_COMMIT") else None)
    )
    status = _git("status", "--porcelain", "--untracked-files=no")
    env["git_dirty"] = None if status is None else bool(status)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(
            device_capability=f"{props.major}.{props.minor}",
            device_memory_gib=round(props.total_memory / 2**30, 1),
            device_sm_count=props.multi_processor_count,
        )
        try:
            smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,name,clocks.max.sm,clocks.max.mem",
                                  "--format=csv,noheader"], capture_output=True, text=True, timeout=15)  # fmt: skip
            env["nvidia_smi"] = smi.stdout.strip() if smi.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            env["nvidia_smi"] = None
    return env


def copy_bandwidth(device: torch.device, smoke: bool) -> Dict[str, float]:
    """Achieved device copy bandwidth (bytes read + written per second) of a large ``copy_``."""
    n = (4 << 20) if smoke else (256 << 20)  # float32 elements: 16 MiB or 1 GiB
    x = torch.empty(n, device=device).uniform_()
    y = torch.empty_like(x)
    t = measure(lambda x=x, y=y: y.copy_(x), 0.05 if smoke else 0.3)
    gbps = 2 * x.numel() * x.element_size() / (t.median_ms * 1e-3) / 1e9
    del x, y
    _free(device)
    return {"gb_per_s": round(gbps, 1), "bytes": float(2 * n * 4), "median_ms": t.median_ms}


# ---------------------------------------------------------------------------------------
# phase 1: parity
# ---------------------------------------------------------------------------------------


def parity_inputs(shape: Shape, seed: int) -> Inputs:
    """CPU float32 inputs with a prediction error that varies in space at any size.

    :func:`run.make_inputs` draws its error field at 1/32 resolution, constant over an image
    at tiny sizes, where scale-invariant losses then compare rounding noise. Here the
    prediction gets a further smooth field at 1/8 resolution and per-pixel noise. At
    ``small`` the last image has no valid pixel (loss 0 for it, zero gradient, no NaN).
    """
    inputs = make_inputs(shape, shape.valid, seed, torch.device("cpu"))
    g = torch.Generator().manual_seed(seed + 7)
    b, _, h, w = inputs.mask.shape
    coarse = torch.randn(b, 1, max(2, h // 8), max(2, w // 8), generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    pred = inputs.depth_pred * torch.exp(0.1 * smooth + 0.02 * torch.randn(b, 1, h, w, generator=g))
    inputs.depth_pred, inputs.inv_pred = pred, 1.0 / pred
    if shape.name == "small":
        inputs.mask[-1] = False
        inputs.depth_target[-1] = 0.0
        inputs.inv_target[-1] = 0.0
    return inputs


def _value_and_grad(
    module: torch.nn.Module, leaf: Tensor, target: Tensor, kwargs: Dict[str, Any], autocast: Optional[str]
) -> Tuple[Tensor, Optional[Tensor]]:
    ctx: ContextManager[Any] = (
        torch.autocast(device_type=autocast, dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    )
    with ctx:
        value = module(leaf, target, **kwargs)
    value.backward()
    return value.detach(), leaf.grad


def _cpu_reference(case: LossCase, pred_dtype: torch.dtype) -> Tuple[float, Tensor]:
    """The loss and gradient on the CPU in float64, of the prediction as rounded to ``pred_dtype``."""
    f64 = Precision("ref", torch.float64, torch.float64, False, 0.0, 0.0, "")
    rounded = dataclasses.replace(case, pred=case.pred.to(pred_dtype).to(torch.float64))
    leaf, target, kwargs = _cast_case(rounded, torch.device("cpu"), f64)
    value, grad = _value_and_grad(case.build(torch.device("cpu")), leaf, target, kwargs, None)
    assert grad is not None, "the loss does not depend on the prediction"
    return float(value), grad.double()


#: losses whose reduced-precision gradients may legitimately differ more (by this factor), and why:
#: vnl's L1 of normal differences has a kink at 0 -- a normal component equal in pred and target to
#: within float32 rounding flips the sign of its gradient (smoke ``small``: 49 kept triplets, one
#: component differing by 1e-9 in float64 and 0 in float32 gives 1.04e-3; the value agrees to 2e-6)
GRAD_RTOL_FACTOR: Dict[str, float] = {"vnl": 10.0}


def compare(value: Tensor, grad: Optional[Tensor], ref: Tuple[float, Tensor], precision: Precision) -> Dict[str, Any]:
    """Errors against the reference and whether they are within the precision's tolerances."""
    ref_value, ref_grad = ref
    v = float(value.double().cpu())
    expected_dtype = torch.float64 if precision.pred_dtype == torch.float64 else torch.float32
    out: Dict[str, Any] = {"value": v, "ref_value": ref_value, "dtype": str(value.dtype).replace("torch.", "")}
    value_err = abs(v - ref_value) / abs(ref_value) if ref_value != 0 else abs(v)
    out["value_err"] = value_err
    problems = []
    if not math.isfinite(v):
        problems.append("value not finite")
    elif value_err > precision.value_rtol and abs(v - ref_value) > 1e-12:
        problems.append(f"value_err {value_err:.2e} > {precision.value_rtol:g}")
    if value.dtype != expected_dtype:
        problems.append(f"dtype {value.dtype} != {expected_dtype}")
    if grad is None:
        problems.append("no gradient")
        out["grad_err"] = None
    else:
        g = grad.detach().double().cpu()
        ref_norm = float(ref_grad.norm())
        diff = float((g - ref_grad).norm())
        grad_err = diff / ref_norm if ref_norm > 0 else diff
        out["grad_err"] = grad_err if math.isfinite(grad_err) else None
        if not bool(torch.isfinite(g).all()):
            problems.append("gradient not finite")
        elif grad_err > precision.grad_rtol and diff > 1e-12:
            problems.append(f"grad_err {grad_err:.2e} > {precision.grad_rtol:g}")
    out["status"] = "fail" if problems else "pass"
    out["problems"] = problems
    return out


def phase_parity(names: Sequence[str], shapes: Sequence[Shape], device: torch.device, report: Report,
                 clock: PhaseClock, seed: int) -> None:  # fmt: skip
    report.emit("\n### Parity: device against the CPU in float64 (value error / gradient error)\n")
    report.emit("Tolerances (value / gradient): " + "; ".join(
        f"{p.name} {p.value_rtol:g} / {p.grad_rtol:g}" for p in PRECISIONS) + ".\n")  # fmt: skip
    head = " | ".join(p.name for p in PRECISIONS)
    report.emit(f"| shape | loss | {head} | status |")
    report.emit("|---|---|" + "---|" * len(PRECISIONS) + "---|")
    autocast = device.type
    for shape in shapes:
        inputs = parity_inputs(shape, seed)
        for name in names:
            row: Dict[str, Any] = {"shape": shape.name, "loss": name, "device": str(device), "results": {}}
            if not clock.allows():
                row["status"] = "skipped"
                report.add(
                    "parity", row, f"| {shape.name} | {name} | " + "skipped (budget) | " * len(PRECISIONS) + "skipped |"
                )
                continue
            with clock.item():
                try:
                    case = loss_case(name, inputs)
                    refs: Dict[torch.dtype, Tuple[float, Tensor]] = {}
                    module = case.build(device)
                    for p in PRECISIONS:  # one precision's error does not hide the others
                        try:
                            key = torch.bfloat16 if p.pred_dtype == torch.bfloat16 else torch.float32
                            if key not in refs:
                                refs[key] = _cpu_reference(case, key)
                            leaf, target, kwargs = _cast_case(case, device, p)
                            value, grad = _value_and_grad(
                                module, leaf, target, kwargs, autocast if p.autocast else None
                            )
                            tol = p
                            if name in GRAD_RTOL_FACTOR and p.pred_dtype != torch.float64:
                                tol = dataclasses.replace(p, grad_rtol=p.grad_rtol * GRAD_RTOL_FACTOR[name])
                            row["results"][p.name] = compare(value, grad, refs[key], tol)
                        except Exception as exc:
                            row["results"][p.name] = {"status": "error", "error": _err(exc), "traceback": _tb(exc)}
                    statuses = {r["status"] for r in row["results"].values()}
                    row["status"] = "error" if "error" in statuses else "fail" if "fail" in statuses else "pass"
                    if row["status"] == "error":
                        row["error"] = next(r["error"] for r in row["results"].values() if r["status"] == "error")
                except Exception as exc:
                    row.update(status="error", error=_err(exc), traceback=_tb(exc))
            cells = []
            for p in PRECISIONS:
                r = row["results"].get(p.name)
                if r is None or r["status"] == "error":
                    cells.append("**error**")
                else:
                    mark = "" if r["status"] == "pass" else " **FAIL**"
                    cells.append(f"{r['value_err']:.1e} / {_num(r['grad_err'], '.1e')}{mark}")
            status = row["status"] if row["status"] != "error" else f"error: {row['error']}"
            report.add("parity", row, f"| {shape.name} | {name} | " + " | ".join(cells) + f" | {status} |")
        del inputs
        _free(device)


# ---------------------------------------------------------------------------------------
# phase 2: host synchronization
# ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def sync_debug(device: torch.device) -> Iterator[bool]:
    """``set_sync_debug_mode("error")`` on CUDA (yields True); nothing to check on the CPU (False)."""
    if device.type != "cuda":
        yield False
        return
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield True
    finally:
        torch.cuda.set_sync_debug_mode(0)


def _checked_step(fn: Callable[..., Tensor], leaf: Tensor, target: Tensor, kwargs: Dict[str, Any],
                  device: torch.device) -> Dict[str, Any]:  # fmt: skip
    """One forward+backward under the sync check, after a warm-up call outside it."""

    def step() -> None:
        leaf.grad = None
        torch.autograd.backward(fn(leaf, target, **kwargs))

    try:
        step()  # warm-up: lazy initialization (handles, kernels) may synchronize once
        _sync(device)
        with sync_debug(device) as checked:
            step()
        _sync(device)
        return {"status": "pass" if checked else "unchecked"}
    except Exception as exc:
        with contextlib.suppress(Exception):
            _sync(device)
        # a host synchronization raises "called a synchronizing CUDA operation"
        kind = "fail" if "synchroniz" in str(exc).lower() else "error"
        return {"status": kind, "error": _err(exc), "traceback": _tb(exc)}


def _bool_index_l1(pred: Tensor, target: Tensor, mask: Tensor, progress: Any = None) -> Tensor:
    """The control: ``x[mask]`` sizes its output from the mask's content, a host synchronization."""
    return (pred[mask] - target[mask]).abs().mean()


def phase_sync(names: Sequence[str], shape: Shape, device: torch.device, report: Report, clock: PhaseClock,
               seed: int) -> None:  # fmt: skip
    report.emit(f"\n### Host synchronization: forward+backward under set_sync_debug_mode('error') at {shape.name}\n")
    report.emit("| loss | progress: 0-dim device tensor | progress: Python float |")
    report.emit("|---|---|---|")
    inputs = make_inputs(shape, shape.valid, seed, device)
    f32 = PRECISIONS[1]

    def cell(r: Dict[str, Any]) -> str:
        return r["status"] if r["status"] not in ("fail", "error") else f"**{r['status'].upper()}** {r['error']}"

    for name in names:
        row: Dict[str, Any] = {"shape": shape.name, "loss": name, "results": {}}
        if not clock.allows():
            row["status"] = "skipped"
            report.add("sync", row, f"| {name} | skipped (budget) | skipped (budget) |")
            continue
        with clock.item():
            for variant in ("tensor", "float"):
                try:
                    case = loss_case(name, inputs)
                    if variant == "float":
                        case.kwargs["progress"] = PROGRESS
                    leaf, target, kwargs = _cast_case(case, device, f32)
                    row["results"][variant] = _checked_step(case.build(device), leaf, target, kwargs, device)
                except Exception as exc:
                    row["results"][variant] = {"status": "error", "error": _err(exc), "traceback": _tb(exc)}
        statuses = [r["status"] for r in row["results"].values()]
        row["status"] = "fail" if "fail" in statuses else "error" if "error" in statuses else statuses[0]
        report.add("sync", row, f"| {name} | {cell(row['results']['tensor'])} | {cell(row['results']['float'])} |")

    # The control must be caught, or the check proves nothing on this device.
    leaf = inputs.inv_pred.detach().clone().requires_grad_(True)
    got = _checked_step(_bool_index_l1, leaf, inputs.inv_target, {"mask": inputs.mask}, device)
    control: Dict[str, Any] = {
        "shape": shape.name,
        "loss": "control: x[mask] L1 (must be caught)",
        "results": {"tensor": got},
    }
    if got["status"] == "fail":
        control["status"] = "pass"
        line = f"caught: {got['error']}"
    elif got["status"] == "unchecked":
        control["status"] = "unchecked"
        line = "unchecked"
    else:
        control["status"] = "fail"
        line = "**NOT CAUGHT: the sync check does not work here**" if got["status"] == "pass" else cell(got)
    report.add("sync", control, f"| {control['loss']} | {line} | – |")
    del inputs
    _free(device)


# ---------------------------------------------------------------------------------------
# phases 3-5: timing
# ---------------------------------------------------------------------------------------


def _closures(fn: Callable[..., Tensor], leaf: Tensor, target: Tensor, kwargs: Dict[str, Any]
              ) -> Tuple[Callable[[], Tensor], Callable[[], None]]:  # fmt: skip
    def forward() -> Tensor:
        return fn(leaf, target, **kwargs)

    def forward_backward() -> None:
        leaf.grad = None
        torch.autograd.backward(fn(leaf, target, **kwargs))

    return forward, forward_backward


def peak_memory(run: Callable[[], Any], device: torch.device) -> Tuple[Optional[float], Optional[float]]:
    """``(peak MiB, MiB above what was allocated before)`` of one call on CUDA; ``(None, None)`` elsewhere."""
    if device.type != "cuda":
        return None, None
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    run()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    return peak / 2**20, (peak - before) / 2**20


def _traffic_bytes(leaf: Tensor, target: Tensor, mask: Optional[Tensor]) -> int:
    """Least bytes a forward+backward moves: read pred, target and mask, write the gradient."""
    n = leaf.numel() * leaf.element_size() * 2 + target.numel() * target.element_size()
    return n + (0 if mask is None else mask.numel() * mask.element_size())


def _timing(t: Timing) -> Dict[str, float]:
    return {"median_ms": t.median_ms, "iqr_ms": t.iqr_ms}


@dataclass
class TimingContext:
    device: torch.device
    min_run_time: float
    bandwidth: Optional[float]  # bytes / s
    compile_kwargs: Dict[str, Any]
    floors: Dict[Tuple[str, str], float] = field(default_factory=dict)  # (shape, mode) -> fwd+bwd ms


def time_callable(
    fn: Callable[..., Tensor], leaf: Tensor, target: Tensor, kwargs: Dict[str, Any], ctx: TimingContext
) -> Dict[str, Any]:
    """Forward and forward+backward timings, the first call's time (compilation), peak memory, ratios."""
    forward, forward_backward = _closures(fn, leaf, target, kwargs)
    t0 = time.perf_counter()
    forward_backward()  # first call: compiles a compiled callable (forward and backward graphs)
    _sync(ctx.device)
    first_s = time.perf_counter() - t0
    fwd = measure(forward, ctx.min_run_time)
    fb = measure(forward_backward, ctx.min_run_time)
    peak, extra = peak_memory(forward_backward, ctx.device)
    traffic = _traffic_bytes(leaf, target, kwargs.get("mask"))
    row: Dict[str, Any] = {"forward": _timing(fwd), "forward_backward": _timing(fb), "first_call_s": round(first_s, 3),
                           "peak_mb": peak, "peak_extra_mb": extra, "traffic_bytes": traffic}  # fmt: skip
    if ctx.bandwidth:
        row["traffic_floor_ms"] = traffic / ctx.bandwidth * 1e3
        row["traffic_ratio"] = fb.median_ms / row["traffic_floor_ms"]
    row["mem_ratio"] = None if extra is None else extra * 2**20 / traffic
    return row


def _make_fn(module: torch.nn.Module, mode: str, ctx: TimingContext) -> Callable[..., Tensor]:
    if mode == "eager":
        return module
    torch._dynamo.reset()  # static shapes, a fresh compile per loss and shape (its time is recorded)
    compiled: Callable[..., Tensor] = torch.compile(module, fullgraph=True, **ctx.compile_kwargs)
    return compiled


def _timing_line(row: Dict[str, Any]) -> str:
    if row["status"] != "ok":
        detail = row.get("error", "budget") if row["status"] == "error" else row.get("reason", "budget")
        return f"| {row['shape']} | {row['loss']} | {row['mode']} | {row['status']}: {detail} | | | | | | |"
    compile_s = f"{row['first_call_s']:.1f}" if row["mode"] == "compiled" else "–"
    peak = "–" if row.get("peak_mb") is None else f"{row['peak_mb']:.0f} (+{row['peak_extra_mb']:.0f})"
    return (
        f"| {row['shape']} | {row['loss']} | {row['mode']}{'' if row['accel'] == 'default' else '/' + row['accel']} "
        f"| {_ms(row['forward'])} | {_ms(row['forward_backward'])} | {compile_s} | {_num(row.get('l1_floor_ratio'), '.1f')} "
        f"| {_num(row.get('traffic_ratio'), '.1f')} | {peak} | {_num(row.get('mem_ratio'), '.1f')} |"
    )


def timing_header(report: Report, title: str) -> None:
    report.emit(f"\n### {title} (ms, median ± IQR/2)\n")
    report.emit(
        "| shape | loss | mode | forward | fwd+bwd | compile s | × L1 floor | × traffic floor | peak MB (+extra) | mem × |"
    )
    report.emit("|---|---|---|---|---|---|---|---|---|---|")


def time_floor(shape: Shape, inputs: Inputs, mode: str, ctx: TimingContext, report: Report) -> None:
    """The masked-L1 floor of a shape and mode (inverse-depth maps, the same mask)."""
    row: Dict[str, Any] = {"shape": shape.name, "loss": "masked_l1_floor", "mode": mode, "accel": "default"}
    try:
        fn: Callable[..., Tensor] = masked_l1_floor
        if mode == "compiled":
            torch._dynamo.reset()
            fn = torch.compile(masked_l1_floor, fullgraph=True, **ctx.compile_kwargs)
        pred, target = inputs.pair("inverse")
        leaf = pred.detach().clone().requires_grad_(True)

        def call(p: Tensor, t: Tensor, mask: Tensor) -> Tensor:
            return fn(p, t, mask)

        row.update(time_callable(call, leaf, target, {"mask": inputs.mask}, ctx), status="ok")
        ctx.floors[(shape.name, mode)] = row["forward_backward"]["median_ms"]
        row["l1_floor_ratio"] = 1.0
    except Exception as exc:
        row.update(status="error", error=_err(exc), traceback=_tb(exc))
    report.add("floors", row, _timing_line(row))


def time_loss(name: str, shape: Shape, inputs: Inputs, mode: str, accel: str, ctx: TimingContext) -> Dict[str, Any]:
    row: Dict[str, Any] = {"shape": shape.name, "loss": name, "mode": mode, "accel": accel}
    try:
        case = loss_case(name, inputs)
        leaf, target, kwargs = _cast_case(case, ctx.device, PRECISIONS[1])
        with accel_variants(ctx.device.type)[accel]():
            fn = _make_fn(case.build(ctx.device), mode, ctx)
            row.update(time_callable(fn, leaf, target, kwargs, ctx), status="ok")
        floor = ctx.floors.get((shape.name, mode))
        row["l1_floor_ratio"] = None if floor is None else row["forward_backward"]["median_ms"] / floor
    except Exception as exc:
        row.update(status="error", error=_err(exc), traceback=_tb(exc))
        if ctx.device.type == "cuda":
            torch.cuda.empty_cache()
    return row


def phase_timing(mode: str, names: Sequence[str], compile_names: Sequence[str], shapes: Sequence[Shape],
                 inputs_for: Callable[[Shape], Inputs], ctx: TimingContext, report: Report,
                 clock: PhaseClock) -> None:  # fmt: skip
    timing_header(report, f"{'Eager' if mode == 'eager' else 'Compiled (torch.compile fullgraph=True)'} timing")
    variants = list(accel_variants(ctx.device.type)) if mode == "eager" else ["default"]
    for shape in shapes:
        inputs = inputs_for(shape)
        if clock.allows("floor"):
            with clock.item("floor", update=False):
                time_floor(shape, inputs, mode, ctx, report)
        for name in names:
            for accel in variants:
                if mode == "compiled" and name not in compile_names:
                    row = {"shape": shape.name, "loss": name, "mode": mode, "accel": accel, "status": "skipped",
                           "reason": "not in --compile-losses"}  # fmt: skip
                elif not clock.allows(f"{name}/{accel}"):
                    row = {"shape": shape.name, "loss": name, "mode": mode, "accel": accel, "status": "skipped",
                           "reason": "budget"}  # fmt: skip
                else:
                    with clock.item(f"{name}/{accel}"):
                        row = time_loss(name, shape, inputs, mode, accel, ctx)
                report.add("timing", row, _timing_line(row))
        if mode == "compiled":
            torch._dynamo.reset()


def phase_baselines(shapes: Sequence[Shape], inputs_for: Callable[[Shape], Inputs], ctx: TimingContext,
                    report: Report, clock: PhaseClock, rounds: int) -> None:  # fmt: skip
    report.emit("\n### Against the seed baselines (forward+backward, eager, same tensors, ms)\n")
    report.emit("| shape | loss | baseline | depthloss | speed-up |")
    report.emit("|---|---|---|---|---|")
    for shape in shapes:
        inputs = inputs_for(shape)
        for name, pair in BASELINES.items():
            row: Dict[str, Any] = {"shape": shape.name, "name": name, "notes": pair.notes}
            if not clock.allows(name):
                row["status"] = "skipped"
                report.add("baselines", row, f"| {shape.name} | {name} | skipped (budget) | | |")
                continue
            with clock.item(name):
                try:
                    pred, target = inputs.pair(pair.input_space)
                    base_fn, ours = pair.baseline(), pair.depthloss()
                    for m in (base_fn, ours):
                        if isinstance(m, torch.nn.Module):
                            m.to(ctx.device)
                    base = seed_pipeline(base_fn)
                    _, base_fb = _closures(
                        base, pred.detach().clone().requires_grad_(True), target, {"mask": inputs.mask}
                    )
                    _, ours_fb = _closures(
                        ours, pred.detach().clone().requires_grad_(True), target, {"mask": inputs.mask}
                    )
                    pairs = [
                        (measure(base_fb, ctx.min_run_time), measure(ours_fb, ctx.min_run_time)) for _ in range(rounds)
                    ]
                    ratios = sorted(b.median_ms / o.median_ms for b, o in pairs)
                    b_mid = sorted(b.median_ms for b, _ in pairs)[len(pairs) // 2]
                    o_mid = sorted(o.median_ms for _, o in pairs)[len(pairs) // 2]
                    row.update(status="ok", baseline_ms=b_mid, depthloss_ms=o_mid, speedup=ratios[len(ratios) // 2],
                               rounds=rounds)  # fmt: skip
                    line = f"| {shape.name} | {name} | {b_mid:.3f} | {o_mid:.3f} | {row['speedup']:.2f}× |"
                except Exception as exc:
                    row.update(status="error", error=_err(exc), traceback=_tb(exc))
                    line = f"| {shape.name} | {name} | error: {row['error']} | | |"
            report.add("baselines", row, line)


# ---------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------


def _select(names: Sequence[str], patterns: str) -> List[str]:
    pats = [p.strip().lower() for p in patterns.split(",") if p.strip()]
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in pats)]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--smoke", action="store_true", help="CPU, tiny shapes, eager compile backend (for the test suite)"
    )
    parser.add_argument("--device", choices=("cuda", "cpu"), default=None, help="default: cuda (cpu with --smoke)")
    parser.add_argument("--out-dir", default=os.environ.get("OUT_DIR") or ".", help="where gpu_check.json/.md go")
    parser.add_argument(
        "--budget-s", type=float, default=None, help="time budget of the phases (default 420; smoke 120)"
    )
    parser.add_argument("--hard-limit-s", type=float, default=None, help="watchdog exit (default: budget + 45)")
    parser.add_argument("--losses", default="*", help="comma-separated wildcards over registered names (default: all)")
    parser.add_argument(
        "--compile-losses", default=None, help="losses also timed compiled (default: all; smoke: l1,ssi)"
    )
    parser.add_argument("--phases", default="parity,sync,eager,baselines,compiled", help="phases to run")
    parser.add_argument("--min-run-time", type=float, default=None, help="s per blocked_autorange (0.25; smoke 0.005)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating baseline/depthloss rounds (2; smoke 1)")
    parser.add_argument("--backend", default=None, help="torch.compile backend (default inductor; smoke eager)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's; smoke 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--commit", default=None, help="the code's commit, recorded when git is not available")
    args = parser.parse_args(argv)
    args.device = args.device or ("cpu" if args.smoke else "cuda")
    if args.budget_s is None:
        args.budget_s = 120.0 if args.smoke else 420.0
    if args.hard_limit_s is None:
        args.hard_limit_s = args.budget_s + 45.0
    if args.compile_losses is None:
        args.compile_losses = "l1,ssi" if args.smoke else "*"
    if args.rounds is None:
        args.rounds = 1 if args.smoke else 2
    if args.min_run_time is None:
        args.min_run_time = 0.005 if args.smoke else 0.25
    if args.backend is None:
        args.backend = "eager" if args.smoke else "inductor"
    if args.threads is None and args.smoke:
        args.threads = 2
    unknown = {p.strip() for p in args.phases.split(",")} - set(PHASE_WEIGHTS)
    if unknown:
        parser.error(f"unknown phase(s) {sorted(unknown)}; choose from {', '.join(PHASE_WEIGHTS)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("CUDA is not available (use --smoke for the CPU check)")
    return args


def _watchdog(report: Report, limit_s: float) -> threading.Timer:
    def fire() -> None:
        with report.lock:
            report.data["complete"] = False
            report.data["summary"]["aborted"] = f"hard time limit {limit_s:.0f} s reached"
            report.write()
        print(
            f"\ngpu_check: hard time limit {limit_s:.0f} s reached; partial results written",
            file=sys.stderr,
            flush=True,
        )
        os._exit(3)

    timer = threading.Timer(max(0.0, limit_s - (time.perf_counter() - START)), fire)
    timer.daemon = True
    timer.start()
    return timer


def summarize(report: Report) -> Dict[str, Any]:
    data = report.data

    def count(section: str) -> Dict[str, int]:
        out: Dict[str, int] = {}
        for row in data[section]:
            out[row["status"]] = out.get(row["status"], 0) + 1
        return out

    summary: Dict[str, Any] = {s: count(s) for s in ("parity", "sync", "floors", "timing", "baselines")}
    failed = [f"parity {r['shape']}/{r['loss']}" for r in data["parity"] if r["status"] in ("fail", "error")]
    failed += [f"sync {r['loss']}" for r in data["sync"] if r["status"] in ("fail", "error")]
    summary["failed"] = failed
    summary["errors"] = [f"{s} {r.get('shape')}/{r.get('loss', r.get('name'))}: {r['error']}"
                         for s in ("floors", "timing", "baselines") for r in data[s] if r["status"] == "error"]  # fmt: skip
    summary["elapsed_s"] = round(time.perf_counter() - START, 1)
    return summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = _select(depthloss.list_losses(), args.losses)
    compile_names = _select(names, args.compile_losses)
    phases = [p for p in PHASE_WEIGHTS if p in {q.strip() for q in args.phases.split(",")}]
    env = full_environment(device, args.commit)
    report = Report(Path(args.out_dir), env, dict(vars(args)))
    watchdog = _watchdog(report, args.hard_limit_s)

    def on_term(signum: int, frame: Optional[FrameType]) -> None:
        raise SystemExit(f"gpu_check: signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    weights = SMOKE_PHASE_WEIGHTS if args.smoke else PHASE_WEIGHTS
    budget = Budget(args.budget_s - (time.perf_counter() - START), {p: weights[p] for p in phases},
                    time.perf_counter())  # fmt: skip
    parity_shapes = SMOKE_PARITY_SHAPES if args.smoke else PARITY_SHAPES
    timing_shapes = SMOKE_TIMING_SHAPES if args.smoke else TIMING_SHAPES
    report.emit(f"## depthloss gpu_check — {env['device_name']} ({env['device']}), torch {env['torch']}, "
                f"CUDA {env['cuda']}, commit {str(env['git_commit'])[:12]}{' (smoke)' if args.smoke else ''}")  # fmt: skip
    report.emit(f"\n{len(names)} losses: {', '.join(names)}; budget {args.budget_s:.0f} s")
    cached: Dict[str, Inputs] = {}

    def inputs_for(shape: Shape) -> Inputs:
        if shape.name not in cached:  # both timing shapes stay resident (~70 MB each)
            cached[shape.name] = make_inputs(shape, shape.valid, args.seed, device)
        return cached[shape.name]

    ctx = TimingContext(device, args.min_run_time, None, {"backend": args.backend})
    guess = 1 if args.smoke else 0
    try:
        try:
            bw = copy_bandwidth(device, args.smoke)
            report.data["bandwidth"] = bw
            ctx.bandwidth = bw["gb_per_s"] * 1e9
            report.emit(f"\nMeasured copy bandwidth: {bw['gb_per_s']:.0f} GB/s (read + write)")
        except Exception as exc:
            report.data["bandwidth"] = {"error": _err(exc)}
        for phase in phases:
            clock = budget.open(phase)
            clock.estimate_s = FIRST_GUESS[phase][guess]
            if phase == "parity":
                phase_parity(names, parity_shapes, device, report, clock, args.seed)
            elif phase == "sync":
                phase_sync(names, parity_shapes[-1], device, report, clock, args.seed)
            elif phase == "eager":
                phase_timing("eager", names, compile_names, timing_shapes, inputs_for, ctx, report, clock)
            elif phase == "baselines":
                phase_baselines(timing_shapes, inputs_for, ctx, report, clock, args.rounds)
            elif phase == "compiled":
                # the losses with a seed baseline first: if the budget runs out, the headline ones are in
                first = [n for n in BASELINES if n in names]
                ordered = first + [n for n in names if n not in first]
                phase_timing("compiled", ordered, compile_names, timing_shapes, inputs_for, ctx, report, clock)
            report.data["phases"][phase] = clock.summary()
            report.write()
        report.data["complete"] = True
    finally:
        watchdog.cancel()
        signal.signal(signal.SIGTERM, previous)
        with report.lock:
            report.data["summary"] = summarize(report)
            s = report.data["summary"]
            report.emit(f"\n### Summary\n\nphases: {json.dumps(report.data['phases'])}")
            report.emit(f"parity {s['parity']}, sync {s['sync']}, timing {s['timing']}, baselines {s['baselines']}; "
                        f"{s['elapsed_s']:.0f} s in all")  # fmt: skip
            if s["failed"]:
                report.emit("FAILED: " + "; ".join(s["failed"]))
            else:
                report.emit("All parity and sync checks that ran passed.")
            if s["errors"]:
                report.emit("errors: " + "; ".join(s["errors"]))
            report.write()
    return 1 if report.data["summary"]["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
