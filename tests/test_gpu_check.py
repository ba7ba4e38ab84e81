"""``benchmarks/gpu_check.py``: the smoke mode runs end to end on the CPU, so the one-shot CUDA check never rots.

The smoke run is the same code as the CUDA run at tiny shapes (no timing assertions). It is
also a real precision check on the CPU: float32 and bf16 against float64 within the stated
tolerances. Further tests: the checker fails what it should fail, the budget and the
watchdog leave a partial result, and a loss needing extra inputs gets them from one place.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Iterator, List

import pytest
import torch
from torch import Tensor

import depthloss
from depthloss import registry
from helpers import STENCIL_LOSSES

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
PRECISIONS = ("float64", "float32", "float32+autocast", "bf16-autocast")


def _env() -> Dict[str, str]:
    """A plain checkout: only ``src`` on the path (the script finds its own helpers)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OUT_DIR")}
    env["PYTHONPATH"] = str(ROOT / "src")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run(tmp_path: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(SCRIPT), "--smoke", "--out-dir", str(tmp_path), *args]
    return subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    out = tmp_path_factory.mktemp("gpu_check")
    t0 = time.perf_counter()
    proc = _run(out)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    data = json.loads((out / "gpu_check.json").read_text())
    return {"data": data, "stdout": proc.stdout, "md": (out / "gpu_check.md").read_text(), "elapsed": elapsed}


@pytest.fixture(scope="module")
def gc() -> Iterator[ModuleType]:
    """The script as a module (its helpers ``run``, ``timing``, ``baselines`` come from benchmarks/)."""
    saved_path = list(sys.path)
    before = {name for name in ("run", "timing", "baselines") if name in sys.modules}
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses resolve their module through sys.modules
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("gpu_check", None)
        for name in {"run", "timing"} - before:  # generic names the script imported from benchmarks/
            sys.modules.pop(name, None)
        sys.path[:] = saved_path


# --- the smoke run ---------------------------------------------------------------------


def test_smoke_run_is_complete_and_records_the_environment(smoke: Dict[str, Any]) -> None:
    data = smoke["data"]
    assert data["complete"] is True and data["summary"]["failed"] == []
    env = data["environment"]
    for key in ("device", "device_name", "torch", "cuda", "numpy", "depthloss", "git_commit", "threads"):
        assert key in env, key
    assert env["device"] == "cpu" and env["losses"] == depthloss.list_losses()
    assert set(data["tolerances"]) == set(PRECISIONS)
    assert set(data["phases"]) == {"parity", "sync", "eager", "baselines", "compiled"}
    assert all(p["skipped"] == 0 for p in data["phases"].values()), data["phases"]
    assert data["bandwidth"]["gb_per_s"] > 0


def test_smoke_parity_passes_for_every_loss_shape_and_precision(smoke: Dict[str, Any], gc: ModuleType) -> None:
    rows = smoke["data"]["parity"]
    assert {(r["shape"], r["loss"]) for r in rows} == {
        (s, n) for s in ("small", "kitti-sparse") for n in depthloss.list_losses()
    }
    for row in rows:
        assert row["status"] == "pass", row
        assert set(row["results"]) == set(PRECISIONS)
        for name, result in row["results"].items():
            tol = smoke["data"]["tolerances"][name]
            factor = 1.0 if name == "float64" else gc.GRAD_RTOL_FACTOR.get(row["loss"], 1.0)  # documented there
            assert result["value_err"] <= tol["value_rtol"] and result["grad_err"] <= factor * tol["grad_rtol"], (
                row["loss"],
                name,
            )
            assert result["dtype"] == ("float64" if name == "float64" else "float32")
            no_stencil = row["loss"] in STENCIL_LOSSES  # LiDAR-like parity targets: no full stencil is valid
            assert (result["ref_value"] != 0.0 or no_stencil) and math.isfinite(result["value"])  # a real loss


def test_smoke_sync_phase_ran_every_loss_unchecked_on_cpu(smoke: Dict[str, Any]) -> None:
    rows = smoke["data"]["sync"]
    *losses, control = rows
    assert [r["loss"] for r in losses] == depthloss.list_losses()
    assert all(r["results"] == {"tensor": {"status": "unchecked"}, "float": {"status": "unchecked"}} for r in losses)
    assert control["loss"].startswith("control") and control["status"] == "unchecked"


