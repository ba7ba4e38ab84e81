"""Timing helpers shared by the benchmark scripts (CUDA-synchronized, blocked_autorange)."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any, Callable, Dict

import torch
from torch.utils.benchmark import Timer


@dataclass(frozen=True)
class Timing:
    """Median and interquartile range of one measurement, in milliseconds."""

    median_ms: float
    iqr_ms: float

    def __str__(self) -> str:
        return f"{self.median_ms:8.3f} ± {self.iqr_ms / 2:.3f} ms"


def measure(fn: Callable[[], Any], min_run_time: float = 0.5) -> Timing:
    """Time ``fn()`` with ``Timer.blocked_autorange`` (the Timer synchronizes CUDA itself).

    With the process's thread count: ``Timer`` defaults to one thread, which is not how the
    losses run in training (and makes compiled callables recompile inside the timer).
    """
    fn()  # warm-up (and compilation, for compiled callables)
    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    m = timer.blocked_autorange(min_run_time=min_run_time)
    return Timing(m.median * 1e3, m.iqr * 1e3)


def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo`` on Linux), else the platform's processor or machine name."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device) -> Dict[str, Any]:
    """Metadata recorded with every result."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "device_name": name,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
    if device.type == "cpu" and hasattr(torch.backends, "cpu"):
        env["cpu_capability"] = torch.backends.cpu.get_cpu_capability()  # e.g. AVX512, AVX2
    return env
