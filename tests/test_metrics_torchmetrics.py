"""``depthloss.metrics.DepthMetricsTM``: the torchmetrics Metric equals ``DepthMetrics``, and syncs under DDP.

Skipped when torchmetrics is not installed (``pip install "depthloss[metrics]"``), except the
tests that the core imports without it and that the missing extra raises a clear error.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import torch
from torch import Tensor

import depthloss.metrics as M
import metrics_ddp_worker as W
from depthloss.metrics import DepthMetrics, depth_metrics

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 110.0
CONFIGS: List[Dict[str, Any]] = [
    {},
    {"max_depth": 20.0, "near_threshold": 2.0},
    {"align": "median"},
    {"align": "lsq", "align_space": "depth", "min_depth": 0.1, "max_depth": 30.0},
]


def _batches(dtype: torch.dtype = torch.float32) -> List[W.Batch]:
    out = [W.make_batch(0, i, n) for i, n in enumerate((3, 1, 4))] + [W.make_batch(*W.EMPTY, 2)]
    return [(p.to(dtype), t.to(dtype), m) for p, t, m in out]


def _assert_same(got: Dict[str, Tensor], want: Dict[str, Tensor], rtol: float = 0.0, atol: float = 0.0) -> None:
    assert set(got) == set(want)
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=rtol, atol=atol, msg=lambda m: f"{key}: {m}")


# --- core without the extra ------------------------------------------------------------------


def test_core_metrics_import_without_torchmetrics() -> None:
    """Importing depthloss and its metrics never imports torchmetrics (it is optional)."""
    code = (
        "import sys, depthloss, depthloss.metrics\n"
        "from depthloss.metrics import *\n"
        "assert 'torchmetrics' not in sys.modules, 'torchmetrics imported eagerly'\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_missing_torchmetrics_raises_a_clear_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchmetrics", None)  # `import torchmetrics` raises ImportError
    M._torchmetrics_class.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"depthloss\[metrics\]"):
            M.DepthMetricsTM
        with pytest.raises(AttributeError):
            M.NoSuchThing
    finally:
        M._torchmetrics_class.cache_clear()


# --- with torchmetrics ------------------------------------------------------------------------

torchmetrics = pytest.importorskip("torchmetrics", reason="the torchmetrics extra is not installed")


def test_is_a_torchmetrics_metric_with_sum_states() -> None:
    metric = M.DepthMetricsTM(near_threshold=1.0)
    assert isinstance(metric, torchmetrics.Metric)
    assert M.DepthMetricsTM is M.DepthMetricsTM  # built once
    assert type(metric).__module__ == "depthloss.metrics" and type(metric).__qualname__ == "DepthMetricsTM"
    states = metric._reductions  # torchmetrics' registry of states and their dist_reduce_fx
    reference = DepthMetrics(near_threshold=1.0)
    reference.update(*_batches()[0])
    assert set(states) == {M._state_name(k) for k in reference.sums}  # one state per sufficient statistic
    assert all(fx is torchmetrics.utilities.dim_zero_sum for fx in states.values())


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_equals_depth_metrics_on_the_same_batches(config: Dict[str, Any], dtype: torch.dtype) -> None:
    ours, theirs = M.DepthMetricsTM(**config), DepthMetrics(**config)
    for pred, target, mask in _batches(dtype):
        ours.update(pred, target, mask)
        theirs.update(pred, target, mask)
    got, want = ours.compute(), theirs.compute_tensors()
    _assert_same(got, want)  # the same sums in the same order: bit-identical
    # batches of 3, 1, 4 and 2 images: the first image of each multi-image batch and the whole
    # all-invalid batch have no valid pixel, so 2 + 1 + 3 + 0 images count
    assert float(got["count"]) == 6.0
    assert got["abs_rel"].dtype == dtype
    floats = theirs.compute()
    assert {k: float(v) for k, v in got.items()} == floats


def test_forward_returns_the_batch_and_accumulates() -> None:
    metric = M.DepthMetricsTM(near_threshold=2.0)
    reference = DepthMetrics(near_threshold=2.0)
    for pred, target, mask in _batches():
        batch = metric(pred, target, mask)
        _assert_same(batch, depth_metrics(pred, target, mask, near_threshold=2.0))
        reference.update(pred, target, mask)
    _assert_same(metric.compute(), reference.compute_tensors())


def test_reset_and_empty_dataset_give_zeros() -> None:
    metric = M.DepthMetricsTM()
    pred, target, mask = _batches()[0]
    metric.update(pred, target, mask)
    assert float(metric.compute()["count"]) > 0
    metric.reset()
    with pytest.warns(UserWarning, match="before the ``update``"):
        out = metric.compute()
    assert {k: float(v) for k, v in out.items()} == DepthMetrics().compute()
    assert all(float(v) == 0.0 for v in out.values())


def test_validates_like_depth_metrics() -> None:
    with pytest.raises(ValueError, match="min_depth"):
        M.DepthMetricsTM(min_depth=5.0, max_depth=1.0)
    with pytest.raises(ValueError, match="align"):
        M.DepthMetricsTM(align="mean")


def test_metric_moves_with_to_and_update_keeps_device() -> None:
    metric = M.DepthMetricsTM().to(torch.float64)
    pred, target, mask = _batches(torch.float64)[0]
    metric.update(pred, target, mask)
    assert metric.sum_abs_rel.dtype == torch.float64 and metric.sum_abs_rel.device == pred.device


# --- two processes ------------------------------------------------------------------------------


def _run_ranks(out_dir: Path) -> List[Dict[str, Dict[str, Tensor]]]:
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no torch.distributed gloo backend")
    ctx = torch.multiprocessing.start_processes(  # type: ignore[attr-defined,no-untyped-call]
        W.worker,
        args=(W.WORLD_SIZE, str(out_dir / "init"), str(out_dir)),
        nprocs=W.WORLD_SIZE,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + TIMEOUT_S
    while not ctx.join(timeout=1.0):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"the {W.WORLD_SIZE} ranks did not finish within {TIMEOUT_S:.0f} s")
    results: List[Dict[str, Dict[str, Tensor]]] = [torch.load(out_dir / f"rank{r}.pt") for r in range(W.WORLD_SIZE)]
    return results


def _single_process(cls: Optional[type] = None) -> Dict[str, Tensor]:
    metric = (cls or DepthMetrics)(**W.CONFIG)
    for rank in range(W.WORLD_SIZE):
        for pred, target, mask in W.batches(rank):
            metric.update(pred, target, mask)
    out: Dict[str, Tensor] = metric.compute() if cls is not None else metric.compute_tensors()
    return out


def test_two_rank_gloo_sync_equals_single_process(tmp_path: Path) -> None:
    ranks = _run_ranks(tmp_path)
    want = _single_process()
    assert float(want["count"]) > 0 and float(want["near/count"]) > 0 and float(want["far/count"]) > 0
    _assert_same(_single_process(M.DepthMetricsTM), want)
    for result in ranks:  # every rank computes the whole dataset's metrics
        # float64 sums added in another order (per rank, then across ranks)
        _assert_same(result["synced"], want, rtol=1e-12, atol=1e-12)
    # the sync is what makes them equal: each rank alone sees a different dataset
    local = [M._finalize(r["local"]) for r in ranks]
    assert all(abs(float(m["abs_rel"]) - float(want["abs_rel"])) > 1e-6 for m in local)
    assert sum(float(r["local"]["count"]) for r in ranks) == float(want["count"])
