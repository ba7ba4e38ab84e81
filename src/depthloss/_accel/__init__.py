"""Accelerated versions of depthloss building blocks, behind one dispatch point.

The math of every loss lives in :mod:`depthloss.functional`, in plain differentiable torch
ops: that is the reference, and the library. A building block that has a faster
implementation on some device asks :func:`lookup` for it; the loss files never know.

Every acceleration registered here

- computes exactly what its reference computes, value and gradient (``tests/test_accel.py``);
- is enabled only on the devices where ``benchmarks/run.py --accel`` recorded it at least
  1.3x faster than the reference, forward+backward (``benchmarks/results/``; the decisions
  are in ``benchmarks/NOTES.md``);
- is either kept out of ``torch.compile`` graphs (the reference ops reach inductor, which
  fuses them) or is itself compile-aware (a custom operator with a fake kernel).

One switch turns all of them off: ``DEPTHLOSS_ACCEL=0`` in the environment, or
``with depthloss.accelerations(False):``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import torch
from torch import Tensor

__all__ = ["Acceleration", "accelerations", "accelerations_enabled", "lookup", "registered"]


@dataclass(frozen=True)
class Acceleration:
    """One accelerated building block.

    Attributes:
        name: the dispatch name the reference building block looks up.
        fn: the accelerated implementation (same arguments and result as the reference).
        devices: device types where it is enabled (measured >= 1.3x there).
        compile_aware: whether it may run inside a ``torch.compile`` graph.
        reference: the reference building block(s) it replaces, for docs and tests.
    """

    name: str
    fn: Callable[..., Any]
    devices: Tuple[str, ...]
    compile_aware: bool
    reference: str


_REGISTRY: Dict[str, Acceleration] = {}
_STATE = {"enabled": os.environ.get("DEPTHLOSS_ACCEL", "1").strip().lower() not in ("0", "false", "off", "no")}


def register(acceleration: Acceleration) -> Acceleration:
    """Add an acceleration (names are unique)."""
    if acceleration.name in _REGISTRY:
        raise ValueError(f"acceleration {acceleration.name!r} is already registered")
    _REGISTRY[acceleration.name] = acceleration
    return acceleration


def registered() -> Dict[str, Acceleration]:
    """Every registered acceleration by name (enabled or not)."""
    return dict(_REGISTRY)


def accelerations_enabled() -> bool:
    """Whether accelerations are switched on (``DEPTHLOSS_ACCEL`` and :func:`accelerations`)."""
    return _STATE["enabled"]


@contextlib.contextmanager
def accelerations(enabled: bool = True) -> Iterator[None]:
    """Switch every acceleration on or off inside a ``with`` block (restored afterwards).

    Example:
        >>> import depthloss
        >>> with depthloss.accelerations(False):
        ...     depthloss.accelerations_enabled()
        False
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool, got {type(enabled).__name__}")
    before = _STATE["enabled"]
    _STATE["enabled"] = enabled
    try:
        yield
    finally:
        _STATE["enabled"] = before


def lookup(name: str, x: Tensor) -> Optional[Callable[..., Any]]:
    """The accelerated ``name`` for tensors like ``x``, or ``None`` to run the reference."""
    if not _STATE["enabled"]:
        return None
    acc = _REGISTRY.get(name)
    if acc is None or x.device.type not in acc.devices:
        return None
    if not acc.compile_aware and torch.compiler.is_compiling():
        return None
    return acc.fn


from depthloss._accel import select as _select  # noqa: E402,F401  (registers its accelerations)