def test_sync_harness_classifies_a_caught_synchronization(gc: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the CUDA sync check reports, with the debug mode simulated (CPU: nothing to catch)."""
    state = {"on": False}

    @contextlib.contextmanager
    def fake_sync_debug(device: torch.device) -> Iterator[bool]:
        state["on"] = True
        try:
            yield True
        finally:
            state["on"] = False

    monkeypatch.setattr(gc, "sync_debug", fake_sync_debug)
    leaf = torch.rand(2, 1, 4, 4, requires_grad=True)
    target = torch.rand(2, 1, 4, 4)

    def syncs(pred: Tensor, target: Tensor) -> Tensor:
        if state["on"]:
            raise RuntimeError("called a synchronizing CUDA operation")
        return (pred - target).abs().mean()

    def broken(pred: Tensor, target: Tensor) -> Tensor:
        raise ValueError("some other bug")

    cpu = torch.device("cpu")
    assert gc._checked_step(lambda p, t: (p - t).abs().mean(), leaf, target, {}, cpu) == {"status": "pass"}
    assert leaf.grad is not None  # forward+backward ran under the check
    caught = gc._checked_step(syncs, leaf, target, {}, cpu)
    assert caught["status"] == "fail" and "synchronizing" in caught["error"]
    assert gc._checked_step(broken, leaf, target, {}, cpu)["status"] == "error"
    assert not state["on"]


def test_smoke_timing_rows(smoke: Dict[str, Any]) -> None:
    data = smoke["data"]
    names = depthloss.list_losses()
    rows = {(r["shape"], r["loss"], r["mode"]): r for r in data["timing"]}
    assert set(rows) == {(s, n, m) for s in ("kitti", "nyu") for n in names for m in ("eager", "compiled")}
    compiled = set(data["args"]["compile_losses"].split(","))
    for (_shape, name, mode), row in rows.items():
        if mode == "compiled" and name not in compiled:
            assert row["status"] == "skipped" and row["reason"] == "not in --compile-losses"
            continue
        assert row["status"] == "ok", row
        assert row["forward"]["median_ms"] > 0 and row["forward_backward"]["median_ms"] > 0
        assert row["l1_floor_ratio"] > 0 and row["traffic_ratio"] > 0
        assert row["peak_mb"] is None  # CUDA only
    floors = {(r["shape"], r["mode"]): r for r in data["floors"]}
    assert set(floors) == {(s, m) for s in ("kitti", "nyu") for m in ("eager", "compiled")}
    assert all(r["status"] == "ok" for r in floors.values())
    baselines = data["baselines"]
    assert {(r["shape"], r["name"]) for r in baselines} == {(s, n) for s in ("kitti", "nyu") for n in _baseline_names()}
    assert all(r["status"] == "ok" and r["speedup"] > 0 for r in baselines), baselines


def _baseline_names() -> List[str]:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import baselines

        return list(baselines.BASELINES)
    finally:
        sys.path.remove(str(SCRIPT.parent))


def test_smoke_prints_the_tables_as_it_goes_and_writes_markdown(smoke: Dict[str, Any]) -> None:
    out, md = smoke["stdout"], smoke["md"]
    for heading in ("### Parity", "### Host synchronization", "### Eager timing", "### Against the seed baselines",
                    "### Compiled", "### Summary"):  # fmt: skip
        assert heading in out and heading in md, heading
        assert out.index(heading) < out.index("### Summary") or heading == "### Summary"
    for name in depthloss.list_losses():
        assert f"| small | {name} |" in md and f"| kitti | {name} | eager |" in md


def test_smoke_is_quick(smoke: Dict[str, Any]) -> None:
    # generous for a loaded 2-core CI machine; ~25 s on an idle one
    assert smoke["elapsed"] < 120, smoke["elapsed"]


# --- a partial result is still a result ----------------------------------------------------


def test_budget_exhausted_skips_items_and_still_writes_the_result(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--budget-s", "0", "--phases", "parity,eager")
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "gpu_check.json").read_text())
    assert data["complete"] is True
    assert data["parity"] and all(r["status"] == "skipped" for r in data["parity"])
    assert all(r["status"] == "skipped" and r["reason"] == "budget" for r in data["timing"])
    assert "skipped (budget)" in proc.stdout


def test_watchdog_ends_the_run_with_the_partial_result_written(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--hard-limit-s", "1", "--phases", "parity", timeout=120)
    assert proc.returncode == 3, (proc.returncode, proc.stderr[-3000:])
    data = json.loads((tmp_path / "gpu_check.json").read_text())
    assert data["complete"] is False and "hard time limit" in data["summary"]["aborted"]


# --- the pieces ------------------------------------------------------------------------------


def test_budget_shares_move_unused_time_to_later_phases(gc: ModuleType) -> None:
    budget = gc.Budget(100.0, {"a": 1.0, "b": 1.0, "c": 2.0}, time.perf_counter())
    first = budget.open("a")
    assert first.budget_s == pytest.approx(25.0, abs=0.5)
    second = budget.open("b")  # "a" used (almost) nothing: b gets a third of what is left
    assert second.budget_s == pytest.approx(100.0 / 3, abs=0.5)
    third = budget.open("c")
    assert third.budget_s == pytest.approx(100.0, abs=0.5)
    clock = gc.PhaseClock("x", time.perf_counter() + 0.2, 0.2, estimate_s=1.0)
    assert not clock.allows() and clock.skipped == 1
    clock.estimate_s = 0.0
    assert clock.allows()


def test_phase_clock_estimates_an_item_by_its_own_earlier_cost(gc: ModuleType) -> None:
    clock = gc.PhaseClock("compiled", time.perf_counter() + 60.0, 60.0, estimate_s=1000.0)  # a first guess
    assert not clock.allows("a")
    with clock.item("floor", update=False):
        pass
    assert clock.estimate_s == 1000.0 and "floor" in clock.costs  # a floor does not reset the guess
    with clock.item("a"):
        time.sleep(0.01)
    assert 0.01 <= clock.estimate_s < 1000.0 and clock.costs["a"] == clock.estimate_s  # measured replaces the guess
    clock.costs["b"] = 120.0  # "b" took two minutes at the previous shape
    assert clock.allows("a") and not clock.allows("b") and clock.allows("floor")
    clock.estimate_s = 100.0
    assert not clock.allows("new") and clock.allows("a")


def test_compare_flags_wrong_values_gradients_and_dtypes(gc: ModuleType) -> None:
    f32 = next(p for p in gc.PRECISIONS if p.name == "float32")
    grad = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    ref = (2.0, grad)
    ok = gc.compare(torch.tensor(2.0 * (1 + 1e-6)), grad.float() * (1 + 1e-5), ref, f32)
    assert ok["status"] == "pass", ok
    for value, g, problem in [
        (torch.tensor(2.01), grad.float(), "value_err"),
        (torch.tensor(2.0), grad.float() * 1.01, "grad_err"),
        (torch.tensor(float("nan")), grad.float(), "value not finite"),
        (torch.tensor(2.0), grad.float().masked_fill(grad > 1, float("inf")), "gradient not finite"),
        (torch.tensor(2.0, dtype=torch.bfloat16), grad.float(), "dtype"),
        (torch.tensor(2.0), None, "no gradient"),
    ]:
        bad = gc.compare(value, g, ref, f32)
        assert bad["status"] == "fail" and any(problem in p for p in bad["problems"]), (problem, bad)


def test_input_space_comes_from_the_loss_space(gc: ModuleType) -> None:
    for name in depthloss.list_losses():
        space = depthloss.loss_info(name).loss_space
        assert gc.input_space_for(name) == ("depth" if space == "depth" else "inverse")


def test_extra_required_inputs_come_from_one_table(gc: ModuleType) -> None:
    from depthloss.nn import L1Loss

    class NeedsK(L1Loss):
        def forward(self, pred: Tensor, target: Tensor, mask: Any = None, progress: Any = None, *,  # type: ignore[override]
                    K: Tensor) -> Tensor:  # fmt: skip
            assert K.shape == (pred.shape[0], 3, 3)
            return super().forward(pred, target, mask, progress)

    class NeedsFoo(L1Loss):
        def forward(self, pred: Tensor, target: Tensor, mask: Any = None, progress: Any = None, *,  # type: ignore[override]
                    foo: Tensor) -> Tensor:  # fmt: skip
            return super().forward(pred, target, mask, progress)

    registry.register_loss("test-needs-k")(NeedsK)  # metadata from the class (L1Loss's)
    registry.register_loss("test-needs-foo")(NeedsFoo)
    try:
        inputs = gc.parity_inputs(gc.SMOKE_PARITY_SHAPES[0], 0)
        case = gc.loss_case("test-needs-k", inputs)
        assert case.module_kwargs == {"input_space": "inverse"} and case.kwargs["K"].shape[-2:] == (3, 3)
        leaf, target, kwargs = gc._cast_case(case, torch.device("cpu"), gc.PRECISIONS[0])
        assert kwargs["K"].dtype == torch.float64
        case.build(torch.device("cpu"))(leaf, target, **kwargs).backward()
        with pytest.raises(KeyError, match="EXTRA_INPUTS"):
            gc.loss_case("test-needs-foo", inputs)
    finally:
        registry._REGISTRY.pop("test-needs-k", None)
        registry._REGISTRY.pop("test-needs-foo", None)


def test_parity_inputs_are_not_degenerate(gc: ModuleType) -> None:
    """The prediction error varies within each image even at tiny sizes (scale-invariant losses see it)."""
    inputs = gc.parity_inputs(gc.SMOKE_PARITY_SHAPES[0], 0)
    ratio = inputs.depth_pred / torch.where(inputs.mask, inputs.depth_target, torch.ones_like(inputs.depth_target))
    for b in range(ratio.shape[0] - 1):
        values = ratio[b][inputs.mask[b]]
        assert values.numel() > 10 and float(values.std() / values.mean()) > 0.02
    assert not inputs.mask[-1].any() and float(inputs.inv_target[-1].abs().sum()) == 0.0


def test_reference_variant_only_where_an_acceleration_is_enabled(gc: ModuleType) -> None:
    """Eager rows are timed with accelerations off too, on the devices where one is enabled."""
    import depthloss

    cpu = gc.accel_variants("cpu")
    assert set(cpu) == {"default", "reference"}
    with cpu["reference"]():
        assert not depthloss.accelerations_enabled()
    assert depthloss.accelerations_enabled() or os.environ.get("DEPTHLOSS_ACCEL") == "0"
    assert set(gc.accel_variants("cuda")) == {"default"}  # nothing is enabled on CUDA today
